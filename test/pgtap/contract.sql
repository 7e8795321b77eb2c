-- pgTAP: the SQL contract of the README — catalogs, columns, functions,
-- privileges and error codes
-- The file runs as a superuser, who installs etl_ext here, and as a pipeline
-- owner without any attribute in a database where a superuser installed it
-- (make test runs both, and once with search_path = '')
SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'etl_ext') AS install_here,
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser \gset
BEGIN;
\if :install_here
CREATE EXTENSION etl_ext;
\endif
SELECT plan(168);

-- catalogs and views in schema etl
SELECT has_schema('etl');
SELECT has_schema('etl_internal');
SELECT has_table('etl', t, 'etl.' || t || ' exists')
  FROM unnest(ARRAY['pipelines', 'runs', 'batches', 'dead_letters']) t;
SELECT has_view('etl', 'status', 'etl.status exists');
SELECT has_type('etl', 'run_result', 'etl.run_result exists');

-- columns users, dashboards and acceptance tests rely on
SELECT has_column('etl', 'pipelines', c, 'etl.pipelines.' || c)
  FROM unnest(ARRAY['name', 'owner', 'source', 'target', 'key', 'mode',
                    'watermark_column', 'overlap', 'transform', 'load',
                    'batch_size', 'error_threshold', 'max_attempts',
                    'retry_policy', 'retry_base_delay', 'retry_max_delay',
                                        'on_schema_change', 'options', 'alert_after_failures',
                    'watermark']) c;
SELECT has_column('etl', 'runs', c, 'etl.runs.' || c)
  FROM unnest(ARRAY['run_id', 'pipeline', 'status', 'rows_extracted',
                    'rows_inserted', 'rows_updated', 'rows_deleted',
                    'rows_unchanged', 'rows_rejected', 'watermark_from',
                    'watermark_to', 'attempts', 'started_at', 'duration',
                    'error', 'run_by', 'triggered_by', 'extract_ms',
                    'transform_ms', 'check_ms', 'load_ms']) c;
SELECT has_column('etl', 'batches', c, 'etl.batches.' || c)
  FROM unnest(ARRAY['batch_id', 'run_id', 'pipeline', 'kind', 'range_from',
                    'range_to', 'status', 'rows', 'created_at', 'updated_at',
                    'error']) c;
SELECT has_column('etl', 'status', c, 'etl.status.' || c)
  FROM unnest(ARRAY['pipeline', 'mode', 'load', 'watermark', 'lag',
                    'last_status', 'last_success_at', 'consecutive_failures',
                    'pending_dead_letters', 'schedule']) c;
SELECT results_eq(
    $$SELECT attname::text COLLATE "default", format_type(atttypid, atttypmod)
        FROM pg_attribute WHERE attrelid = 'etl.run_result'::regclass AND attnum > 0
       ORDER BY attnum$$,
    $$VALUES ('run_id', 'bigint'), ('pipeline', 'text'), ('status', 'text'),
             ('rows_extracted', 'bigint'), ('rows_inserted', 'bigint'),
             ('rows_updated', 'bigint'), ('rows_deleted', 'bigint'),
             ('rows_unchanged', 'bigint'), ('rows_rejected', 'bigint'),
             ('watermark_from', 'text'), ('watermark_to', 'text'),
             ('attempts', 'integer'), ('started_at', 'timestamp with time zone'),
             ('duration', 'interval')$$,
    'etl.run_result has the columns of the README, in order');

-- functions, callable unqualified (they live in pg_catalog)
SELECT has_function('pg_catalog', 'etl_run', ARRAY['text'], 'etl_run(text)');
SELECT function_returns('pg_catalog', 'etl_run', ARRAY['text'], 'etl.run_result',
                        'etl_run returns etl.run_result');
SELECT has_function('pg_catalog', 'etl_create_pipeline',
    ARRAY['text', 'text', 'text', 'text[]', 'text', 'text', 'interval', 'text',
          'text', 'bigint', 'numeric', 'integer', 'text', 'interval', 'interval',
          'text', 'jsonb', 'integer'], 'etl_create_pipeline with every parameter of the README');
SELECT function_returns('pg_catalog', 'etl_create_pipeline',
    ARRAY['text', 'text', 'text', 'text[]', 'text', 'text', 'interval', 'text',
          'text', 'bigint', 'numeric', 'integer', 'text', 'interval', 'interval',
          'text', 'jsonb', 'integer'], 'bigint', 'etl_create_pipeline returns the id');
