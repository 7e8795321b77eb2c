-- fence: whatever a pipeline owner's code does (a transform, its source
-- view, a trigger on its target, a domain CHECK, a check expression), a call
-- of etl_ext leaves the caller's session as it found it: the same settings,
-- the same advisory locks, no new temporary object, and the owner gains no
-- privilege.  Every entry point that runs the owner's code is called by a
-- superuser, then checked.
CREATE ROLE regress_fence_owner;
CREATE SCHEMA fence_owner AUTHORIZATION regress_fence_owner;
CREATE SCHEMA fence_tools;

SET ROLE regress_fence_owner;
-- counts each time the planted code runs (sequences are not rolled back)
CREATE SEQUENCE fence_owner.planted_runs;
-- what the owner's code tries in the caller's session, each attempt in its
-- own block so that a refusal (or an object left by an earlier call) does
-- not stop the others
CREATE FUNCTION fence_owner.plant() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.nextval('fence_owner.planted_runs');
    PERFORM pg_catalog.set_config('search_path', 'fence_owner, pg_catalog', false);
    PERFORM pg_catalog.set_config('statement_timeout', '4321s', false);
    PERFORM pg_catalog.set_config('default_transaction_isolation', 'serializable', false);
    PERFORM pg_catalog.set_config('fence_owner.mark', 'planted', false);
    BEGIN
        PERFORM pg_catalog.pg_advisory_unlock_all();
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        PERFORM pg_catalog.pg_advisory_lock(4242);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        PERFORM pg_catalog.pg_try_advisory_lock_shared(4243);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        CREATE TEMP TABLE fence_leftover (a int);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        CREATE FUNCTION pg_temp.fence_leftover() RETURNS int LANGUAGE sql AS 'SELECT 1';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        CREATE OPERATOR pg_temp.=== (LEFTARG = int4, RIGHTARG = int4, FUNCTION = pg_catalog.int4eq);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        ALTER ROLE regress_fence_owner SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END
$$;
-- run as the superuser, this makes the owner one: reached through a
-- domain named text that a leaked search_path puts before pg_catalog.text
CREATE FUNCTION fence_owner.escalate(pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE regress_fence_owner SUPERUSER;
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN true;
END
$$;
CREATE DOMAIN fence_owner.text AS pg_catalog.text CHECK (fence_owner.escalate(VALUE));
-- a domain whose CHECK plants: an array literal of it in a transform or a
-- check expression runs the CHECK when the SQL is analysed
CREATE DOMAIN fence_owner.planted AS pg_catalog.int4 CHECK (fence_owner.plant());
CREATE FUNCTION fence_owner.plant_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fence_owner.plant();
    RETURN NEW;
END
$$;

CREATE TABLE fence_owner.events (id int PRIMARY KEY, v int NOT NULL, at timestamptz NOT NULL);
INSERT INTO fence_owner.events
SELECT g, g, '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 20) g;
-- the source view plants when read
CREATE VIEW fence_owner.events_v AS SELECT * FROM fence_owner.events WHERE fence_owner.plant();
-- the target's trigger plants when written
CREATE TABLE fence_owner.facts (id int PRIMARY KEY, v int, at timestamptz);
CREATE TRIGGER plant BEFORE INSERT OR UPDATE ON fence_owner.facts
    FOR EACH ROW EXECUTE FUNCTION fence_owner.plant_trigger();
-- the transform plants when analysed (the domain) and when run; a row with
-- v = 13 fails it (a dead letter to replay)
SELECT etl_create_pipeline('fence_p', 'fence_owner.events_v', 'fence_owner.facts',
    watermark_column => 'at', batch_size => 8, error_threshold => 50,
    transform => $$SELECT id, 100 / (v - 13) AS v, at FROM etl_delta
                    WHERE fence_owner.plant() AND '{1}'::fence_owner.planted[] IS NOT NULL$$) > 0
    AS created;
RESET ROLE;
-- so far only the owner's own session was touched: start clean
RESET ALL;
SELECT pg_advisory_unlock_all();

-- the caller: a superuser with settings of its own, a session-level
-- advisory lock and a temporary table
CREATE TEMP TABLE fence_mine (a int);
CREATE TABLE fence_tools.baseline AS
SELECT 'search_path' AS name, 'fence_tools, public'::text AS setting
UNION ALL SELECT 'statement_timeout', '17min'
UNION ALL SELECT 'default_transaction_isolation', 'read committed'
UNION ALL SELECT 'fence_owner.mark', 'mine';
SELECT pg_catalog.set_config(name, setting, false) IS NOT NULL AS set FROM fence_tools.baseline;
SELECT pg_advisory_lock(777);
CREATE TABLE fence_tools.seen AS SELECT last_value AS planted_runs FROM fence_owner.planted_runs;
-- after(call): what the call left in this session, then everything put
-- back for the next call.  Every name is schema-qualified: a leaked
-- search_path must not decide what this function runs.
--   planted: the owner's code ran during the call (or the test proves
--            nothing);
--   changed: the settings no longer as before the call;
--   owner_superuser: the owner's rolsuper, after the caller did what
--            callers do next (an unqualified cast to text);
--   locks: the session-level advisory locks this session holds (777: its
--            own, taken before);
--   temporary: objects in this session's temporary schema but its own
--            table fence_mine.
CREATE FUNCTION fence_tools.after(label text, OUT call text, OUT planted boolean,
    OUT changed text, OUT owner_superuser boolean, OUT locks text, OUT temporary text)
