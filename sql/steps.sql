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
-- its steps inserted without looking at the target; the last one refreshed
-- the target's statistics
SELECT reltuples AS target_rows_in_statistics FROM pg_class WHERE oid = 'st.copy'::regclass;
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
SELECT * FROM etl_internal.etl_backfill_steps('st_serial', '1', '50', '20');

-- a step a crash cut short ('started' committed, its work never) is
-- abandoned by the next run, catch-up or backfill, and its range redone
SELECT etl_internal.etl_batch_start('st_serial', 'catch_up') > 0 AS started;
SELECT status FROM etl.batches WHERE pipeline = 'st_serial' ORDER BY batch_id DESC LIMIT 1;
SELECT rows_extracted FROM etl_run('st_serial');
SELECT status, error FROM etl.batches WHERE pipeline = 'st_serial' ORDER BY batch_id DESC LIMIT 1;
SELECT etl_internal.etl_batch_start('st_ts', 'backfill', '2024-01-03', '2024-01-04') > 0 AS started;
SELECT etl_internal.etl_batch_recover('st_ts');
SELECT etl_internal.etl_batch_recover('st_ts');

-- a failing step marks its batch failed and stops the procedure
SELECT etl_add_check('st_ts', 'accepted_values', 'v', '{"values": ["none"]}', name => 'never');
\set VERBOSITY sqlstate
CALL etl_backfill('st_ts', from_value => '2024-01-04', to_value => '2024-01-05', step => '1 day');
\set VERBOSITY default
SELECT status, error IS NOT NULL AS has_error FROM etl.batches
 WHERE pipeline = 'st_ts' ORDER BY batch_id DESC LIMIT 1;
SELECT etl_drop_check('st_ts', 'never');

-- refusals
SELECT * FROM etl_internal.etl_backfill_steps('st_ts', '2024-01-05', '2024-01-01', '1 day');
CREATE TABLE st.full_copy (id bigint PRIMARY KEY, v text, at timestamptz);
SELECT etl_create_pipeline('st_full', 'st.events', 'st.full_copy', mode => 'full') > 0 AS created;
\set VERBOSITY terse
CALL etl_backfill('st_full', from_value => '1', to_value => '2', step => '1');
SELECT etl_internal.etl_run_step('st_ts', 'sometimes');
BEGIN;
CALL etl_catch_up('st_serial');
ROLLBACK;
\set VERBOSITY default

-- catch-up steps insert their batch as new rows; where the target has a
-- key already (a row moved forward), or the batch holds a key twice, the
-- step classifies after all: updated once, latest version, nothing twice
\set VERBOSITY terse
CREATE TABLE st.versions (id int PRIMARY KEY, v text, seq bigint NOT NULL);
INSERT INTO st.versions SELECT g, 'v' || g, g FROM generate_series(1, 30) g;
CREATE TABLE st.latest (id int PRIMARY KEY, v text, seq bigint);
SELECT etl_create_pipeline('st_versions', 'st.versions', 'st.latest',
    mode => 'serial', watermark_column => 'seq', batch_size => 10) > 0 AS created;
SET client_min_messages = warning;
CALL etl_catch_up('st_versions');
RESET client_min_messages;
UPDATE st.versions SET v = v || '+', seq = 100 + id WHERE id IN (3, 25);
INSERT INTO st.versions SELECT g, 'v' || g, g FROM generate_series(31, 38) g;
SET client_min_messages = warning;
CALL etl_catch_up('st_versions');
RESET client_min_messages;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged, status
  FROM etl.runs WHERE pipeline = 'st_versions' ORDER BY run_id;
-- the target equals the source, row for row
SELECT count(*) AS differ FROM (
  (SELECT id, v, seq FROM st.versions EXCEPT ALL SELECT id, v, seq FROM st.latest)
  UNION ALL
  (SELECT id, v, seq FROM st.latest EXCEPT ALL SELECT id, v, seq FROM st.versions)) d;
SELECT count(*) AS target_rows FROM st.latest;

-- a change log: a key twice in one step loads its latest version
CREATE TABLE st.changes (change_id int PRIMARY KEY, id int NOT NULL, v text);
INSERT INTO st.changes SELECT g, g, 'v' || g FROM generate_series(1, 10) g;
CREATE TABLE st.current (id int PRIMARY KEY, v text);
SELECT etl_create_pipeline('st_changes', 'st.changes', 'st.current', key => ARRAY['id'],
    mode => 'serial', watermark_column => 'change_id', batch_size => 5,
    transform => 'SELECT id, v FROM etl_delta') > 0 AS created;
SET client_min_messages = warning;
CALL etl_catch_up('st_changes');
RESET client_min_messages;
INSERT INTO st.changes VALUES (11, 11, 'v11'), (12, 4, 'v4 again'), (13, 12, 'v12'),
    (14, 4, 'v4 last'), (15, 13, 'v13');
SET client_min_messages = warning;
CALL etl_catch_up('st_changes');
RESET client_min_messages;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged, status
  FROM etl.runs WHERE pipeline = 'st_changes' ORDER BY run_id;
SELECT * FROM st.current WHERE id IN (4, 11, 12, 13) ORDER BY id;
SELECT count(*) AS target_rows FROM st.current;
\set VERBOSITY default