SELECT has_function('pg_catalog', 'etl_alter_pipeline',
    ARRAY['text', 'text', 'text', 'text[]', 'text', 'text', 'interval', 'text',
          'text', 'bigint', 'numeric', 'integer', 'text', 'interval', 'interval',
          'text', 'jsonb', 'integer'], 'etl_alter_pipeline with the same parameters');
SELECT has_function('pg_catalog', 'etl_drop_pipeline', ARRAY['text'], 'etl_drop_pipeline(text)');
SELECT has_function('pg_catalog', 'etl_reset_watermark', ARRAY['text', 'text'], 'etl_reset_watermark(text, text)');
SELECT has_function('pg_catalog', 'etl_row_hash', ARRAY['"any"'], 'etl_row_hash(VARIADIC "any")');
SELECT has_function('pg_catalog', 'etl_retry_dead_letters', ARRAY['text'], 'etl_retry_dead_letters(text)');
SELECT has_function('pg_catalog', 'etl_add_check', ARRAY['text', 'text', 'text', 'jsonb', 'text', 'text'],
                    'etl_add_check(pipeline, kind, column_name, params, severity, name)');
SELECT has_function('pg_catalog', 'etl_drop_check', ARRAY['text', 'text'], 'etl_drop_check(pipeline, name)');
SELECT has_column('etl', 'check_results', c, 'etl.check_results.' || c)
  FROM unnest(ARRAY['run_id', 'check_name', 'kind', 'column_name', 'severity', 'passed',
                    'failing_rows', 'observed']) c;
SELECT throws_ok($$SELECT etl_add_check('nope', 'not_null', column_name => 'x')$$, '42704', NULL,
                 'a check of an unknown pipeline: 42704');
SELECT has_function('pg_catalog', 'etl_resolve_dead_letter', ARRAY['bigint', 'text', 'text'],
                    'etl_resolve_dead_letter(bigint, text, text)');
SELECT has_column('etl', 'dead_letters', c, 'etl.dead_letters.' || c)
  FROM unnest(ARRAY['id', 'pipeline', 'run_id', 'stage', 'record', 'error_class',
                    'sqlstate', 'error_message', 'status', 'retry_count',
                    'occurred_at', 'resolved_at', 'resolution']) c;
SELECT function_returns('pg_catalog', 'etl_row_hash', ARRAY['"any"'], 'bytea', 'etl_row_hash returns bytea');
SELECT has_function('pg_catalog', 'etl_schedule', ARRAY['text', 'text'], 'etl_schedule(text, text)');
SELECT function_returns('pg_catalog', 'etl_schedule', ARRAY['text', 'text'], 'bigint',
                        'etl_schedule returns the pg_cron job id');
SELECT has_function('pg_catalog', 'etl_unschedule', ARRAY['text'], 'etl_unschedule(text)');
SELECT function_returns('pg_catalog', 'etl_unschedule', ARRAY['text'], 'boolean',
                        'etl_unschedule returns whether there was a job');
SELECT is((SELECT array_agg(p.parameter_name::text ORDER BY p.ordinal_position)
             FROM information_schema.parameters p
             JOIN information_schema.routines r USING (specific_schema, specific_name)
            WHERE r.routine_name = 'etl_create_pipeline'),
          ARRAY['name', 'source', 'target', 'key', 'mode', 'watermark_column',
                'overlap', 'transform', 'load', 'batch_size', 'error_threshold',
                'max_attempts', 'retry_policy', 'retry_base_delay',
                                'retry_max_delay', 'on_schema_change', 'options',
                'alert_after_failures'],
          'etl_create_pipeline parameter names are those of the README (and alert_after_failures)');

-- privileges: PUBLIC reads, never writes; rows that may quote data are private
SELECT table_privs_are('etl', 'pipelines', 'public', ARRAY['SELECT'], 'PUBLIC only reads etl.pipelines');
SELECT table_privs_are('etl', 'runs', 'public', ARRAY['SELECT'], 'PUBLIC only reads etl.runs');
SELECT table_privs_are('etl', 'batches', 'public', ARRAY['SELECT'], 'PUBLIC only reads etl.batches');
SELECT table_privs_are('etl', 'dead_letters', 'public', ARRAY['SELECT'], 'PUBLIC only reads etl.dead_letters');
SELECT policies_are('etl', 'dead_letters', ARRAY['dead_letters_of_owner'],
                    'row level security shows each role only its own pipelines'' dead letters');
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 'etl.dead_letters'::regclass), true,
          'row level security is on for etl.dead_letters');