LANGUAGE plpgsql SET client_min_messages = warning AS $fn$
DECLARE
    runs bigint;
BEGIN
    SELECT pg_catalog.string_agg(b.name, ', ' ORDER BY b.name) INTO changed
      FROM fence_tools.baseline b
     WHERE pg_catalog.current_setting(b.name, true) IS DISTINCT FROM b.setting;
    changed := COALESCE(changed, '');
    -- what the caller runs next
    PERFORM 'next statement'::text;
    SELECT r.rolsuper INTO owner_superuser FROM pg_catalog.pg_roles r
     WHERE r.rolname OPERATOR(pg_catalog.=) 'regress_fence_owner';
    SELECT COALESCE(pg_catalog.string_agg(l.objid::pg_catalog.text || ' ' || l.mode, ', '
                                          ORDER BY l.objid, l.mode), '') INTO locks
      FROM pg_catalog.pg_locks l
     WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
       AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid();
    SELECT COALESCE(pg_catalog.string_agg(o.name, ', ' ORDER BY o.name), '') INTO temporary
      FROM (SELECT c.relname::pg_catalog.text AS name FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
               AND c.relname OPERATOR(pg_catalog.<>) 'fence_mine'
            UNION ALL
            SELECT p.proname::pg_catalog.text || '()' FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
            UNION ALL
            SELECT o.oprname::pg_catalog.text FROM pg_catalog.pg_operator o
             WHERE o.oprnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()) o;
    SELECT s.last_value INTO runs FROM fence_owner.planted_runs s;
    SELECT runs OPERATOR(pg_catalog.>) s.planted_runs INTO planted FROM fence_tools.seen s;
    call := label;

    -- put everything back
    UPDATE fence_tools.seen SET planted_runs = runs;
    PERFORM pg_catalog.set_config(b.name, b.setting, false) FROM fence_tools.baseline b;
    ALTER ROLE regress_fence_owner NOSUPERUSER;
    PERFORM pg_catalog.pg_advisory_unlock_all();
    PERFORM pg_catalog.pg_advisory_lock(777);
    DROP TABLE IF EXISTS pg_temp.fence_leftover;
    DROP FUNCTION IF EXISTS pg_temp.fence_leftover();
    DROP OPERATOR IF EXISTS pg_temp.=== (int4, int4);
END
$fn$;
-- the state before any call
SELECT * FROM fence_tools.after('(none)');

