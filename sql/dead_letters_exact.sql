-- dead_letters_exact: a row version pending as a dead letter is not
-- dead-lettered or counted again; a snapshot source that repeats a key loads
-- one row per key and makes the others dead letters

CREATE SCHEMA dx;
CREATE TABLE dx.src (id int PRIMARY KEY, amount int, at timestamptz NOT NULL);
INSERT INTO dx.src SELECT g, g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 20) g;
UPDATE dx.src SET amount = -5 WHERE id = 20;  -- the newest row is bad
CREATE TABLE dx.dst (id int PRIMARY KEY, amount int CHECK (amount >= 0));
-- an overlap re-reads the last 30 seconds: on a quiet source, the bad row
-- alone (100% of the batch, above the 10% threshold)
SELECT etl_create_pipeline('dx_overlap', 'dx.src', 'dx.dst', watermark_column => 'at',
                           overlap => '30 seconds') > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_unchanged, rows_rejected FROM etl_run('dx_overlap');
-- the same version again: not rejected again, not counted, still not loaded
SELECT status, rows_extracted, rows_inserted, rows_unchanged, rows_rejected FROM etl_run('dx_overlap');
SELECT status, rows_extracted, rows_inserted, rows_unchanged, rows_rejected FROM etl_run('dx_overlap');
SELECT count(*) AS dead_letters, count(DISTINCT record) AS versions,
       min(record->>'amount') AS amount FROM etl.dead_letters WHERE pipeline = 'dx_overlap';
SELECT count(*) AS loaded_row_20 FROM dx.dst WHERE id = 20;
-- a changed version is new: rejected and counted (alone in its batch, above
-- the threshold: the run fails, and records its dead letter)
UPDATE dx.src SET amount = -6 WHERE id = 20;
SELECT code, message, detail FROM regress.run_failing('dx_overlap');
-- a failed run loaded nothing: its dead letters do not count, the next run
-- judges the row again (the threshold is not bypassed by running again)
SELECT code, message FROM regress.run_failing('dx_overlap');
SELECT r.status, d.record->>'amount' AS amount, d.status AS letter
  FROM etl.dead_letters d JOIN etl.runs r USING (run_id)
 WHERE d.pipeline = 'dx_overlap' ORDER BY d.id;
-- the fixed version loads
UPDATE dx.src SET amount = 6 WHERE id = 20;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('dx_overlap');
SELECT amount FROM dx.dst WHERE id = 20;

-- quarantine checks too: a row version set aside once is not set aside again
CREATE TABLE dx.dst_q (id int PRIMARY KEY, amount int);
SELECT etl_create_pipeline('dx_quarantine', 'dx.src', 'dx.dst_q', watermark_column => 'at',
                           overlap => '5 minutes') > 0 AS created;
UPDATE dx.src SET amount = 99 WHERE id = 19;
SELECT etl_add_check('dx_quarantine', 'range', column_name => 'amount',
                     params => '{"max": 20}', severity => 'quarantine');
SELECT status, rows_extracted, rows_inserted, rows_unchanged, rows_rejected FROM etl_run('dx_quarantine');
SELECT status, rows_extracted, rows_inserted, rows_unchanged, rows_rejected FROM etl_run('dx_quarantine');
SELECT stage, count(*) AS dead_letters FROM etl.dead_letters WHERE pipeline = 'dx_quarantine'
 GROUP BY stage;
SELECT count(*) AS loaded_above_20 FROM dx.dst_q WHERE amount > 20;

-- snapshot over a source that repeats a key (no primary key): one row per
-- key loads, the row stored last; the others are dead letters naming the
-- key, never a catalog error
CREATE TABLE dx.accounts (acct text, owner_name text, balance numeric(12,2));
INSERT INTO dx.accounts VALUES ('A1', 'o1', 10), ('A2', 'o2', 20), ('A3', 'o3', 30),
    ('A4', 'o4', 40), ('A5', 'o5', 50), ('A6', 'o6', 60), ('A7', 'o7', 70),
    ('A8', 'o8', 80), ('A9', 'o9', 90), ('A2', 'o2 again', 21);
CREATE TABLE dx.dim_accounts (acct text PRIMARY KEY, owner_name text, balance numeric(12,2));
SELECT etl_create_pipeline('dx_snap', 'dx.accounts', 'dx.dim_accounts', mode => 'snapshot',
                           error_threshold => 20) > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('dx_snap');
SELECT * FROM dx.dim_accounts WHERE acct = 'A2';
SELECT stage, record, sqlstate, error_class, error_message FROM etl.dead_letters
 WHERE pipeline = 'dx_snap';
