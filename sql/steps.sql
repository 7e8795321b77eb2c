-- steps: etl_catch_up and etl_backfill commit in steps, recorded in the batch log

CREATE SCHEMA st;
CREATE TABLE st.events (id bigint PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE SEQUENCE st.events_seq CACHE 1;
INSERT INTO st.events SELECT g, 'v' || g, '2024-01-01'::timestamptz + (g - 1) * interval '2 hours'
  FROM generate_series(1, 50) g;
CREATE TABLE st.copy (id bigint PRIMARY KEY, v text, at timestamptz);

-- catch-up: batches of batch_size, each committed, until caught up
SELECT etl_create_pipeline('st_serial', 'st.events', 'st.copy', mode => 'serial',
    watermark_column => 'id', batch_size => 20) > 0 AS created;
SET client_min_messages = warning;  -- progress notices carry timings
CALL etl_catch_up('st_serial');
RESET client_min_messages;
SELECT kind, range_from, range_to, status, rows FROM etl.batches
 WHERE pipeline = 'st_serial' ORDER BY batch_id;
SELECT triggered_by, rows_extracted, watermark_to FROM etl.runs
 WHERE pipeline = 'st_serial' ORDER BY run_id;
SELECT count(*) AS target_rows FROM st.copy;
-- caught up: one step that finds nothing
SET client_min_messages = warning;
CALL etl_catch_up('st_serial');
RESET client_min_messages;
SELECT count(*) AS batches, sum(rows) AS rows FROM etl.batches WHERE pipeline = 'st_serial';

-- backfill: a range in steps, each its own transaction; the watermark stays
CREATE TABLE st.daily (id bigint PRIMARY KEY, v text, at timestamptz);
SELECT etl_create_pipeline('st_ts', 'st.events', 'st.daily', watermark_column => 'at') > 0 AS created;
SELECT rows_inserted, watermark_to FROM etl_run('st_ts');
-- the target drifts from the source for the first days
UPDATE st.daily SET v = 'wrong' WHERE at < '2024-01-03';
DELETE FROM st.daily WHERE id = 3;
SET client_min_messages = warning;
CALL etl_backfill('st_ts', from_value => '2024-01-01', to_value => '2024-01-03', step => '1 day');
RESET client_min_messages;
SELECT kind, range_from::timestamptz, range_to::timestamptz, status, rows FROM etl.batches
 WHERE pipeline = 'st_ts' AND kind = 'backfill' ORDER BY batch_id;
SELECT triggered_by, rows_extracted, rows_inserted, rows_updated FROM etl.runs
 WHERE pipeline = 'st_ts' AND triggered_by = 'backfill' ORDER BY run_id;
SELECT watermark FROM etl.pipelines WHERE name = 'st_ts';
SELECT count(*) AS differences FROM (
    (SELECT * FROM st.events EXCEPT SELECT * FROM st.daily)
    UNION ALL (SELECT * FROM st.daily EXCEPT SELECT * FROM st.events)) d;
-- running it again skips the completed steps; force reprocesses them
CALL etl_backfill('st_ts', from_value => '2024-01-01', to_value => '2024-01-03', step => '1 day');
SET client_min_messages = warning;
CALL etl_backfill('st_ts', from_value => '2024-01-01', to_value => '2024-01-03', step => '1 day',
                  force => true);
RESET client_min_messages;
SELECT count(*) AS backfill_steps_completed FROM etl.batches
 WHERE pipeline = 'st_ts' AND kind = 'backfill' AND status = 'completed';
-- the same range asked from a session in another time zone: still done
SET TimeZone = 'Europe/Berlin';
CALL etl_backfill('st_ts', from_value => '2024-01-01 09:00:00+01', to_value => '2024-01-03 09:00:00+01',
                  step => '1 day');
RESET TimeZone;
-- the steps of a serial pipeline are numbers
SELECT * FROM etl_backfill_steps('st_serial', '1', '50', '20');

-- a step a crash cut short ('started' committed, its work never) is
-- abandoned by the next run, catch-up or backfill, and its range redone
SELECT etl_batch_start('st_serial', 'catch_up') > 0 AS started;
SELECT status FROM etl.batches WHERE pipeline = 'st_serial' ORDER BY batch_id DESC LIMIT 1;
SELECT rows_extracted FROM etl_run('st_serial');
SELECT status, error FROM etl.batches WHERE pipeline = 'st_serial' ORDER BY batch_id DESC LIMIT 1;
SELECT etl_batch_start('st_ts', 'backfill', '2024-01-03', '2024-01-04') > 0 AS started;
SELECT etl_batch_recover('st_ts');
SELECT etl_batch_recover('st_ts');

-- a failing step marks its batch failed and stops the procedure
SELECT etl_add_check('st_ts', 'accepted_values', 'v', '{"values": ["none"]}', name => 'never');
\set VERBOSITY sqlstate
CALL etl_backfill('st_ts', from_value => '2024-01-04', to_value => '2024-01-05', step => '1 day');
\set VERBOSITY default
SELECT status, error IS NOT NULL AS has_error FROM etl.batches
 WHERE pipeline = 'st_ts' ORDER BY batch_id DESC LIMIT 1;
SELECT etl_drop_check('st_ts', 'never');

-- refusals
SELECT * FROM etl_backfill_steps('st_ts', '2024-01-05', '2024-01-01', '1 day');
CREATE TABLE st.full_copy (id bigint PRIMARY KEY, v text, at timestamptz);
SELECT etl_create_pipeline('st_full', 'st.events', 'st.full_copy', mode => 'full') > 0 AS created;
\set VERBOSITY terse
CALL etl_backfill('st_full', from_value => '1', to_value => '2', step => '1');
SELECT etl_run_step('st_ts', 'sometimes');
BEGIN;
CALL etl_catch_up('st_serial');
ROLLBACK;
\set VERBOSITY default