-- every entry point, called by the superuser
SELECT status, rows_inserted, rows_rejected FROM etl_run('fence_p');
SELECT * FROM fence_tools.after('etl_run');
INSERT INTO fence_owner.events VALUES (21, 21, '2024-01-02 00:00+00'), (22, 22, '2024-01-02 01:00+00');
SELECT status, rows_inserted FROM etl_internal.etl_run_step('fence_p', 'catch_up');
SELECT * FROM fence_tools.after('etl_run_step');
INSERT INTO fence_owner.events VALUES (23, 23, '2024-01-02 02:00+00');
SET client_min_messages = warning;  -- progress notices carry timings
CALL etl_catch_up('fence_p');
RESET client_min_messages;
SELECT * FROM fence_tools.after('etl_catch_up');
SET client_min_messages = warning;
CALL etl_backfill('fence_p', '2024-01-01 10:00+00', '2024-01-01 12:00+00', '1 hour');
RESET client_min_messages;
SELECT * FROM fence_tools.after('etl_backfill');
SELECT pipeline, lag IS NOT NULL AS has_lag FROM etl.status WHERE pipeline = 'fence_p';
SELECT * FROM fence_tools.after('etl.status');
SELECT etl_metrics() LIKE '%etl_watermark_lag_seconds{pipeline="fence_p"}%' AS lag_scraped;
SELECT * FROM fence_tools.after('etl_metrics');
SELECT etl_add_check('fence_p', 'expression',
    params => $${"sql": "fence_owner.plant() AND '{1}'::fence_owner.planted[] IS NOT NULL"}$$)
    AS check_added;
SELECT * FROM fence_tools.after('etl_add_check');
SELECT etl_check_sql('fence_p') LIKE '%fence_owner.plant()%' AS check_sql;
SELECT * FROM fence_tools.after('etl_check_sql');
SELECT etl_alter_pipeline('fence_p', batch_size => 10) > 0 AS altered;
SELECT * FROM fence_tools.after('etl_alter_pipeline');
SELECT target_column, source_columns FROM etl_internal.etl_lineage_columns('fence_p') ORDER BY 1;
SELECT * FROM fence_tools.after('etl_lineage_columns');
SELECT * FROM etl_internal.etl_lineage_relations('fence_p');
SELECT * FROM fence_tools.after('etl_lineage_relations');
SELECT count(*) > 0 AS lineage FROM etl_lineage('fence_owner.facts');
SELECT * FROM fence_tools.after('etl_lineage');
SELECT count(*) > 0 AS explained FROM etl_explain('fence_p');
SELECT * FROM fence_tools.after('etl_explain');
SELECT retried, resolved, still_pending FROM etl_retry_dead_letters('fence_p');
SELECT * FROM fence_tools.after('etl_retry_dead_letters');
-- (no code of the owner's runs here: the value is read as a built-in type)
SELECT etl_reset_watermark('fence_p', '2024-01-01 05:00+00') IS NOT NULL AS reset;
SELECT * FROM fence_tools.after('etl_reset_watermark');
SELECT replace(etl_openlineage((SELECT max(run_id) FROM etl.runs WHERE pipeline = 'fence_p'))
               ->'job'->>'name', current_database(), '<db>') AS openlineage_job;
SELECT * FROM fence_tools.after('etl_openlineage');
SELECT etl_internal.etl_pending_rows('fence_p') >= 0 AS pending_rows;
SELECT * FROM fence_tools.after('etl_pending_rows');
-- the owner's own call too: her settings are hers to keep outside etl_ext,
-- but not what her code sets inside it
SET ROLE regress_fence_owner;
SELECT etl_create_pipeline('fence_q', 'fence_owner.events', 'fence_owner.facts',
    watermark_column => 'at',
    transform => $$SELECT id, v, at FROM etl_delta WHERE '{1}'::fence_owner.planted[] IS NOT NULL$$) > 0
    AS created;
RESET ROLE;
SELECT * FROM fence_tools.after('etl_create_pipeline');

-- what the fence refuses fails the run when the owner's code does not catch
-- the error, with the error naming what was refused
SET ROLE regress_fence_owner;
CREATE FUNCTION fence_owner.lock_bare() RETURNS boolean LANGUAGE sql
    AS 'SELECT pg_catalog.pg_advisory_lock(4244) IS NOT NULL';
CREATE FUNCTION fence_owner.temp_bare() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    CREATE FUNCTION pg_temp.fence_bare() RETURNS int LANGUAGE sql AS 'SELECT 1';
    RETURN true;
END
$$;
SELECT etl_create_pipeline('fence_lock', 'fence_owner.events', 'fence_owner.facts',
    watermark_column => 'at', max_attempts => 1,
    transform => 'SELECT id, v, at FROM etl_delta WHERE fence_owner.lock_bare()') > 0 AS created;
SELECT etl_create_pipeline('fence_temp', 'fence_owner.events', 'fence_owner.facts',
    watermark_column => 'at', max_attempts => 1,
    transform => 'SELECT id, v, at FROM etl_delta WHERE fence_owner.temp_bare()') > 0 AS created;
RESET ROLE;
\set SHOW_CONTEXT never
SELECT * FROM regress.run_failing('fence_lock') \gx
SELECT * FROM regress.run_failing('fence_temp') \gx
\set SHOW_CONTEXT errors
SELECT * FROM fence_tools.after('refused');
-- the transaction-level advisory lock stays allowed: held until the end of
-- the caller's transaction, as the caller's own would be
SET ROLE regress_fence_owner;
CREATE OR REPLACE FUNCTION fence_owner.lock_bare() RETURNS boolean LANGUAGE sql
    AS 'SELECT pg_catalog.pg_advisory_xact_lock(4245) IS NOT NULL';
RESET ROLE;
BEGIN;
SELECT status FROM etl_run('fence_lock');
SELECT objid, mode FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = 4245;
COMMIT;
SELECT * FROM fence_tools.after('pg_advisory_xact_lock');
-- outside etl_ext nothing is refused
SELECT pg_advisory_lock(4246) AS locked, pg_advisory_unlock(4246) AS unlocked;
CREATE FUNCTION pg_temp.fence_allowed() RETURNS int LANGUAGE sql AS 'SELECT 1';
DROP FUNCTION pg_temp.fence_allowed();
SHOW etl.fence;

-- the caller's own settings of the call's transaction stay as they were too
BEGIN;
SET LOCAL statement_timeout = '99s';
SELECT status FROM etl_run('fence_p');
SHOW statement_timeout;
SHOW search_path;
COMMIT;
SELECT * FROM fence_tools.after('SET LOCAL before the call');

-- inside one call, each stretch of the owner's code has its settings rolled
-- back at its end too: when a superuser alters the pipeline, what the
-- transform's domain sets while the transform is analysed does not reach
-- the domain that reads a check's values afterwards (it records what it
-- sees), nor etl_ext's own statements
SET ROLE regress_fence_owner;
CREATE TABLE fence_owner.facts2 (id int PRIMARY KEY, v int, at timestamptz);
CREATE TABLE fence_owner.seen (mark text);
CREATE FUNCTION fence_owner.set_mark() RETURNS boolean LANGUAGE sql
    AS $$SELECT pg_catalog.set_config('fence_owner.mark', 'set by the transform', false)
              IS NOT NULL$$;
