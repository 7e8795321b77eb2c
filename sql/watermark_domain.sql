-- watermark_domain: a watermark is read as the pipeline owner and never
-- through a domain.  An owner retypes her watermark column to her own
-- domain, whose CHECK makes her a superuser when a superuser runs it; a
-- superuser then backfills, resets the watermark, runs, catches up:
-- every call is refused before any value is read, and the CHECK never runs.
CREATE ROLE regress_wmd_owner;
CREATE SCHEMA wmd AUTHORIZATION regress_wmd_owner;
SET ROLE regress_wmd_owner;
CREATE TABLE wmd.events (id int PRIMARY KEY, at timestamptz NOT NULL);
INSERT INTO wmd.events
SELECT g, '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 10) g;
CREATE TABLE wmd.copy (id int PRIMARY KEY, at timestamptz);
SELECT etl_create_pipeline('wmd_p', 'wmd.events', 'wmd.copy', watermark_column => 'at',
    on_schema_change => 'ignore') > 0 AS created;
SELECT etl_create_pipeline('wmd_s', 'wmd.events', 'wmd.copy', mode => 'serial',
    watermark_column => 'id', on_schema_change => 'ignore') > 0 AS created;
SELECT status, rows_inserted FROM etl_run('wmd_p');
SELECT status, rows_extracted FROM etl_run('wmd_s');
-- counts the times the domains' CHECK runs
CREATE SEQUENCE wmd.checked;
CREATE FUNCTION wmd.escalate() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.nextval('wmd.checked');
    BEGIN
        ALTER ROLE regress_wmd_owner SUPERUSER;
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN true;
END
$$;
CREATE DOMAIN wmd.stamp AS timestamptz CHECK (wmd.escalate() AND VALUE IS NOT NULL);
CREATE DOMAIN wmd.num AS int CHECK (wmd.escalate() AND VALUE IS NOT NULL);
ALTER TABLE wmd.events ALTER COLUMN at TYPE wmd.stamp, ALTER COLUMN id TYPE wmd.num;
RESET ROLE;
CREATE TEMP TABLE wmd_checked_before AS SELECT last_value FROM wmd.checked;

\set SHOW_CONTEXT never
SET client_min_messages = warning;
CALL etl_backfill('wmd_p', '2024-01-01', '2024-01-02', '1 hour');
\echo sqlstate :LAST_ERROR_SQLSTATE
CALL etl_backfill('wmd_s', '1', '5', '2');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT * FROM etl_internal.etl_backfill_steps('wmd_p', '2024-01-01', '2024-01-02', '1 hour');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT * FROM etl_internal.etl_backfill_steps('wmd_s', '1', '5', '2');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('wmd_p', '2024-01-01');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('wmd_s', '3');
\echo sqlstate :LAST_ERROR_SQLSTATE
CALL etl_catch_up('wmd_p');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_internal.etl_pending_rows('wmd_s');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT count(*) FROM etl_explain('wmd_p');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_alter_pipeline('wmd_s', batch_size => 5);
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET client_min_messages;
-- a run (a backfill step is one too) refuses it before reading its range
SELECT * FROM regress.run_failing('wmd_p') \gx
SELECT * FROM regress.run_failing('wmd_s') \gx
\set SHOW_CONTEXT errors
-- the lag is unknown rather than read through the domain
SELECT pipeline, watermark IS NOT NULL AS has_watermark, lag FROM etl.status
 WHERE pipeline LIKE 'wmd\_%' ORDER BY 1;

-- the owner is no superuser, the CHECKs never ran, the watermarks stayed
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_wmd_owner';
SELECT c.last_value = b.last_value AS check_never_ran FROM wmd.checked c, wmd_checked_before b;
SELECT name, watermark FROM etl.pipelines WHERE name LIKE 'wmd\_%' ORDER BY 1;
-- NULL, which reads nothing, still resets
SELECT etl_reset_watermark('wmd_p', NULL);

-- back to the built-in type, everything works again
SET ROLE regress_wmd_owner;
ALTER TABLE wmd.events ALTER COLUMN at TYPE timestamptz, ALTER COLUMN id TYPE int;
RESET ROLE;
SELECT * FROM etl_internal.etl_backfill_steps('wmd_p', '2024-01-01 00:00+00', '2024-01-01 02:00+00', '1 hour');
SELECT etl_reset_watermark('wmd_p', '2024-01-01 05:00+00');
SELECT status, rows_extracted, rows_inserted, rows_updated FROM etl_run('wmd_p');

SELECT * FROM etl_internal.etl_backfill_steps('wmd_s', '1', '5', '2');
SELECT status, rows_extracted FROM etl_internal.etl_run_step('wmd_s', 'backfill', '1', '5');

SELECT etl_drop_pipeline('wmd_p'), etl_drop_pipeline('wmd_s');
DROP TABLE wmd_checked_before;
DROP SCHEMA wmd CASCADE;
DROP ROLE regress_wmd_owner;