-- runs, batches and check results quote data (errors, samples): private too
SELECT table_privs_are('etl', 'check_results', 'public', ARRAY['SELECT'], 'PUBLIC only reads etl.check_results');
SELECT policies_are('etl', 'runs', ARRAY['runs_of_owner'],
                    'row level security shows each role only its own pipelines'' runs');
SELECT policies_are('etl', 'batches', ARRAY['batches_of_owner'],
                    'row level security shows each role only its own pipelines'' batches');
SELECT policies_are('etl', 'check_results', ARRAY['check_results_of_owner'],
                    'row level security shows each role only its own pipelines'' check results');
SELECT results_eq($$SELECT relname::text COLLATE "default" FROM pg_class
                    WHERE relnamespace = 'etl'::regnamespace AND relrowsecurity ORDER BY 1$$,
                  ARRAY['batches', 'check_results', 'dead_letters', 'runs', 'snapshot_signatures'],
                  'row level security is on for exactly the tables that may quote data (and the snapshot signatures)');
SELECT table_privs_are('etl', 'snapshot_signatures', 'public', ARRAY['SELECT'],
                       'PUBLIC only reads etl.snapshot_signatures (runs write them as the extension owner)');
SELECT table_privs_are('etl', 'status', 'public', ARRAY['SELECT'], 'PUBLIC only reads etl.status');
SELECT function_privs_are('pg_catalog', 'etl_run', ARRAY['text'], 'public', ARRAY['EXECUTE'],
                          'anyone may call etl_run (ownership is checked inside)');

-- error codes of refused definitions
CREATE SCHEMA tap;
CREATE TABLE tap.src (id int PRIMARY KEY, v text, at timestamptz);
CREATE TABLE tap.dst (id int PRIMARY KEY, v text, _etl_row_hash bytea);
INSERT INTO tap.src VALUES (1, 'a', '2024-01-01'), (2, 'b', '2024-01-02'), (3, 'c', '2024-01-03');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.nope', 'tap.dst', watermark_column => 'at')$$,
                 '42P01', NULL, 'missing source: 42P01');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.nope', watermark_column => 'at')$$,
                 '42P01', NULL, 'missing target: 42P01');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'nope')$$,
                 '42703', NULL, 'missing watermark column: 42703');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', key => ARRAY['nope'], watermark_column => 'at')$$,
                 '42703', NULL, 'missing key column: 42703');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'v')$$,
                 '42804', NULL, 'watermark column of a type the mode cannot use: 42804');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', mode => 'hourly', watermark_column => 'at')$$,
                 '22023', NULL, 'unknown mode: 22023');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', load => 'upsert', watermark_column => 'at')$$,
                 '22023', NULL, 'unknown load: 22023');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', retry_policy => 'x', watermark_column => 'at')$$,
                 '22023', NULL, 'unknown retry policy: 22023');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at', transform => 'SELECT FROM FROM')$$,
                 '42601', NULL, 'transform that does not parse: 42601');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at', transform => 'SELECT id, w AS v FROM etl_delta')$$,
                 '42703', NULL, 'transform referencing an unknown column: 42703');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at', transform => 'SELECT id, v AS w FROM etl_delta')$$,
                 '42703', NULL, 'transform producing a column the target lacks: 42703');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at', transform => 'SELECT circle(point(0,0), 1) AS id, v FROM etl_delta')$$,
                 '42804', NULL, 'transform producing an unassignable type: 42804');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at', transform => 'SELECT id, v FROM etl_delta; SELECT 1')$$,
                 '42601', NULL, 'transform with two statements: 42601');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at', batch_size => 0)$$,
                 '22023', NULL, 'zero batch size: 22023');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at', error_threshold => 101)$$,
                 '22023', NULL, 'threshold above 100: 22023');
SELECT throws_ok($$SELECT etl_create_pipeline(NULL, 'tap.src', 'tap.dst', watermark_column => 'at')$$,
                 '22004', NULL, 'NULL name: 22004');
SELECT throws_ok($$SELECT etl_create_pipeline('', 'tap.src', 'tap.dst', watermark_column => 'at')$$,
                 '22023', NULL, 'empty name: 22023');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', mode => 'cdc', watermark_column => 'at')$$,
                 '42703', NULL, 'mode cdc without an operation column: 42703');
SELECT is((SELECT count(*) FROM etl.pipelines), 0::bigint, 'no refusal stored anything');

