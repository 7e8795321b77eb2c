-- steps_exact: a catch-up with an overlap ends; CALL in a transaction block
-- and bad backfill arguments are refused clearly; a pipeline that appends
-- without a key is not reloaded (backfill, reset) unless forced

CREATE SCHEMA sx;
CREATE TABLE sx.events (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO sx.events SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 100) g;
CREATE TABLE sx.copy (id int PRIMARY KEY, v text, at timestamptz);

-- a catch-up whose overlap re-reads more rows than a batch holds: each step
-- takes batch_size rows past the watermark (and re-reads the overlap), and
-- the catch-up ends with the step that takes fewer
SELECT etl_create_pipeline('sx_overlap', 'sx.events', 'sx.copy', watermark_column => 'at',
                           overlap => '1 hour', batch_size => 30) > 0 AS created;
SET statement_timeout = '60s';  -- a catch-up that never ends fails here
SET client_min_messages = warning;  -- progress notices carry timings
CALL etl_catch_up('sx_overlap');
RESET client_min_messages;
RESET statement_timeout;
-- the batch log counts the rows of each step's range, past its watermark
SELECT kind, range_from, range_to, status, rows FROM etl.batches
 WHERE pipeline = 'sx_overlap' ORDER BY batch_id;
SELECT triggered_by, rows_extracted, rows_inserted, rows_unchanged, watermark_to FROM etl.runs
 WHERE pipeline = 'sx_overlap' ORDER BY run_id;
SELECT count(*) AS differences FROM (
    (SELECT * FROM sx.events EXCEPT SELECT * FROM sx.copy)
    UNION ALL (SELECT * FROM sx.copy EXCEPT SELECT * FROM sx.events)) d;
-- caught up: the overlap re-reads 60 rows, more than a batch, yet the one
-- step that brings nothing past the watermark is the last
SET statement_timeout = '60s';
SET client_min_messages = warning;
CALL etl_catch_up('sx_overlap');
RESET client_min_messages;
RESET statement_timeout;
SELECT count(*) AS steps, sum(rows_extracted) AS extracted, sum(rows_inserted) AS inserted
  FROM etl.runs WHERE pipeline = 'sx_overlap';
SELECT rows, range_from = range_to AS watermark_stayed FROM etl.batches
 WHERE pipeline = 'sx_overlap' ORDER BY batch_id DESC LIMIT 1;

-- CALL in a transaction block: refused before anything is done, with a
-- hint, like VACUUM (25001)
BEGIN;
CALL etl_catch_up('sx_overlap');
\echo sqlstate :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
CALL etl_backfill('sx_overlap', '2024-01-01', '2024-01-02', '1 hour');
ROLLBACK;
-- a string of statements is one transaction block too
SELECT 1 AS one \; CALL etl_catch_up('sx_overlap');
-- and so is an exception block (a subtransaction)
DO $$
BEGIN
    CALL etl_catch_up('sx_overlap');
EXCEPTION WHEN division_by_zero THEN NULL;
END
$$;
SELECT count(*) AS steps_after_refusals FROM etl.runs WHERE pipeline = 'sx_overlap';

-- bad backfill arguments name the argument, without the procedures' SQL
CALL etl_backfill('sx_overlap', '2024-01-01', '2024-01-02', 'banana');
\echo sqlstate :LAST_ERROR_SQLSTATE
CALL etl_backfill('sx_overlap', '2024-01-01', '2024-01-02', '-1 hour');
\echo sqlstate :LAST_ERROR_SQLSTATE
CALL etl_backfill('sx_overlap', '2024-01-01', '2024-01-02', '0');
CALL etl_backfill('sx_overlap', 'yesterday-ish', '2024-01-02', '1 hour');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- (an endless series of steps would spill until the disk is full)
SET statement_timeout = '10s';
SET temp_file_limit = '64MB';
CALL etl_backfill('sx_overlap', '2024-01-01', 'infinity', '1 hour');
\echo sqlstate :LAST_ERROR_SQLSTATE
CALL etl_backfill('sx_overlap', '-infinity', '2024-01-02', '1 hour');
RESET temp_file_limit;
RESET statement_timeout;
CALL etl_backfill('sx_overlap', '2024-01-02', '2024-01-01', '1 hour');
CALL etl_backfill('sx_nothing', '2024-01-01', '2024-01-02', '1 hour');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- a number for an integer watermark column
CREATE TABLE sx.by_id (id int PRIMARY KEY, v text, at timestamptz);
SELECT etl_create_pipeline('sx_serial', 'sx.events', 'sx.by_id', mode => 'serial',
                           watermark_column => 'id') > 0 AS created;
CALL etl_backfill('sx_serial', '1', '50', '1.5');
CALL etl_backfill('sx_serial', '1', '50', '0');
CALL etl_backfill('sx_serial', '1', 'x', '10');
SELECT count(*) AS backfill_batches FROM etl.batches WHERE kind = 'backfill'
   AND pipeline IN ('sx_overlap', 'sx_serial');

-- a pipeline that appends without a key inserts every row it reads: a
-- backfill or a watermark reset would load its rows twice, so both are
-- refused unless force => true
CREATE TABLE sx.log (id int, v text, at timestamptz);
SELECT etl_create_pipeline('sx_append', 'sx.events', 'sx.log', watermark_column => 'at',
                           load => 'append') > 0 AS created;
-- before anything is loaded, a reset reloads nothing
SELECT etl_reset_watermark('sx_append', '2024-01-01 00:50') AS reset;
SELECT rows_inserted FROM etl_run('sx_append');
CALL etl_backfill('sx_append', '2024-01-01', '2024-01-02', '1 day');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('sx_append', '2024-01-01');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('sx_append');
SELECT watermark, (SELECT count(*) FROM sx.log) AS rows, (SELECT count(DISTINCT id) FROM sx.log) AS ids
  FROM etl.pipelines WHERE name = 'sx_append';
SELECT count(*) AS backfill_batches FROM etl.batches WHERE pipeline = 'sx_append' AND kind = 'backfill';
-- the two-argument function is still there; the forced reset is a third
SELECT pg_catalog.pg_get_function_identity_arguments(p.oid) AS reset_functions
  FROM pg_proc p WHERE p.proname = 'etl_reset_watermark' ORDER BY 1;
-- forced: the caller took care of the rows first
DELETE FROM sx.log;
SELECT etl_reset_watermark('sx_append', '2024-01-01', force => true) AS reset;
SELECT rows_inserted FROM etl_run('sx_append');
DELETE FROM sx.log WHERE at >= '2024-01-01 01:00' AND at < '2024-01-01 01:30';
SET client_min_messages = warning;
CALL etl_backfill('sx_append', '2024-01-01 01:00', '2024-01-01 01:30', '10 minutes', force => true);
RESET client_min_messages;
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM sx.log;
-- with a key, append skips the keys it has: no refusal
CREATE TABLE sx.keyed_log (id int PRIMARY KEY, v text, at timestamptz);
SELECT etl_create_pipeline('sx_keyed', 'sx.events', 'sx.keyed_log', watermark_column => 'at',
                           load => 'append') > 0 AS created;
SELECT rows_inserted FROM etl_run('sx_keyed');
SELECT etl_reset_watermark('sx_keyed') IS NULL AS reset;
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('sx_keyed');

-- a watermark is a position: NaN and infinities are refused when reset
SELECT etl_reset_watermark('sx_overlap', '-infinity');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('sx_overlap', 'infinity');

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'sx\_%' ORDER BY name;
DROP SCHEMA sx CASCADE;
