-- hostile_path: nothing etl_ext runs resolves a name through the caller's or
-- the pipeline owner's search_path.  A pipeline owner plants look-alikes of
-- what etl_ext names (types as domains whose CHECK calls her function,
-- functions, aggregates, every built-in operator of the usual names, casts)
-- in a schema of hers, each of which records that it ran and tries to make
-- her a superuser.  Every entry point then runs with that schema first in
-- the search_path, as a superuser and as the owner; then with an empty
-- search_path; then after the owner's own code has put her schema first in
-- the middle of a call.  Nothing planted may run, and the results must be
-- right.
-- (in a database of its own: what it asserts of all pipelines, or of
-- every catalog, does not depend on the other tests)
\set regress_db :DBNAME
CREATE DATABASE regress_etl_hostile_path;
\c regress_etl_hostile_path
CREATE EXTENSION etl_ext;
CREATE ROLE regress_etl_hp_alice;
CREATE SCHEMA trap AUTHORIZATION regress_etl_hp_alice;
GRANT USAGE ON SCHEMA trap TO PUBLIC;
CREATE SCHEMA hp AUTHORIZATION regress_etl_hp_alice;
GRANT USAGE ON SCHEMA hp TO PUBLIC;

SET ROLE regress_etl_hp_alice;
CREATE TABLE trap.log (n bigserial, what text, who name DEFAULT current_user);
GRANT INSERT, SELECT ON trap.log TO PUBLIC;
GRANT USAGE ON SEQUENCE trap.log_n_seq TO PUBLIC;
-- what every planted object calls: a record, and an escalation attempt
CREATE FUNCTION trap.hit(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
    INSERT INTO trap.log (what) VALUES (what);
    BEGIN
        ALTER ROLE regress_etl_hp_alice SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END
$fn$;
-- types: domains named like built-in types (their arrays come with them)
DO $do$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'int8', 'int4', 'int2', 'numeric', 'float8', 'float4', 'bool',
                             'timestamptz', 'timestamp', 'date', 'interval', 'jsonb', 'json',
                             'bytea', 'name', 'oid', 'regclass', 'regrole', 'xid8', 'pg_snapshot',
                             'varchar', 'bpchar'] LOOP
        EXECUTE format('CREATE DOMAIN trap.%I AS pg_catalog.%I CHECK (trap.hit(%L))',
                       t, t, 'domain ' || t);
    END LOOP;
END
$do$;
-- casts: types named like built-in ones, with an implicit cast from text
DO $do$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['regtype', 'regnamespace', 'regprocedure', 'regproc', 'pg_lsn',
                             'uuid'] LOOP
        EXECUTE format('CREATE TYPE trap.%I AS ENUM (''x'')', t);
        EXECUTE format('CREATE FUNCTION trap.%I(pg_catalog.text) RETURNS trap.%I LANGUAGE sql '
                       'SET search_path = pg_catalog AS %L', 'to_' || t, t,
                       format('SELECT CASE WHEN trap.hit(%L) THEN ''x''::trap.%I END',
                              'cast text to ' || t, t));
        EXECUTE format('CREATE CAST (pg_catalog.text AS trap.%I) WITH FUNCTION trap.%I(pg_catalog.text) '
                       'AS IMPLICIT', t, 'to_' || t);
    END LOOP;
END
$do$;
CREATE TYPE trap.record AS (x int);
-- operators: every built-in one of these names, same argument types
DO $do$
DECLARE
    o record;
    n integer := 0;
