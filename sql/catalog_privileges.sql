-- catalog_privileges: no role but the extension owner writes or locks the
-- catalogs beyond ACCESS SHARE; what is not API lives in etl_internal, and
-- PUBLIC may execute there exactly what runs with a user's rights
-- (in a database of its own: what it asserts of all pipelines, or of
-- every catalog, does not depend on the other tests)
\set regress_db :DBNAME
CREATE DATABASE regress_etl_catalog_privileges;
\c regress_etl_catalog_privileges
CREATE EXTENSION etl_ext;
CREATE ROLE regress_etl_cp_owner;     -- owns pipelines
CREATE ROLE regress_etl_cp_reader;    -- owns nothing, reads status and metrics
CREATE SCHEMA cp AUTHORIZATION regress_etl_cp_owner;
GRANT USAGE ON SCHEMA cp TO regress_etl_cp_reader;

-- lock_modes(rel): the lock modes the current role may take on rel (and
-- whether it may lock rows of it), each tried and its 42501 caught
CREATE FUNCTION cp.lock_modes(rel regclass) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE
    mode text;
    allowed text[] := '{}';
BEGIN
    FOREACH mode IN ARRAY ARRAY['ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE',
                                'SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE',
                                'EXCLUSIVE', 'ACCESS EXCLUSIVE'] LOOP
        BEGIN
            EXECUTE format('LOCK TABLE %s IN %s MODE NOWAIT', rel, mode);
            allowed := allowed || mode;
        EXCEPTION WHEN insufficient_privilege THEN NULL;
        END;
    END LOOP;
    IF (SELECT relkind FROM pg_class WHERE oid = rel) = 'r' THEN
        BEGIN
            EXECUTE format('SELECT FROM %s LIMIT 1 FOR KEY SHARE NOWAIT', rel);
            allowed := allowed || 'FOR KEY SHARE'::text;
        EXCEPTION WHEN insufficient_privilege THEN NULL;
        END;
    END IF;
    RETURN allowed;
END
$fn$;
GRANT USAGE ON SCHEMA cp TO PUBLIC;

-- a snapshot pipeline of the owner, with signatures
SET ROLE regress_etl_cp_owner;
CREATE TABLE cp.src (id int PRIMARY KEY, v text, at timestamptz NOT NULL DEFAULT now());
INSERT INTO cp.src (id, v) SELECT g, 'v' || g FROM generate_series(1, 25) g;
CREATE TABLE cp.dst (id int PRIMARY KEY, v text);
SELECT etl_create_pipeline('cp_snap', 'cp.src', 'cp.dst', mode => 'snapshot',
                           transform => 'SELECT id, v FROM etl_delta') IS NOT NULL AS created;
SELECT status, rows_inserted FROM etl_run('cp_snap');
RESET ROLE;

