-- dead_letters_spill: the dead letters a run finds take bounded memory.
-- An attempt keeps them in a tuplestore that holds a little in memory and
-- spills the rest to a temporary file; the file belongs to the run, not to
-- the attempt's subtransaction, so a failed run still records them all.
--
-- Two pipelines load the same 22,000 rows through a transform that casts
-- v to int: sp_one's source has one bad v, sp_bad's 20,000 (ids 1 ..
-- 20,000), so both are isolated from a staged copy.  A row trigger on
-- each target reads the backend's memory contexts
-- (pg_backend_memory_contexts) when the last row, id 22,000, loads: by then
-- each run holds all its dead letters.  Kept in the attempt's memory,
-- 20,000 dead letters took about 12 MB more than one.

CREATE SCHEMA sp;
CREATE TABLE sp.one_src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE sp.bad_src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE sp.one_dst (id int PRIMARY KEY, v int);
CREATE TABLE sp.bad_dst (id int PRIMARY KEY, v int);
INSERT INTO sp.one_src SELECT g, CASE WHEN g = 1 THEN 'x1' ELSE g::text END,
                              '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 22000) g;
INSERT INTO sp.bad_src SELECT g, CASE WHEN g <= 20000 THEN 'x' || g ELSE g::text END,
                              '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 22000) g;
CREATE TABLE sp.mem (target text, bytes bigint, dl_bytes bigint);
CREATE FUNCTION sp.log_mem() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sp.mem
    SELECT TG_TABLE_NAME, sum(total_bytes),
           sum(total_bytes) FILTER (WHERE name LIKE 'etl\_ext dead letter%')
      FROM pg_catalog.pg_backend_memory_contexts;
    RETURN NULL;
END $$;
CREATE TRIGGER log_mem AFTER INSERT ON sp.one_dst
    FOR EACH ROW WHEN (NEW.id = 22000) EXECUTE FUNCTION sp.log_mem();
CREATE TRIGGER log_mem AFTER INSERT ON sp.bad_dst
    FOR EACH ROW WHEN (NEW.id = 22000) EXECUTE FUNCTION sp.log_mem();
SELECT etl_create_pipeline('sp_one', 'sp.one_src', 'sp.one_dst', watermark_column => 'at',
    error_threshold => 95, transform => 'SELECT id, v::int AS v FROM etl_delta') > 0 AS created;
SELECT etl_create_pipeline('sp_bad', 'sp.bad_src', 'sp.bad_dst', watermark_column => 'at',
    error_threshold => 95, transform => 'SELECT id, v::int AS v FROM etl_delta') > 0 AS created;

SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('sp_one');
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('sp_bad');

-- the memory when the last row loads: 20,000 dead letters take about what
-- one takes (their tuplestore keeps 256 kB in memory).  What else grows:
-- the stage's local buffers and the combo command ids of its deleted rows,
-- about 3 MB together; leak says by how much more when it does
WITH m AS (
    SELECT max(bytes) FILTER (WHERE target = 'bad_dst')
             - max(bytes) FILTER (WHERE target = 'one_dst') AS grown,
           max(dl_bytes) FILTER (WHERE target = 'bad_dst') AS dl_bytes
      FROM sp.mem)
SELECT (SELECT count(*) FROM sp.mem) AS measures,
       grown < 6 * 1024 * 1024 AS memory_bounded,
       CASE WHEN grown >= 6 * 1024 * 1024
            THEN format('grew by %s, dead letters %s', pg_size_pretty(grown),
                        pg_size_pretty(dl_bytes)) END AS leak
  FROM m;

-- the target row for row: the good rows, nothing else
SELECT (SELECT count(*) FROM (SELECT id, v::int FROM sp.bad_src WHERE id > 20000
                              EXCEPT SELECT id, v FROM sp.bad_dst) d) AS missing,
       (SELECT count(*) FROM (SELECT id, v FROM sp.bad_dst
                              EXCEPT SELECT id, v::int FROM sp.bad_src WHERE id > 20000) d)
           AS unexpected;

