-- isolation_work: the work bad-row isolation does for a few bad rows, counted
-- rather than timed.  A statement trigger on the target counts, with a
-- sequence (which a rollback does not undo), every statement that writes
-- to it, the parts loaded for good and the probes rolled back; the
-- statistics of the transaction count the rows written, rolled back or
-- not.  Both counts are exact for these rows: a change of them is a change
-- of the work isolation does.
--
-- 50,000 rows, written in an order unrelated to their keys, are isolated in
-- 511 parts of 98 rows, one statement each; three rows fail the target's
-- CHECK, each in its own part.  A part with a bad row takes its failed
-- try, the probes that bisect it (at most two per halving), the rest of
-- the part, then its held row alone: its try, the probe of the row and the
-- try again without it: 42 statements more than one per part here (75
-- when isolation probed again the statement it had just seen fail, and
-- bisected the whole part to find its one held row again).  The rows
-- written and rolled back are those of the set-based try (up to the first
-- bad row it met), of the parts' failed tries and of the probes: 1,605
-- (1,751 when the failed statement was probed again).
--
-- The stage numbers the rows by the watermark column, for which the source
-- has an index: the whole range is read once and sorted, not fetched row
-- by row through that index in its order (every row on another page of the
-- source; 50,000 fetches here).

CREATE SCHEMA iw;
CREATE TABLE iw.src (id int PRIMARY KEY, n int, at timestamptz NOT NULL);
CREATE INDEX src_at ON iw.src (at);
CREATE TABLE iw.dst (id int PRIMARY KEY, n int CHECK (n >= 0));
CREATE SEQUENCE iw.statements;
CREATE FUNCTION iw.count_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('iw.statements');
    RETURN NULL;
END $$;
CREATE TRIGGER count_statement BEFORE INSERT OR UPDATE OR DELETE ON iw.dst
    FOR EACH STATEMENT EXECUTE FUNCTION iw.count_statement();
-- the watermark of row g is (g * 7919) mod 50000 seconds: a permutation
INSERT INTO iw.src
SELECT g, CASE WHEN g IN (1060, 25060, 49060) THEN -1 ELSE g END,
       '2024-01-01'::timestamptz + ((g * 7919) % 50000) * interval '1 second'
  FROM generate_series(1, 50000) g;
ANALYZE iw.src;
SELECT etl_create_pipeline('iw', 'iw.src', 'iw.dst', watermark_column => 'at',
    transform => 'SELECT id, n FROM etl_delta') > 0 AS created;

BEGIN;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('iw');
-- statements and rows beyond the loaded ones; fetches: rows read through
-- the index on the watermark column
SELECT (SELECT last_value FROM iw.statements) - 1 - 511 AS extra_statements,
       pg_stat_get_xact_tuples_inserted('iw.dst'::regclass) - 49997 AS rows_rolled_back,
       pg_stat_get_xact_tuples_fetched('iw.src_at'::regclass) < 1000 AS read_once;
COMMIT;

-- the target row for row: every row but the three bad ones
SELECT (SELECT count(*) FROM (SELECT id, n FROM iw.src WHERE n >= 0
                              EXCEPT SELECT * FROM iw.dst) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM iw.dst
                              EXCEPT SELECT id, n FROM iw.src WHERE n >= 0) d) AS unexpected;
-- one dead letter per bad row, at the load
SELECT record->>'id' AS id, stage, sqlstate
  FROM etl.dead_letters WHERE pipeline = 'iw' ORDER BY (record->>'id')::int;

SELECT etl_drop_pipeline('iw');
DROP SCHEMA iw CASCADE;