-- one signature per key, none for the repeated one
SELECT s.key->>'acct' AS acct FROM etl.snapshot_signatures s JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name = 'dx_snap' ORDER BY 1;
-- again: the left-out version is pending already, nothing new
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('dx_snap');
SELECT count(*) AS dead_letters FROM etl.dead_letters WHERE pipeline = 'dx_snap';
-- other keys keep loading meanwhile
UPDATE dx.accounts SET balance = 11 WHERE acct = 'A1';
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('dx_snap');
SELECT balance FROM dx.dim_accounts WHERE acct = 'A1';
-- once the key is unique again, it is an ordinary key
DELETE FROM dx.accounts WHERE acct = 'A2' AND owner_name = 'o2';
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('dx_snap');
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('dx_snap');
SELECT count(*) AS differences FROM (
    (SELECT * FROM dx.accounts EXCEPT SELECT * FROM dx.dim_accounts)
    UNION ALL (SELECT * FROM dx.dim_accounts EXCEPT SELECT * FROM dx.accounts)) d;
SELECT count(*) AS signatures FROM etl.snapshot_signatures s JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name = 'dx_snap';
-- a key repeated by a view (no ctid): the row whose text sorts last loads
CREATE VIEW dx.accounts_v AS SELECT * FROM dx.accounts UNION ALL
    SELECT 'A3', 'o3 twin', 31;
CREATE TABLE dx.dim_accounts_v (acct text PRIMARY KEY, owner_name text, balance numeric(12,2));
SELECT etl_create_pipeline('dx_snap_view', 'dx.accounts_v', 'dx.dim_accounts_v', mode => 'snapshot',
                           error_threshold => 20) > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('dx_snap_view');
SELECT * FROM dx.dim_accounts_v WHERE acct = 'A3';
SELECT record->>'owner_name' AS left_out FROM etl.dead_letters WHERE pipeline = 'dx_snap_view';

-- a replay of dead letters is a run: triggered_by 'replay', its id on the
-- rows it loads, its counters in the run totals and the metrics
CREATE TABLE dx.replay_src (id int PRIMARY KEY, amount int, at timestamptz NOT NULL);
INSERT INTO dx.replay_src SELECT g, CASE WHEN g % 5 = 0 THEN -g ELSE g END,
    '2024-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 20) g;
CREATE TABLE dx.replay_dst (id int PRIMARY KEY, amount int CONSTRAINT non_negative CHECK (amount >= 0),
                            _etl_run_id bigint);
SELECT etl_create_pipeline('dx_replay', 'dx.replay_src', 'dx.replay_dst', watermark_column => 'at',
                           error_threshold => 50) > 0 AS created;
-- nothing pending: no run
SELECT * FROM etl_retry_dead_letters('dx_replay');
SELECT count(*) AS replay_runs FROM etl.runs WHERE triggered_by = 'replay';
SELECT run_id AS first_run, rows_inserted, rows_rejected FROM etl_run('dx_replay') \gset
SELECT :rows_inserted AS inserted, :rows_rejected AS rejected;
-- two of the four load now, two fail again
ALTER TABLE dx.replay_dst DROP CONSTRAINT non_negative,
    ADD CONSTRAINT non_negative CHECK (amount >= -10);
SELECT * FROM etl_retry_dead_letters('dx_replay');
SELECT run_id AS replay_run, status, triggered_by, rows_extracted, rows_inserted, rows_updated,
       rows_unchanged, rows_rejected, watermark_from = watermark_to AS watermark_stayed,
       run_by::text = current_user AS run_by_caller
  FROM etl.runs WHERE pipeline = 'dx_replay' AND triggered_by = 'replay' \gset
SELECT :replay_run > :first_run AS later_run, :'status' AS status, :'triggered_by' AS triggered_by,
       :rows_extracted AS extracted, :rows_inserted AS inserted, :rows_updated AS updated,
       :rows_unchanged AS unchanged, :rows_rejected AS rejected,
       :'watermark_stayed' AS watermark_stayed, :'run_by_caller' AS run_by_caller;
-- the rows it loaded carry its id, the others the first run's
SELECT id, amount, _etl_run_id = :replay_run AS by_replay, _etl_run_id = :first_run AS by_first_run
  FROM dx.replay_dst WHERE id % 5 = 0 ORDER BY id;
SELECT status, retry_count FROM etl.dead_letters WHERE pipeline = 'dx_replay' ORDER BY id;
-- the run totals and the metrics count it
SELECT t.status, t.runs, t.rows_extracted, t.rows_inserted, t.rows_rejected, t.last_run_id = :replay_run AS last_is_replay
  FROM etl.run_totals t JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = 'dx_replay';
SELECT labels->>'kind' AS kind, value FROM etl_metric_rows()
 WHERE metric = 'etl_rows_total' AND labels->>'pipeline' = 'dx_replay'
   AND labels->>'kind' IN ('extracted', 'inserted', 'rejected') ORDER BY 1;
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_runs_total' AND labels->>'pipeline' = 'dx_replay' AND labels->>'status' = 'succeeded';

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'dx\_%' ORDER BY name;
DROP SCHEMA dx CASCADE;