BEGIN
    FOR o IN
        SELECT op.oprname, op.oprleft, op.oprright, op.oprresult
          FROM pg_catalog.pg_operator op
         WHERE op.oprnamespace = 'pg_catalog'::regnamespace
           AND op.oprname IN ('=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '||',
                              '->', '->>', '#>', '#>>', '?', '@>', '<@', '~~', '!~~', '~', '&&')
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_type t
                            WHERE t.oid IN (op.oprleft, op.oprright, op.oprresult)
                              AND t.typtype = 'p')
         ORDER BY op.oid
    LOOP
        n := n + 1;
        IF o.oprleft = 0 THEN
            EXECUTE format('CREATE FUNCTION trap.op%s(%s) RETURNS %s LANGUAGE sql '
                           'SET search_path = pg_catalog AS %L',
                           n, o.oprright::regtype, o.oprresult::regtype,
                           format('SELECT CASE WHEN trap.hit(%L) THEN OPERATOR(pg_catalog.%s) $1 END',
                                  'operator ' || o.oprname || ' ' || o.oprright::regtype, o.oprname));
            EXECUTE format('CREATE OPERATOR trap.%s (RIGHTARG = %s, FUNCTION = trap.op%s)',
                           o.oprname, o.oprright::regtype, n);
        ELSE
            EXECUTE format('CREATE FUNCTION trap.op%s(%s, %s) RETURNS %s LANGUAGE sql '
                           'SET search_path = pg_catalog AS %L',
                           n, o.oprleft::regtype, o.oprright::regtype, o.oprresult::regtype,
                           format('SELECT CASE WHEN trap.hit(%L) THEN $1 OPERATOR(pg_catalog.%s) $2 END',
                                  'operator ' || o.oprleft::regtype || ' ' || o.oprname || ' ' ||
                                  o.oprright::regtype, o.oprname));
            EXECUTE format('CREATE OPERATOR trap.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = trap.op%s)',
                           o.oprname, o.oprleft::regtype, o.oprright::regtype, n);
        END IF;
    END LOOP;
END
$do$;
-- functions: built-in ones of the names etl_ext calls (and neighbours of
-- COALESCE, GREATEST, NULLIF), same signatures and parameter names
DO $do$
DECLARE
    f record;
    args text;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.pronargs, p.proretset,
               pg_catalog.pg_get_function_arguments(p.oid) AS arglist,
               pg_catalog.pg_get_function_result(p.oid) AS result
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
           AND p.proname IN ('now', 'clock_timestamp', 'statement_timestamp', 'pg_has_role',
                             'quote_ident', 'quote_literal', 'date_part', 'to_char', 'round',
                             'ceil', 'floor', 'pg_snapshot_xmax', 'pg_snapshot_xmin', 'pg_notify',
                             'pg_current_snapshot', 'make_interval', 'lower', 'upper',
                             'jsonb_typeof', 'current_database', 'width_bucket', 'timezone',
                             'pg_visible_in_snapshot', 'pg_get_userbyid', 'pg_current_xact_id',
                             'pg_backend_pid', 'nextval', 'generate_series', 'format_type', 'abs',
                             'get_byte', 'jsonb_array_elements', 'jsonb_set', 'jsonb_strip_nulls',
                             'md5', 'replace', 'substr', 'to_regclass', 'length', 'greatest',
                             'least', 'nullif', 'coalesce', 'ceiling', 'date_trunc', 'to_jsonb',
                             'to_timestamp', 'extract', 'encode', 'decode', 'has_table_privilege',
                             'obj_description', 'pg_relation_size')
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_type t
                            WHERE (t.oid = ANY (p.proargtypes) OR t.oid = p.prorettype)
                              AND t.typtype = 'p')
         ORDER BY p.oid
    LOOP
        SELECT pg_catalog.string_agg('$' || i, ', ' ORDER BY i) INTO args
          FROM pg_catalog.generate_series(1, f.pronargs) i;
        EXECUTE format('CREATE FUNCTION trap.%I(%s) RETURNS %s LANGUAGE sql '
                       'SET search_path = pg_catalog AS %L',
                       f.proname, f.arglist, f.result,
                       format(CASE WHEN f.proretset
                                   THEN 'SELECT pg_catalog.%I(%s) WHERE trap.hit(%L)'
                                   ELSE 'SELECT CASE WHEN trap.hit(%3$L) THEN pg_catalog.%1$I(%2$s) END'
                              END, f.proname, COALESCE(args, ''),
                              'function ' || f.oid::regprocedure::text));
    END LOOP;
END
$do$;
-- aggregates of the names etl_ext uses, for the types it uses them with
CREATE FUNCTION trap.count_star(bigint) RETURNS bigint LANGUAGE sql SET search_path = pg_catalog
    AS $$SELECT CASE WHEN trap.hit('aggregate count(*)') THEN $1 + 1 END$$;
