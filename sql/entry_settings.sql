-- entry_settings: every SQL-callable function of etl_ext enters and leaves
-- through one protocol (src/base/entry.c), which sets for the duration of
-- the call what its statements run under: search_path, DateStyle,
-- IntervalStyle, standard_conforming_strings and plan_cache_mode, plus jit
-- for the monitoring functions and work_mem (etl.work_mem) for a run.
-- After each call the caller's own values are back, whether the call
-- returned or failed inside the caller's subtransaction.
CREATE SCHEMA ent;
CREATE TABLE ent.src (id int PRIMARY KEY, v int NOT NULL, at timestamptz NOT NULL);
INSERT INTO ent.src
SELECT g, g, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 5) AS g;
CREATE TABLE ent.dst (id int PRIMARY KEY, v int CHECK (v <> 4), at timestamptz);

-- the caller's values, none of them what etl_ext sets
CREATE TABLE ent.mine (name text PRIMARY KEY, setting text NOT NULL);
INSERT INTO ent.mine VALUES
    ('search_path', 'ent, public'),
    ('DateStyle', 'SQL, DMY'),
    ('IntervalStyle', 'sql_standard'),
    ('standard_conforming_strings', 'off'),
    ('plan_cache_mode', 'force_generic_plan'),
    ('jit', 'on'),
    ('work_mem', '1234kB');

-- ent.changed: which of the caller's settings are no longer the caller's
-- (name=value), '' when none
CREATE FUNCTION ent.changed() RETURNS text LANGUAGE sql AS $fn$
    SELECT COALESCE(pg_catalog.string_agg(m.name || '=' || pg_catalog.current_setting(m.name),
                                          ', ' ORDER BY m.name), '')
      FROM ent.mine m
     WHERE pg_catalog.current_setting(m.name) OPERATOR(pg_catalog.<>) m.setting
$fn$;
-- ent.call runs sql that succeeds and says what it changed, in the same
-- transaction and no subtransaction: a setting left pinned would show until
-- the transaction ends
CREATE FUNCTION ent.call(sql text, OUT outcome text, OUT changed text)
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE sql;
    outcome := 'ok';
    changed := ent.changed();
END
$fn$;
-- ent.call_failing runs sql that fails, in a subtransaction, and says with
-- which SQLSTATE and what the error left changed
CREATE FUNCTION ent.call_failing(sql text, OUT outcome text, OUT changed text)
LANGUAGE plpgsql AS $fn$
BEGIN
    BEGIN
        EXECUTE sql;
        outcome := 'ok';
    EXCEPTION WHEN OTHERS THEN
        outcome := SQLSTATE;
    END;
    changed := ent.changed();
END
$fn$;

SELECT pg_catalog.set_config(name, setting, false) IS NOT NULL AS set FROM ent.mine ORDER BY name;
SET client_min_messages = error;

-- every kind of entry point, each once succeeding and once failing
SELECT c.label, r.outcome, r.changed
  FROM (VALUES
    (1, 'create', $$SELECT etl_create_pipeline('ent_p', 'ent.src', 'ent.dst',
          mode => 'timestamp', watermark_column => 'at', error_threshold => 50,
          transform => 'SELECT id, v, at FROM etl_delta')$$, false),
    (2, 'create, refused', $$SELECT etl_create_pipeline('ent_p', 'ent.src', 'ent.dst')$$, true)
  ) AS c(n, label, sql, fails),
  LATERAL (SELECT * FROM ent.call(c.sql) WHERE NOT c.fails
           UNION ALL SELECT * FROM ent.call_failing(c.sql) WHERE c.fails) AS r
 ORDER BY c.n;
-- (committed: the record of the failed run below, written on its own, refers
-- to the pipeline)
SELECT c.label, r.outcome, r.changed
  FROM (VALUES
    (3, 'add a check', $$SELECT etl_add_check('ent_p', 'not_null', column_name => 'v')$$, false),
    (4, 'add a check, refused', $$SELECT etl_add_check('ent_p', 'not_null', column_name => 'nope')$$, true),
    (5, 'check query', $$SELECT etl_check_sql('ent_p')$$, false),
    (6, 'explain', $$SELECT pg_catalog.count(*) FROM etl_explain('ent_p')$$, false),
    (7, 'run', $$SELECT etl_run('ent_p')$$, false),
    (8, 'retry delay', $$SELECT etl_retry_delay('ent_p', 2)$$, false),
    (9, 'replay', $$SELECT etl_retry_dead_letters('ent_p')$$, false),
    (10, 'replay, refused', $$SELECT etl_retry_dead_letters('ent_nope')$$, true),
    (11, 'status', $$SELECT pg_catalog.count(*) FROM etl.status$$, false),
    (12, 'metrics', $$SELECT pg_catalog.length(etl_metrics('json'))$$, false),
    (13, 'metrics, refused', $$SELECT etl_metrics('xml')$$, true),
    (14, 'lineage', $$SELECT pg_catalog.count(*) FROM etl_lineage()$$, false),
    (15, 'alter', $$SELECT etl_alter_pipeline('ent_p', batch_size => 1000)$$, false),
    (16, 'alter, refused', $$SELECT etl_alter_pipeline('ent_p', mode => 'nope')$$, true),
    (17, 'reset the watermark', $$SELECT etl_reset_watermark('ent_p', '2024-01-01 00:02:00+00')$$, false),
    (18, 'reset, refused', $$SELECT etl_reset_watermark('ent_p', '2999-01-01')$$, true),
    (19, 'add a critical check', $$SELECT etl_add_check('ent_p', 'accepted_values', column_name => 'v',
                                    params => '{"values": [1, 2, 3, 4]}')$$, false),
    (20, 'run, failed', $$SELECT etl_run('ent_p')$$, true)
  ) AS c(n, label, sql, fails),
  LATERAL (SELECT * FROM ent.call(c.sql) WHERE NOT c.fails
           UNION ALL SELECT * FROM ent.call_failing(c.sql) WHERE c.fails) AS r
 ORDER BY c.n;

-- what the runs did: the first run loaded all but id 4 (the target's
-- CHECK), the replay tried it again, the last run (ids 3 to 5) failed on the
-- critical check and loaded nothing
SELECT status, rows_extracted, rows_inserted, rows_rejected, triggered_by, sqlstate
  FROM etl.runs WHERE pipeline = 'ent_p' ORDER BY run_id;
SELECT id, v FROM ent.dst ORDER BY id;

SELECT c.label, r.outcome, r.changed
  FROM (VALUES
    (1, 'drop a check', $$SELECT etl_drop_check('ent_p', 'ent_p_v_not_null')$$, false),
    (2, 'drop a check, refused', $$SELECT etl_drop_check('ent_p', 'ent_p_v_not_null')$$, true),
    (3, 'drop', $$SELECT etl_drop_pipeline('ent_p')$$, false),
    (4, 'drop, refused', $$SELECT etl_drop_pipeline('ent_p')$$, true)
  ) AS c(n, label, sql, fails),
  LATERAL (SELECT * FROM ent.call(c.sql) WHERE NOT c.fails
           UNION ALL SELECT * FROM ent.call_failing(c.sql) WHERE c.fails) AS r
 ORDER BY c.n;
RESET ALL;