-- a pipeline, a run, a duplicate
SELECT lives_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at')$$,
                'a valid pipeline is created');
SELECT throws_ok($$SELECT etl_create_pipeline('t', 'tap.src', 'tap.dst', watermark_column => 'at')$$,
                 '42710', NULL, 'duplicate name: 42710');
SELECT results_eq($$SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('t')$$,
                  $$VALUES ('succeeded', 3::bigint, 3::bigint, 0::bigint, 0::bigint)$$,
                  'first run loads every row');
SELECT results_eq($$SELECT id, v FROM tap.dst ORDER BY id$$,
                  $$SELECT id, v FROM tap.src ORDER BY id$$,
                  'target equals source row for row');
SELECT is((SELECT watermark::timestamptz FROM etl.pipelines WHERE name = 't'),
          (SELECT max(at) FROM tap.src), 'watermark is the newest loaded value');
SELECT results_eq($$SELECT status, rows_extracted FROM etl_run('t')$$,
                  $$VALUES ('succeeded', 0::bigint)$$, 'a second run finds nothing');
SELECT is((SELECT count(*) FROM etl.runs WHERE pipeline = 't'), 2::bigint, 'each run is recorded');
SELECT is((SELECT count(*) FROM etl.batches WHERE pipeline = 't' AND status = 'completed'),
          1::bigint, 'each extracted range is in the batch log');
SELECT results_eq($$SELECT pipeline, mode, load, last_status FROM etl.status WHERE pipeline = 't'$$,
                  $$VALUES ('t', 'timestamp', 'merge', 'succeeded')$$, 'etl.status shows the pipeline');

-- without pg_cron (this cluster does not load it): 55000
SELECT throws_ok($$SELECT etl_schedule('t', '*/15 * * * *')$$, '55000',
                 'cannot schedule pipeline "t": pg_cron is not installed',
                 'etl_schedule without pg_cron: 55000');
SELECT throws_ok($$SELECT etl_unschedule('t')$$, '55000',
                 'cannot unschedule pipeline "t": pg_cron is not installed',
                 'etl_unschedule without pg_cron: 55000');
SELECT is((SELECT schedule FROM etl.status WHERE pipeline = 't'), NULL,
          'etl.status.schedule is NULL without pg_cron');

-- other roles: 42501 on run, alter, reset, drop, schedule (a role without
-- attributes cannot make another role: it checks that it cannot write the
-- catalogs itself, and skips the rest)
\if :superuser
CREATE ROLE tap_etl_other;
SET LOCAL ROLE tap_etl_other;
SELECT throws_ok($$SELECT etl_run('t')$$, '42501', NULL, 'another role cannot run it');
SELECT throws_ok($$SELECT etl_alter_pipeline('t', batch_size => 10)$$, '42501', NULL, 'nor alter it');
SELECT throws_ok($$SELECT etl_reset_watermark('t')$$, '42501', NULL, 'nor reset it');
SELECT throws_ok($$SELECT etl_drop_pipeline('t')$$, '42501', NULL, 'nor drop it');
SELECT throws_ok($$SELECT etl_schedule('t', '* * * * *')$$, '42501', NULL, 'nor schedule it');
SELECT throws_ok($$SELECT etl_unschedule('t')$$, '42501', NULL, 'nor unschedule it');
SELECT throws_ok($$UPDATE etl.pipelines SET watermark = NULL$$, '42501', NULL, 'nor write the catalog');
SELECT throws_ok($$SELECT etl_check_sql('t')$$, '42501', NULL, 'nor see its check query');
SELECT is((SELECT count(*) FROM etl.runs WHERE pipeline = 't'), 0::bigint, 'nor read its runs');
SELECT is((SELECT count(*) FROM etl.batches WHERE pipeline = 't'), 0::bigint, 'nor its batches');
RESET ROLE;
\else
SELECT throws_ok($$UPDATE etl.pipelines SET watermark = NULL$$, '42501', NULL,
                 'the owner writes no catalog either');
SELECT throws_ok($$DELETE FROM etl.runs$$, '42501', NULL, 'nor deletes its runs');
SELECT skip('another role is made by a superuser only', 8);
\endif

SELECT lives_ok($$SELECT etl_drop_pipeline('t')$$, 'its owner drops it');
SELECT is((SELECT count(*) FROM etl.runs WHERE pipeline = 't'), 0::bigint, 'no run rows outlive it');

SELECT * FROM finish();
ROLLBACK;