CREATE AGGREGATE trap.count(*) (SFUNC = trap.count_star, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION trap.string_agg_t(text, text, text) RETURNS text LANGUAGE sql
    SET search_path = pg_catalog
    AS $$SELECT CASE WHEN trap.hit('aggregate string_agg(text, text)') THEN $2 END$$;
CREATE AGGREGATE trap.string_agg(text, text) (SFUNC = trap.string_agg_t, STYPE = text);
DO $do$
DECLARE
    t text;
    a text;
BEGIN
    FOREACH t IN ARRAY ARRAY['bigint', 'integer', 'smallint', 'numeric', 'double precision', 'text',
                             'bytea', 'timestamp with time zone', 'timestamp without time zone',
                             'date', 'interval', 'jsonb', 'boolean', 'pg_lsn', 'xid8'] LOOP
        EXECUTE format('CREATE FUNCTION trap.%I(bigint, %s) RETURNS bigint LANGUAGE sql '
                       'SET search_path = pg_catalog AS %L', 'count_' || pg_catalog.md5(t), t,
                       format('SELECT CASE WHEN trap.hit(%L) THEN $1 + 1 END',
                              'aggregate count(' || t || ')'));
        EXECUTE format('CREATE AGGREGATE trap.count(%s) (SFUNC = trap.%I, STYPE = bigint, '
                       'INITCOND = ''0'')', t, 'count_' || pg_catalog.md5(t));
        FOREACH a IN ARRAY ARRAY['max', 'min', 'sum', 'avg', 'array_agg', 'jsonb_agg', 'bool_or',
                                 'bool_and', 'stddev_samp'] LOOP
            CONTINUE WHEN a IN ('bool_or', 'bool_and') AND t <> 'boolean';
            CONTINUE WHEN a IN ('sum', 'avg', 'stddev_samp')
                      AND t NOT IN ('bigint', 'integer', 'smallint', 'numeric', 'double precision',
                                    'interval');
            EXECUTE format('CREATE FUNCTION trap.%I(%s, %s) RETURNS %s LANGUAGE sql '
                           'SET search_path = pg_catalog AS %L', a || '_' || pg_catalog.md5(t),
                           t, t, t,
                           format('SELECT CASE WHEN trap.hit(%L) THEN $2 END',
                                  'aggregate ' || a || '(' || t || ')'));
            EXECUTE format('CREATE AGGREGATE trap.%I(%s) (SFUNC = trap.%I, STYPE = %s)',
                           a, t, a || '_' || pg_catalog.md5(t), t);
        END LOOP;
    END LOOP;
END
$do$;
-- look-alikes of etl_ext's own internal functions, same signatures
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, pg_catalog.pg_get_function_arguments(p.oid) AS arglist,
               pg_catalog.pg_get_function_result(p.oid) AS result
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'etl_internal'::regnamespace AND p.prokind = 'f'
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_type t
                            WHERE (t.oid = ANY (p.proargtypes) OR t.oid = p.prorettype)
                              AND t.typtype = 'p')
    LOOP
        EXECUTE format('CREATE FUNCTION trap.%I(%s) RETURNS %s LANGUAGE plpgsql '
                       'SET search_path = pg_catalog AS %L',
                       f.proname, f.arglist, f.result,
                       format('BEGIN PERFORM trap.hit(%L); RETURN NULL; END',
                              'function ' || f.oid::regprocedure::text));
    END LOOP;
END
$do$;
RESET ROLE;
SELECT count(*) FILTER (WHERE prokind = 'f') > 800 AS functions_planted,
       count(*) FILTER (WHERE prokind = 'a') > 90 AS aggregates_planted,
       (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'trap'::regnamespace) > 500
           AS operators_planted,
       (SELECT count(*) FROM pg_type WHERE typnamespace = 'trap'::regnamespace AND typtype = 'd')
           AS domains_planted
  FROM pg_proc WHERE pronamespace = 'trap'::regnamespace;
-- the traps work: a statement that resolves through the schema is recorded
-- (as alice: a superuser's would make her one)
SET ROLE regress_etl_hp_alice;
SET search_path = trap, pg_catalog;
SELECT 1 = 1 AS resolved_through_trap;
RESET search_path;
RESET ROLE;
SELECT what, who FROM trap.log;
TRUNCATE trap.log;

-- alice's data: orders, customers, a target, a tracked table
SET ROLE regress_etl_hp_alice;
CREATE TABLE hp.customers (id int PRIMARY KEY);
INSERT INTO hp.customers SELECT g FROM generate_series(1, 5) g;
CREATE TABLE hp.orders (id int PRIMARY KEY, customer int, amount numeric(10,2), email text,
                        at timestamptz NOT NULL);
INSERT INTO hp.orders
SELECT g, g % 5 + 1, g * 1.5, 'c' || g || '@example.com', '2024-01-01 00:00+00'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 40) g;
-- row 13 is bad: the target refuses a negative amount
UPDATE hp.orders SET amount = -1 WHERE id = 13;
CREATE TABLE hp.fact (id int PRIMARY KEY, customer int, amount numeric(10,2) CHECK (amount >= 0),
                      email text, at timestamptz, _etl_row_hash bytea, _etl_run_id bigint,
                      _etl_loaded_at timestamptz);
