-- isolation_locks: the locks bad-row isolation holds for its parts last
-- as long as the attempt and no longer.  Until the attempt ends each kept
-- part's transaction id stays locked (a session waiting for a row the part
-- wrote waits for the part, and a deadlock with it can be retried away:
-- isolation/specs/delete_deadlock_rejects.spec); once the attempt has
-- succeeded they are released, so that a transaction running many
-- pipelines does not pile them up in the server's shared lock table.
--
-- A run isolates one bad row of 2,000 (row 1,000 fails the target's
-- CHECK) in parts of 64 rows: about 32 parts, each a subtransaction that
-- wrote.  Inside the caller's transaction, after the run, pg_locks shows
-- the transaction-id locks the backend still holds: its own, the
-- attempt's, and no part's.

CREATE SCHEMA il;
CREATE TABLE il.src (id int PRIMARY KEY, n int, at timestamptz NOT NULL);
CREATE TABLE il.dst (id int PRIMARY KEY, n int CHECK (n >= 0));
INSERT INTO il.src SELECT g, CASE WHEN g = 1000 THEN -1 ELSE g END,
                          '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 2000) g;
SELECT etl_create_pipeline('il', 'il.src', 'il.dst', watermark_column => 'at') > 0 AS created;

BEGIN;
SELECT status, rows_extracted, rows_inserted, rows_rejected, attempts FROM etl_run('il');
SELECT count(*) <= 3 AS few_xid_locks,
       CASE WHEN count(*) > 3 THEN format('%s transaction-id locks held', count(*)) END AS held
  FROM pg_catalog.pg_locks
 WHERE locktype = 'transactionid' AND pid = pg_catalog.pg_backend_pid();
COMMIT;

-- the same from a plpgsql block with an EXCEPTION clause (the run inside
-- the block's subtransaction): 2,000 more rows, row 3,000 bad
INSERT INTO il.src SELECT g, CASE WHEN g = 3000 THEN -1 ELSE g END,
                          '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(2001, 4000) g;
BEGIN;
DO $$BEGIN
    PERFORM etl_run('il');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'the run failed: %', SQLSTATE;
END$$;
SELECT count(*) <= 4 AS few_xid_locks,
       CASE WHEN count(*) > 4 THEN format('%s transaction-id locks held', count(*)) END AS held
  FROM pg_catalog.pg_locks
 WHERE locktype = 'transactionid' AND pid = pg_catalog.pg_backend_pid();
COMMIT;
SELECT status, rows_extracted, rows_inserted, rows_rejected, attempts
  FROM etl.runs WHERE pipeline = 'il' ORDER BY run_id;

-- the target row for row: every row but the bad ones
SELECT (SELECT count(*) FROM (SELECT id, n FROM il.src WHERE id NOT IN (1000, 3000)
                              EXCEPT SELECT id, n FROM il.dst) d) AS missing,
       (SELECT count(*) FROM (SELECT id, n FROM il.dst
                              EXCEPT SELECT id, n FROM il.src WHERE id NOT IN (1000, 3000)) d)
           AS unexpected;
SELECT record->>'id' AS id, stage, sqlstate FROM etl.dead_letters WHERE pipeline = 'il' ORDER BY id;

SELECT etl_drop_pipeline('il');
DROP SCHEMA il CASCADE;
