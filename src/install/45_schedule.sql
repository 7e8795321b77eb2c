/*
 * src/install/45_schedule.sql -- scheduling with pg_cron (optional):
 * etl_schedule and etl_unschedule (etl.status reads the jobs through
 * etl_internal.etl_schedules, in 50_status_metrics.sql).
 */

-- Scheduling (pg_cron) -------------------------------------------------------

/*
 * A pipeline's pg_cron job is named etl:<pipeline>, belongs to the pipeline's
 * owner (it runs as the owner) and runs SELECT etl_run('<pipeline>') in the
 * pipeline's database.  pg_cron is optional: the extension installs without
 * it, and these functions fail with a hint when it is missing.  They work in
 * the database named by cron.database_name, where pg_cron's functions are.
 */
CREATE FUNCTION etl_schedule(pipeline text, cron_expression text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_schedule'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_schedule(text, text) IS
    'create or replace the pg_cron job etl:<pipeline> that runs SELECT etl_run(''<pipeline>'') as the pipeline''s owner on the cron schedule given; returns the job id. Works in the database named by cron.database_name; 55000 without pg_cron, 0A000 (with the pg_cron call to use instead) in other databases';

CREATE FUNCTION etl_unschedule(pipeline text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_unschedule'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_unschedule(text) IS
    'remove the pg_cron job of a pipeline; returns whether there was one';