CREATE DOMAIN fence_owner.marking AS int CHECK (fence_owner.set_mark());
CREATE FUNCTION fence_owner.see_mark() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fence_owner.seen VALUES (pg_catalog.current_setting('fence_owner.mark', true));
    RETURN true;
END
$$;
CREATE DOMAIN fence_owner.recording AS int CHECK (fence_owner.see_mark());
SELECT etl_create_pipeline('fence_seen', 'fence_owner.events', 'fence_owner.facts2',
    watermark_column => 'at',
    transform => $$SELECT id, v::fence_owner.recording AS v, at FROM etl_delta
                    WHERE '{1}'::fence_owner.marking[] IS NOT NULL$$) > 0 AS created;
SELECT etl_add_check('fence_seen', 'accepted_values', column_name => 'v',
    params => '{"values": [1, 2, 3]}', severity => 'warning') AS check_added;
RESET ROLE;
RESET ALL;
SELECT pg_catalog.set_config(name, setting, false) IS NOT NULL AS set FROM fence_tools.baseline;
TRUNCATE fence_owner.seen;
SELECT etl_alter_pipeline('fence_seen', batch_size => 5) > 0 AS altered;
SELECT DISTINCT mark FROM fence_owner.seen;
SELECT * FROM fence_tools.after('two stretches');

-- clean up
SELECT pg_advisory_unlock_all();
SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'fence\_%' ORDER BY name;
DROP SCHEMA fence_owner CASCADE;
DROP SCHEMA fence_tools CASCADE;
DROP ROLE regress_fence_owner;
RESET ALL;
