-- schedule: runs started by pg_cron, and scheduling without pg_cron (this
-- cluster does not load it; test/t/004_schedule.pl covers pg_cron itself)
CREATE SCHEMA sch_src;
CREATE SCHEMA sch_dw;
CREATE TABLE sch_src.orders (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE sch_dw.orders (id int PRIMARY KEY, v text);
INSERT INTO sch_src.orders SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('sch_orders', 'sch_src.orders', 'sch_dw.orders',
                           watermark_column => 'at') > 0 AS created;

-- a run is 'manual' unless pg_cron started the session: pg_cron's launcher
-- connects with application_name 'pg_cron'; setting it later does not count
SET application_name = 'pg_cron';
SELECT status, rows_inserted FROM etl_run('sch_orders');
RESET application_name;
\c -reuse-previous=on "application_name=pg_cron"
INSERT INTO sch_src.orders VALUES (11, 'v11', '2024-01-01 00:11');
SELECT status, rows_inserted FROM etl_run('sch_orders');
SET application_name = 'psql';
INSERT INTO sch_src.orders VALUES (12, 'v12', '2024-01-01 00:12');
SELECT status, rows_inserted FROM etl_run('sch_orders');
\c -reuse-previous=on "application_name=pg_regress"
SELECT rows_inserted, triggered_by FROM etl.runs WHERE pipeline = 'sch_orders' ORDER BY run_id;

-- without pg_cron, scheduling fails with 55000 and says how to install it
SELECT etl_schedule('sch_orders', '*/5 * * * *');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_unschedule('sch_orders');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT schedule FROM etl.status WHERE pipeline = 'sch_orders';
-- the arguments, the pipeline and its owner are checked first
SELECT etl_schedule('sch_orders', NULL);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_schedule(NULL, '* * * * *');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_schedule('sch_nothing', '* * * * *');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_unschedule('sch_nothing');
\echo sqlstate :LAST_ERROR_SQLSTATE
CALL regress.create_role('regress_etl_sch_bob');
SET ROLE regress_etl_sch_bob;
SELECT * FROM regress.error_of($$SELECT etl_schedule('sch_orders', '* * * * *')$$) \gx
SELECT * FROM regress.error_of($$SELECT etl_unschedule('sch_orders')$$) \gx
RESET ROLE;
CALL regress.drop_role('regress_etl_sch_bob');
-- a job name holds 63 bytes: "etl:" leaves 59 for the pipeline
SELECT etl_create_pipeline(repeat('p', 60), 'sch_src.orders', 'sch_dw.orders',
                           watermark_column => 'at') > 0 AS created;
SELECT etl_schedule(repeat('p', 60), '* * * * *');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_unschedule(repeat('p', 60)) AS removed;
SELECT etl_drop_pipeline(repeat('p', 60));
-- dropping a pipeline works without pg_cron
SELECT etl_drop_pipeline('sch_orders');