CREATE TABLE hp.snap (id int PRIMARY KEY, customer int, amount numeric(10,2), email text,
                      at timestamptz, _etl_row_hash bytea);
CREATE TABLE hp.tracked (id int PRIMARY KEY, v text);
INSERT INTO hp.tracked SELECT g, 'v' || g FROM generate_series(1, 10) g;
CREATE TABLE hp.tracked_copy (id int PRIMARY KEY, v text);
-- what the owner's code does in the last round: puts her schema first
CREATE FUNCTION hp.leak() RETURNS boolean LANGUAGE sql
    AS $$SELECT pg_catalog.set_config('search_path', 'trap, pg_catalog', false) IS NOT NULL$$;
CREATE VIEW hp.leaky_orders AS SELECT * FROM hp.orders WHERE hp.leak();
CREATE TABLE hp.leak_fact (id int PRIMARY KEY, customer int, amount numeric(10,2), email text,
                           at timestamptz);
RESET ROLE;

-- 1. her schema first in the search_path: the owner defines, a superuser
--    runs, inspects and monitors, the owner runs again
SET search_path = trap, pg_catalog;
SET ROLE regress_etl_hp_alice;
SELECT etl_create_pipeline('hp_ts', 'hp.orders', 'hp.fact', watermark_column => 'at',
                           batch_size => 10, error_threshold => 50) IS NOT NULL AS created;
SELECT etl_create_pipeline('hp_snap', 'hp.orders', 'hp.snap', mode => 'snapshot',
                           transform => 'SELECT id, customer, amount, email, at FROM etl_delta')
       IS NOT NULL AS created;
SELECT etl_track_changes('hp.tracked');
SELECT etl_create_pipeline('hp_xid', 'hp.tracked', 'hp.tracked_copy', mode => 'xid')
       IS NOT NULL AS created;
SELECT etl_add_check('hp_ts', 'unique', column_name => 'id');
SELECT etl_add_check('hp_ts', 'not_null', column_name => 'customer');
SELECT etl_add_check('hp_ts', 'foreign_key', column_name => 'customer',
                     params => '{"references": "hp.customers(id)"}');
SELECT etl_add_check('hp_ts', 'z_score', column_name => 'amount', severity => 'warning');
SELECT etl_add_check('hp_ts', 'range', column_name => 'amount', params => '{"min": -5, "max": 1000}');
SELECT etl_add_check('hp_ts', 'accepted_values', column_name => 'customer',
                     params => '{"values": [1, 2, 3, 4, 5]}');
SELECT etl_add_check('hp_ts', 'expression', params => '{"sql": "email IS NOT NULL"}');
SELECT etl_add_check('hp_ts', 'freshness', params => '{"max_age": "100 years"}');
SELECT etl_add_check('hp_ts', 'row_count', params => '{"max": 1000}', severity => 'warning');
SELECT etl_add_check('hp_ts', 'positive', column_name => 'customer', severity => 'warning');
SELECT etl_add_check('hp_snap', 'unique', column_name => 'email');
RESET ROLE;
SELECT etl_check_sql('hp_ts') IS NOT NULL AS check_sql;
SELECT (SELECT true FROM etl_explain('hp_ts') LIMIT 1) AS explained;
SET client_min_messages = warning;  -- progress notices carry timings
CALL etl_catch_up('hp_ts');
CALL etl_backfill('hp_ts', from_value => '2024-01-01 00:00+00', to_value => '2024-01-01 12:00+00',
                  step => '6 hours', force => true);
RESET client_min_messages;
SELECT status, rows_extracted, rows_inserted FROM etl_run('hp_snap');
SELECT status, rows_extracted, rows_inserted FROM etl_run('hp_xid');
SELECT etl_reset_watermark('hp_ts', '2024-01-02 06:00+00');
SELECT status, rows_extracted, rows_unchanged, rows_rejected FROM etl_run('hp_ts');
SELECT etl_alter_pipeline('hp_ts', transform => 'SELECT id, customer, abs(amount) AS amount, email, at FROM etl_delta')
       IS NOT NULL AS altered;