-- PUBLIC (a role granted nothing) reads every relation of schema etl and
-- writes none; sequences are not even readable
SELECT c.relname, c.relkind,
       has_table_privilege('regress_etl_cp_reader', c.oid, 'SELECT') AS can_select,
       has_table_privilege('regress_etl_cp_reader', c.oid,
                           'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS can_write
  FROM pg_class c
 WHERE c.relnamespace = 'etl'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
 ORDER BY c.relname;
SELECT count(*) AS sequences,
       count(*) FILTER (WHERE has_sequence_privilege('regress_etl_cp_reader', c.oid,
                                                     'USAGE, SELECT, UPDATE')) AS usable
  FROM pg_class c WHERE c.relnamespace = 'etl'::regnamespace AND c.relkind = 'S';
SELECT count(*) AS grants_to_public_beyond_select
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'etl'::regnamespace AND a.grantee = 0
   AND a.privilege_type <> 'SELECT';

-- no role but the extension owner takes more than ACCESS SHARE on a
-- catalog: not a role that owns nothing, nor a pipeline owner (each mode
-- tried; the others fail with 42501)
SET ROLE regress_etl_cp_reader;
SELECT c.relname, cp.lock_modes(c.oid) AS reader_may
  FROM pg_class c
 WHERE c.relnamespace = 'etl'::regnamespace AND c.relkind IN ('r', 'p', 'v')
 ORDER BY c.relname;
RESET ROLE;
SET ROLE regress_etl_cp_owner;
SELECT c.relname, cp.lock_modes(c.oid) AS owner_may
  FROM pg_class c
 WHERE c.relnamespace = 'etl'::regnamespace AND c.relkind IN ('r', 'p', 'v')
 ORDER BY c.relname;
-- one of them, as the statement a user would type
BEGIN;
LOCK TABLE etl.snapshot_signatures IN ACCESS EXCLUSIVE MODE;
\echo sqlstate :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
LOCK TABLE etl.snapshot_signatures IN ROW EXCLUSIVE MODE;
\echo sqlstate :LAST_ERROR_SQLSTATE
ROLLBACK;
-- nor may the owner write her own pipeline's signatures
UPDATE etl.snapshot_signatures SET row_hash = '\x00';
\echo sqlstate :LAST_ERROR_SQLSTATE
DELETE FROM etl.snapshot_signatures;
\echo sqlstate :LAST_ERROR_SQLSTATE
INSERT INTO etl.snapshot_signatures VALUES (1, '\x01', '\x01', '{}');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- she reads them, her runs write them (as the extension owner): changed,
-- new and vanished keys, then a re-run that finds nothing
SELECT count(*) AS her_signatures FROM etl.snapshot_signatures;
UPDATE cp.src SET v = 'changed' WHERE id = 3;
INSERT INTO cp.src (id, v) VALUES (26, 'new');
DELETE FROM cp.src WHERE id IN (1, 2);
SELECT status, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('cp_snap');
SELECT status, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('cp_snap');
SELECT count(*) AS differences FROM (
    (SELECT id, v FROM cp.src EXCEPT SELECT id, v FROM cp.dst)
    UNION ALL (SELECT id, v FROM cp.dst EXCEPT SELECT id, v FROM cp.src)) d;
SELECT count(*) AS signatures, count(*) FILTER (WHERE s.key = jsonb_build_object('id', 26)) AS of_new_key,
       count(*) FILTER (WHERE s.key->>'id' IN ('1', '2')) AS of_vanished_keys
  FROM etl.snapshot_signatures s;
RESET ROLE;
-- another role sees none of them
SET ROLE regress_etl_cp_reader;
SELECT count(*) AS visible_signatures FROM etl.snapshot_signatures;
RESET ROLE;
-- a first load larger than the chunks signatures are written in (10,000)
SET ROLE regress_etl_cp_owner;
CREATE TABLE cp.big (id int PRIMARY KEY, v text);
INSERT INTO cp.big SELECT g, 'v' || g FROM generate_series(1, 25000) g;
CREATE TABLE cp.big_copy (id int PRIMARY KEY, v text);
SELECT etl_create_pipeline('cp_big', 'cp.big', 'cp.big_copy', mode => 'snapshot') IS NOT NULL AS created;
SELECT status, rows_inserted FROM etl_run('cp_big');
DELETE FROM cp.big WHERE id % 1000 = 0;
UPDATE cp.big SET v = 'w' WHERE id % 999 = 0;
SELECT status, rows_updated, rows_deleted FROM etl_run('cp_big');
SELECT status, rows_extracted, rows_unchanged FROM etl_run('cp_big');
SELECT count(*) AS signatures FROM etl.snapshot_signatures s JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name = 'cp_big';
SELECT count(*) AS differences FROM (
    (SELECT id, v FROM cp.big EXCEPT SELECT id, v FROM cp.big_copy)
    UNION ALL (SELECT id, v FROM cp.big_copy EXCEPT SELECT id, v FROM cp.big)) d;
SELECT etl_drop_pipeline('cp_big');
RESET ROLE;

-- etl_internal: what is not API.  PUBLIC may execute exactly what SQL run
-- with a user's rights calls; the aggregates' support functions are
-- revoked
SELECT has_schema_privilege('regress_etl_cp_reader', 'etl_internal', 'USAGE') AS usage,
       has_schema_privilege('regress_etl_cp_reader', 'etl_internal', 'CREATE') AS "create";
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_etl_cp_reader', p.oid, 'EXECUTE') AS public_executes
  FROM pg_proc p WHERE p.pronamespace = 'etl_internal'::regnamespace
 ORDER BY p.proname, 1::text;

-- each of those grants is needed: without it, what calls the function
-- fails with 42501 for a non-superuser (tried in a subtransaction that
-- takes the REVOKE back)
CREATE FUNCTION cp.without_execute(fn regprocedure, who name, stmt text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    state text;
BEGIN
    BEGIN
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('SET LOCAL ROLE %I', who);
        EXECUTE stmt;
        RAISE EXCEPTION 'ran' USING ERRCODE = 'P0001';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
    END;
    RETURN state;
END
$fn$;
SET ROLE regress_etl_cp_owner;
CREATE TABLE cp.orders (id int PRIMARY KEY, customer int, amount float8, at timestamptz NOT NULL);
INSERT INTO cp.orders SELECT g, g % 3 + 1, g, '2024-01-01'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 30) g;
CREATE TABLE cp.customers (id int PRIMARY KEY);
INSERT INTO cp.customers VALUES (1), (2), (3);
CREATE TABLE cp.fact (id int PRIMARY KEY, customer int, amount float8, at timestamptz);
CREATE TABLE cp.tracked (id int PRIMARY KEY, v text);
-- (a key that may be NULL in the target: the load statements guard it)
CREATE TABLE cp.fact_nk (id int UNIQUE, customer int, amount float8, at timestamptz);
SELECT etl_create_pipeline('cp_nk', 'cp.orders', 'cp.fact_nk', key => ARRAY['id'],
                           watermark_column => 'at') IS NOT NULL AS created;
SELECT etl_create_pipeline('cp_ts', 'cp.orders', 'cp.fact', watermark_column => 'at',
                           batch_size => 10) IS NOT NULL AS created;
SELECT etl_add_check('cp_ts', 'unique', column_name => 'id');
SELECT etl_add_check('cp_ts', 'z_score', column_name => 'amount', severity => 'warning');
SELECT etl_add_check('cp_ts', 'foreign_key', column_name => 'customer',
                     params => '{"references": "cp.customers(id)"}');
RESET ROLE;
SELECT f AS function, cp.without_execute(f::regprocedure, w, s) AS sqlstate
  FROM (VALUES
    ('etl_internal.etl_null_key(text)', 'regress_etl_cp_owner', $$SELECT etl_run('cp_nk')$$),
    ('etl_internal.etl_dup_count(anyelement)', 'regress_etl_cp_owner', $$SELECT etl_run('cp_ts')$$),
    ('etl_internal.etl_zstats(float8)', 'regress_etl_cp_owner', $$SELECT etl_run('cp_ts')$$),
    ('etl_internal.etl_not_in(int8, regclass, text)', 'regress_etl_cp_owner', $$SELECT etl_run('cp_ts')$$),
    ('etl_internal.etl_track_changes_trigger()', 'regress_etl_cp_owner',
     $$SELECT etl_track_changes('cp.tracked')$$),
    ('etl_internal.etl_lag(text)', 'regress_etl_cp_reader', $$SELECT lag FROM etl.status$$),
    ('etl_internal.etl_schedules()', 'regress_etl_cp_reader', $$SELECT schedule FROM etl.status$$),
    ('etl_internal.etl_unrecorded_failures()', 'regress_etl_cp_reader',
     $$SELECT unrecorded_failures FROM etl.status$$),
    ('etl_internal.etl_duration_buckets()', 'regress_etl_cp_reader', $$SELECT etl_metrics()$$),
    ('etl_internal.etl_lineage_columns(text)', 'regress_etl_cp_reader', $$SELECT * FROM etl_lineage()$$),
    ('etl_internal.etl_lineage_relations(text)', 'regress_etl_cp_reader', $$SELECT etl_lineage_dot()$$),
    ('etl_internal.etl_lineage_edges()', 'regress_etl_cp_reader',
     $$SELECT * FROM etl_lineage_upstream('cp.dst')$$),
    ('etl_internal.etl_lineage_namespace()', 'regress_etl_cp_owner',
     $$SELECT etl_openlineage(max(run_id)) FROM etl.runs WHERE pipeline = 'cp_snap'$$),
    ('etl_internal.etl_openlineage_dataset(regclass)', 'regress_etl_cp_owner',
     $$SELECT etl_openlineage(max(run_id)) FROM etl.runs WHERE pipeline = 'cp_snap'$$),
    ('etl_internal.etl_steps_check(text, text, boolean)', 'regress_etl_cp_owner',
     $$CALL etl_catch_up('cp_ts')$$),
    ('etl_internal.etl_batch_recover(text)', 'regress_etl_cp_owner',
     $$SELECT etl_internal.etl_batch_recover('cp_ts')$$),
    ('etl_internal.etl_backfill_steps(text, text, text, text)', 'regress_etl_cp_owner',
     $$SELECT * FROM etl_internal.etl_backfill_steps('cp_ts', '2024-01-01', '2024-01-02', '1 day')$$),
    ('etl_internal.etl_batch_start(text, text, text, text)', 'regress_etl_cp_owner',
     $$SELECT etl_internal.etl_batch_start('cp_ts', 'catch_up')$$),
    ('etl_internal.etl_run_step(text, text, text, text, bigint)', 'regress_etl_cp_owner',
     $$SELECT etl_internal.etl_run_step('cp_ts', 'catch_up')$$),
    ('etl_internal.etl_pending_rows(text)', 'regress_etl_cp_owner',
     $$SELECT etl_internal.etl_pending_rows('cp_ts')$$)
  ) AS t(f, w, s);
-- (the runs that failed above were recorded as failed: forget them)
DELETE FROM etl.runs WHERE pipeline IN ('cp_ts', 'cp_nk');

-- with the grants, all of it works for a non-superuser owner (the check
-- pass in parallel workers too) and for a role that owns nothing
SET ROLE regress_etl_cp_owner;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET force_parallel_mode = on;
SET client_min_messages = warning;  -- progress notices carry timings
CALL etl_catch_up('cp_ts');
CALL etl_backfill('cp_ts', '2024-01-01', '2024-01-02', '12 hours');
RESET client_min_messages;
RESET force_parallel_mode;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
SELECT triggered_by, status, count(*), sum(rows_extracted) AS rows FROM etl.runs
 WHERE pipeline = 'cp_ts' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT check_name, passed, count(*) FROM etl.check_results WHERE pipeline = 'cp_ts'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS differences FROM (
    (SELECT id, customer, amount, at FROM cp.orders EXCEPT SELECT * FROM cp.fact)
    UNION ALL (SELECT * FROM cp.fact EXCEPT SELECT id, customer, amount, at FROM cp.orders)) d;
SELECT etl_track_changes('cp.tracked');
INSERT INTO cp.tracked VALUES (1, 'a');
GRANT UPDATE, SELECT ON cp.tracked TO regress_etl_cp_reader;
GRANT SELECT ON cp.orders TO regress_etl_cp_reader;  -- the lag is shown to who may read the source
RESET ROLE;
SET ROLE regress_etl_cp_reader;
UPDATE cp.tracked SET v = 'b' WHERE id = 1;
SELECT pipeline, lag IS NOT NULL AS has_lag, schedule FROM etl.status
 WHERE pipeline LIKE 'cp\_%' ORDER BY pipeline;
SELECT etl_metrics() LIKE '%etl_runs_total{pipeline="cp_ts",status="succeeded"}%' AS metrics;
SELECT pipeline, target_column, source_columns FROM etl_lineage('cp.fact');
SELECT * FROM etl_lineage_upstream('cp.dst');
SELECT etl_lineage_dot() LIKE '%"cp.src" -> "cp.dst"%' AS dot;
RESET ROLE;
SET ROLE regress_etl_cp_owner;
SELECT etl_openlineage(max(run_id))->'outputs'->0->>'name' LIKE '%.cp.dst' AS openlineage
  FROM etl.runs WHERE pipeline = 'cp_snap';
SELECT status, rows_inserted FROM etl_run('cp_nk');
SELECT etl_drop_pipeline('cp_ts'), etl_drop_pipeline('cp_snap'), etl_drop_pipeline('cp_nk');
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA cp CASCADE;
RESET client_min_messages;
\c :regress_db
DROP DATABASE regress_etl_catalog_privileges;
DROP ROLE regress_etl_cp_owner, regress_etl_cp_reader;