-- every dead letter, read back from the file in the order found: one per
-- bad row, ascending, each with the row's JSON and the cast's error
SELECT count(*) AS dead_letters, count(DISTINCT record->>'id') AS rows,
       bool_and((record->>'id')::int <= 20000 AND record->>'v' = 'x' || (record->>'id'))
           AS the_bad_ones,
       bool_and(stage = 'transform' AND status = 'pending' AND sqlstate = '22P02')
           AS cast_errors_pending,
       bool_and(error_message LIKE 'invalid input syntax for type integer: "x%"')
           AS messages
  FROM etl.dead_letters WHERE pipeline = 'sp_bad';
SELECT count(*) AS out_of_order FROM (
    SELECT (record->>'id')::int AS rid,
           lag((record->>'id')::int) OVER (ORDER BY id) AS prev
      FROM etl.dead_letters WHERE pipeline = 'sp_bad') o
 WHERE rid < prev;

-- A failed run records its dead letters through the autonomous writer,
-- after its attempt's subtransaction is rolled back: the spilled file
-- outlives it.  A quarantine check sets aside the 20,000 bad rows of
-- 22,000 (all of them found before the run judges the threshold), which
-- pass no threshold of 10%.
CREATE TABLE sp.fail_dst (id int PRIMARY KEY, v text);
SELECT etl_create_pipeline('sp_fail', 'sp.bad_src', 'sp.fail_dst',
                           watermark_column => 'at', error_threshold => 10) > 0 AS created;
SELECT etl_add_check('sp_fail', 'expression', params => '{"sql": "v ~ ''^[0-9]+$''"}',
                     severity => 'quarantine');
DO $$BEGIN
    PERFORM etl_run('sp_fail');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'the run failed: %', SQLSTATE;
END$$;
SELECT status, rows_rejected, watermark_to IS NULL AS watermark_kept
  FROM etl.runs WHERE pipeline = 'sp_fail';
SELECT count(*) AS dead_letters, count(DISTINCT record->>'id') AS rows,
       bool_and((record->>'id')::int <= 20000) AS the_bad_ones
  FROM etl.dead_letters WHERE pipeline = 'sp_fail';
SELECT count(*) AS loaded FROM sp.fail_dst;

-- temp_file_limit below what the spilled dead letters take: the write that
-- passes it fails the run with 53400, and the run is recorded (without its
-- dead letters, which cannot be read back from the cut file); nothing
-- loaded, the watermark kept.  Without the limit the next run loads the
-- batch and records each dead letter once.
CREATE TABLE sp.limit_dst (id int PRIMARY KEY, v int);
SELECT etl_create_pipeline('sp_limit', 'sp.bad_src', 'sp.limit_dst', watermark_column => 'at',
    error_threshold => 95, transform => 'SELECT id, v::int AS v FROM etl_delta') > 0 AS created;
SET temp_file_limit = '1MB';
DO $$BEGIN
    PERFORM etl_run('sp_limit');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'the run failed: %', SQLSTATE;
END$$;
RESET temp_file_limit;
SELECT status, sqlstate, error, rows_rejected > 0 AS rejected_some,
       watermark_to IS NULL AS watermark_kept
  FROM etl.runs WHERE pipeline = 'sp_limit';
SELECT count(*) AS dead_letters FROM etl.dead_letters WHERE pipeline = 'sp_limit';
SELECT count(*) AS loaded FROM sp.limit_dst;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('sp_limit');
SELECT count(*) AS dead_letters, count(DISTINCT record->>'id') AS rows
  FROM etl.dead_letters WHERE pipeline = 'sp_limit';
SELECT count(*) AS loaded FROM sp.limit_dst;

SELECT etl_drop_pipeline('sp_one');
SELECT etl_drop_pipeline('sp_bad');
SELECT etl_drop_pipeline('sp_fail');
SELECT etl_drop_pipeline('sp_limit');
DROP SCHEMA sp CASCADE;