SELECT retried, resolved, still_pending FROM etl_retry_dead_letters('hp_ts');
SELECT pipeline, mode, last_status, consecutive_failures, pending_dead_letters, schedule
  FROM etl.status WHERE pipeline OPERATOR(pg_catalog.~~) 'hp\_%' ORDER BY pipeline;
SELECT etl_metrics() IS NOT NULL AS prometheus, etl_metrics('json') IS NOT NULL AS json,
       (SELECT true FROM etl_metric_rows() LIMIT 1) AS metric_rows;
SELECT pipeline, target_column, source_columns, transformation FROM etl_lineage('hp.fact');
SELECT relation, depth, pipeline FROM etl_lineage_upstream('hp.snap');
SELECT etl_lineage_dot() IS NOT NULL AS dot;
SELECT etl_error_class('23505') AS class, etl_retry_delay('hp_ts', 2) IS NOT NULL AS delay,
       etl_row_hash(1, 'a') IS NOT NULL AS row_hash;
SELECT etl_schedule('hp_ts', '* * * * *');
SELECT etl_unschedule('hp_ts');
SELECT etl_drop_check('hp_ts', 'hp_ts_customer_positive') AS dropped;
RESET search_path;
SELECT max(run_id) AS run FROM etl.runs WHERE pipeline = 'hp_ts' \gset
SELECT min(id) AS dead_letter FROM etl.dead_letters WHERE pipeline = 'hp_ts' \gset
SET search_path = trap, pg_catalog;
SELECT etl_openlineage(:run) IS NOT NULL AS complete, etl_openlineage(:run, 'START') IS NOT NULL AS start;
SELECT etl_resolve_dead_letter(:dead_letter, 'ignored', 'replayed, then looked at') AS closed;
-- the owner runs her own pipelines under the same path
SET ROLE regress_etl_hp_alice;
SELECT status, rows_extracted FROM etl_run('hp_ts');
SELECT status FROM etl_run('hp_snap');
SELECT pipeline, last_status FROM etl.status
 WHERE pipeline OPERATOR(pg_catalog.~~) 'hp\_%' ORDER BY pipeline;
SELECT etl_drop_pipeline('hp_xid');
RESET ROLE;
RESET search_path;

-- nothing planted ran, alice is no superuser, and the results are right
SELECT what, who FROM trap.log;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_etl_hp_alice';
SELECT count(*) AS differences FROM (
    (SELECT id, customer, abs(amount), email, at FROM hp.orders
     EXCEPT SELECT id, customer, amount, email, at FROM hp.fact)
    UNION ALL
    (SELECT id, customer, amount, email, at FROM hp.fact
     EXCEPT SELECT id, customer, abs(amount), email, at FROM hp.orders)) d;
SELECT count(*) AS differences FROM (
    (SELECT id, customer, amount, email, at FROM hp.orders
     EXCEPT SELECT id, customer, amount, email, at FROM hp.snap)
    UNION ALL
    (SELECT id, customer, amount, email, at FROM hp.snap
     EXCEPT SELECT id, customer, amount, email, at FROM hp.orders)) d;
SELECT count(*) AS copied FROM hp.tracked_copy;
SELECT status, resolution FROM etl.dead_letters WHERE pipeline = 'hp_ts';
SELECT triggered_by, status, count(*) FROM etl.runs WHERE pipeline = 'hp_ts'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS signatures FROM etl.snapshot_signatures s
  JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = 'hp_snap';

-- 2. an empty search_path (and a temporary domain text, in pg_temp, which
--    is searched first for types when it is not listed)
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (trap.hit('temporary domain text'));
UPDATE hp.orders SET email = upper(email) WHERE id IN (2, 3);
SET search_path = '';
SELECT etl_alter_pipeline('hp_ts', batch_size => 1) IS NOT NULL AS altered;
SET client_min_messages = warning;
CALL etl_catch_up('hp_ts');
CALL etl_backfill('hp_ts', from_value => '2024-01-01 00:00+00', to_value => '2024-01-01 12:00+00',
                  step => '12 hours');
RESET client_min_messages;
SELECT status, rows_extracted, rows_updated, rows_unchanged FROM etl_run('hp_snap');
SELECT pipeline, last_status, pending_dead_letters FROM etl.status
 WHERE pipeline LIKE 'hp\_%' ORDER BY pipeline;
SELECT etl_metrics() IS NOT NULL AS prometheus;
SELECT count(*) AS lineage_rows FROM etl_lineage('hp.fact');
SELECT etl_openlineage(:run) IS NOT NULL AS openlineage;
SELECT etl_check_sql('hp_snap') IS NOT NULL AS check_sql;
RESET search_path;
SELECT what, who FROM trap.log;
SELECT email FROM hp.fact WHERE id IN (2, 3) ORDER BY id;
SELECT email FROM hp.snap WHERE id IN (2, 3) ORDER BY id;
DROP DOMAIN pg_temp.text;

-- 3. the owner's code puts her schema first in the middle of a call (a
--    function of her view and of her transform sets search_path): what
--    etl_ext runs after it, as the owner or as the extension owner, and
--    the procedure's own statements between steps, still resolve nothing
--    through it.  Each call is followed by RESET search_path, in case the
--    setting outlives the call.
SET ROLE regress_etl_hp_alice;
CREATE TABLE hp.leak_snap (id int PRIMARY KEY, customer int, amount numeric(10,2), email text,
                           at timestamptz);
SELECT etl_create_pipeline('hp_leak', 'hp.leaky_orders', 'hp.leak_fact', watermark_column => 'at',
    batch_size => 15,
    transform => 'SELECT id, customer, abs(amount) AS amount, email, at FROM etl_delta WHERE hp.leak()')
       IS NOT NULL AS created;
SELECT etl_add_check('hp_leak', 'unique', column_name => 'id');
SELECT etl_add_check('hp_leak', 'foreign_key', column_name => 'customer',
                     params => '{"references": "hp.customers(id)"}');
SELECT etl_add_check('hp_leak', 'z_score', column_name => 'amount', severity => 'warning');
SELECT etl_create_pipeline('hp_leak_snap', 'hp.leaky_orders', 'hp.leak_snap', mode => 'snapshot',
    transform => 'SELECT id, customer, amount, email, at FROM etl_delta WHERE hp.leak()')
       IS NOT NULL AS created;
RESET ROLE;
SET client_min_messages = warning;
CALL etl_catch_up('hp_leak');
RESET search_path;
CALL etl_backfill('hp_leak', from_value => '2024-01-01 00:00+00', to_value => '2024-01-02 00:00+00',
                  step => '8 hours', force => true);
RESET search_path;
RESET client_min_messages;
SELECT status, rows_extracted FROM etl_run('hp_leak');
RESET search_path;
SELECT pipeline, last_status FROM etl.status WHERE pipeline LIKE 'hp\_leak%' ORDER BY pipeline;
RESET search_path;
SELECT etl_metrics() IS NOT NULL AS prometheus;
RESET search_path;
SELECT etl_openlineage(max(run_id)) IS NOT NULL AS openlineage FROM etl.runs WHERE pipeline = 'hp_leak';
RESET search_path;
SELECT retried FROM etl_retry_dead_letters('hp_leak');
RESET search_path;
SELECT count(*) AS differences FROM (
    (SELECT id, customer, abs(amount), email, at FROM hp.orders
     EXCEPT SELECT id, customer, amount, email, at FROM hp.leak_fact)
    UNION ALL
    (SELECT id, customer, amount, email, at FROM hp.leak_fact
     EXCEPT SELECT id, customer, abs(amount), email, at FROM hp.orders)) d;
-- mode snapshot writes its signatures as the extension owner after the
-- owner's code ran: a first load, then vanished and changed keys
SELECT status, rows_extracted, rows_inserted FROM etl_run('hp_leak_snap');
RESET search_path;
DELETE FROM hp.orders WHERE id = 40;
UPDATE hp.orders SET amount = 7 WHERE id = 39;
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('hp_leak_snap');
RESET search_path;
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('hp_leak_snap');
RESET search_path;
SELECT etl_reset_watermark('hp_leak', NULL);
RESET search_path;
SELECT etl_drop_pipeline('hp_leak_snap');
RESET search_path;
SELECT what, who FROM trap.log;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_etl_hp_alice';
SELECT count(*) AS differences FROM (
    (SELECT id, customer, amount, email, at FROM hp.orders
     EXCEPT SELECT id, customer, amount, email, at FROM hp.leak_snap)
    UNION ALL
    (SELECT id, customer, amount, email, at FROM hp.leak_snap
     EXCEPT SELECT id, customer, amount, email, at FROM hp.orders)) d;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'hp\_%' ORDER BY name;
SET client_min_messages = warning;
DROP SCHEMA hp, trap CASCADE;
RESET client_min_messages;
\c :regress_db
DROP DATABASE regress_etl_hostile_path;
DROP ROLE regress_etl_hp_alice;
