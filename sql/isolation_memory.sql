-- isolation_memory: bad-row isolation keeps a run's memory bounded.  Every
-- statement's plan is freed when it fails as well as when it succeeds, and
-- each isolation part runs in a memory context reset after it: the memory
-- of a run does not grow with the rows it rejects or the parts it loads.
--
-- A row trigger on the target reads the backend's memory contexts
-- (pg_backend_memory_contexts) at ten points of a run that isolates 2,000
-- bad rows in 20,000: the plans held stay a handful, and the memory at the
-- last point is about what it was at the first.  (A run that kept the plans
-- of its failing probes held tens of thousands of them, hundreds of MB.)

CREATE SCHEMA im;
CREATE TABLE im.src (id int PRIMARY KEY, v text, n int, at timestamptz NOT NULL);
CREATE TABLE im.dst (id int PRIMARY KEY, v int, n int CHECK (n >= 0));
CREATE TABLE im.mem (id int, contexts bigint, plans bigint, bytes bigint);
CREATE FUNCTION im.log_mem() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO im.mem
    SELECT NEW.id, count(*),
           count(*) FILTER (WHERE name IN ('CachedPlanSource', 'SPI Plan')),
           sum(total_bytes)
      FROM pg_catalog.pg_backend_memory_contexts;
    RETURN NULL;
END $$;
-- half of the keys are in the target already (updated), half are new
INSERT INTO im.dst SELECT g, 0, 0 FROM generate_series(1, 10000) g;
-- ten rows that are never bad: ids 1, 2001, ... 18001
CREATE TRIGGER log_mem AFTER INSERT OR UPDATE ON im.dst
    FOR EACH ROW WHEN (NEW.id % 2000 = 1) EXECUTE FUNCTION im.log_mem();
-- every 20th row fails its transform (22P02), every 20th + 10 the target's
-- CHECK (23514): 2,000 bad rows, spread over every part
INSERT INTO im.src
SELECT g, CASE WHEN g % 20 = 0 THEN 'x' || g ELSE g::text END,
       CASE WHEN g % 20 = 10 THEN -1 ELSE g END,
       '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 20000) g;
SELECT etl_create_pipeline('im', 'im.src', 'im.dst', watermark_column => 'at',
    error_threshold => 20, transform => 'SELECT id, v::int AS v, n FROM etl_delta') > 0 AS created;

SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged,
       rows_rejected, attempts
  FROM etl_run('im');

-- the target row for row: the good rows loaded, the bad ones kept their old
-- version (ids up to 10000) or are absent
WITH expected AS (
    SELECT g AS id, g AS v, g AS n FROM generate_series(1, 20000) g WHERE g % 20 NOT IN (0, 10)
    UNION ALL
    SELECT g, 0, 0 FROM generate_series(1, 10000) g WHERE g % 20 IN (0, 10))
SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM im.dst) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM im.dst EXCEPT SELECT * FROM expected) d) AS unexpected;

-- one dead letter per bad row, at the stage where it failed
SELECT stage, sqlstate, count(*) AS dead_letters,
       count(DISTINCT record->>'id') AS distinct_rows,
       bool_and((record->>'id')::int % 20 = CASE stage WHEN 'transform' THEN 0 ELSE 10 END)
           AS right_rows
  FROM etl.dead_letters WHERE pipeline = 'im' GROUP BY stage, sqlstate ORDER BY stage;

-- ten measures, the plans held few, the memory flat: what grew between the
-- first point and the last is the dead letters kept (about 0.5 MB); leak
-- says by how much otherwise
WITH m AS (
    SELECT count(*) AS measures, max(plans) AS plans,
           max(bytes) FILTER (WHERE id = 18001) - max(bytes) FILTER (WHERE id = 1) AS grown
      FROM im.mem)
SELECT measures, plans <= 20 AS plans_bounded, grown < 4 * 1024 * 1024 AS memory_flat,
       CASE WHEN plans > 20 OR grown >= 4 * 1024 * 1024
            THEN format('plans %s, memory grew by %s', plans, pg_size_pretty(grown)) END AS leak
  FROM m;

-- The combo command ids of the transaction: each statement that deletes
-- or updates rows the transaction wrote takes one, kept until the
-- transaction ends.  Removing the rejected rows from the stage (rows the
-- run wrote) takes one for the rows of a probe, not one a row: a run that
-- rejects half of 20,000 rows (5,000 bad transforms, 5,000 rows the
-- target refuses) keeps 128 kB of them at most, as many as its
-- statements, where a statement a row made them grow with the bad rows
-- (to 512 kB here).
CREATE TABLE im.csrc (LIKE im.src INCLUDING ALL);
INSERT INTO im.csrc
SELECT g, CASE WHEN g % 4 = 0 THEN 'x' || g ELSE g::text END,
       CASE WHEN g % 4 = 2 THEN -1 ELSE g END,
       '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 20000) g;
CREATE TABLE im.cdst (LIKE im.dst INCLUDING ALL);
CREATE TABLE im.combo (bytes bigint);
CREATE FUNCTION im.log_combo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO im.combo
    SELECT coalesce(sum(total_bytes), 0) FROM pg_catalog.pg_backend_memory_contexts
     WHERE name = 'Combo CIDs';
    RETURN NULL;
END $$;
CREATE TRIGGER log_combo AFTER INSERT ON im.cdst
    FOR EACH ROW WHEN (NEW.id = 19999) EXECUTE FUNCTION im.log_combo();
SELECT etl_create_pipeline('im_c', 'im.csrc', 'im.cdst', watermark_column => 'at',
    error_threshold => 60, transform => 'SELECT id, v::int AS v, n FROM etl_delta') > 0 AS created;
SELECT status, rows_inserted, rows_rejected FROM etl_run('im_c');
SELECT count(*) AS measures, max(bytes) <= 131072 AS combo_ids_bounded,
       CASE WHEN max(bytes) > 131072 THEN pg_size_pretty(max(bytes)) END AS combo_ids
  FROM im.combo;

-- Storing the dead letters: a run keeps its dead letters until it records
-- them, then inserts them 1,000 a statement, each statement's JSON built
-- and parsed in memory freed after it.  (Recorded as one JSON document, the
-- 100,000 dead letters of 10% bad rows in 1,000,000 took hundreds of MB.)
-- 5,000 rows of 10,000 are set aside by a quarantine check; statement
-- triggers read the memory when the load's INSERT ends and at each INSERT
-- into etl.dead_letters: each of the five adds about 7 MB (its JSON
-- parsed), the one INSERT of all 5,000 added 33 MB.
CREATE TABLE im.qsrc (id int PRIMARY KEY, n int, at timestamptz NOT NULL);
CREATE TABLE im.qdst (id int PRIMARY KEY, n int);
INSERT INTO im.qsrc SELECT g, CASE WHEN g % 2 = 0 THEN -g ELSE g END,
                           '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 10000) g;
SELECT etl_create_pipeline('im_q', 'im.qsrc', 'im.qdst', watermark_column => 'at',
                           error_threshold => 60) > 0 AS created;
SELECT etl_add_check('im_q', 'positive', column_name => 'n', severity => 'quarantine');
CREATE TABLE im.store (what text, rows bigint, bytes bigint);
CREATE FUNCTION im.store_mem() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO im.store
    SELECT TG_TABLE_NAME, (SELECT count(*) FROM new_rows), sum(total_bytes)
      FROM pg_catalog.pg_backend_memory_contexts;
    RETURN NULL;
END $$;
CREATE TRIGGER store_mem AFTER INSERT ON im.qdst REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION im.store_mem();
CREATE TRIGGER im_store_mem AFTER INSERT ON etl.dead_letters REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION im.store_mem();
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('im_q');
DROP TRIGGER im_store_mem ON etl.dead_letters;
SELECT count(*) FILTER (WHERE what = 'dead_letters') AS statements,
       sum(rows) FILTER (WHERE what = 'dead_letters') AS dead_letters,
       max(rows) FILTER (WHERE what = 'dead_letters') AS most_in_one,
       max(bytes) FILTER (WHERE what = 'dead_letters')
         - max(bytes) FILTER (WHERE what = 'qdst') < 16 * 1024 * 1024 AS memory_flat
  FROM im.store;
SELECT count(*) AS dead_letters, count(DISTINCT record->>'id') AS rows,
       bool_and((record->>'id')::int % 2 = 0) AS the_negative_ones
  FROM etl.dead_letters WHERE pipeline = 'im_q';

-- The stage's index: a run that isolates bad rows copies its batch into a
-- temporary table and indexes it by row number, a sort of the whole batch.
-- It is built with maintenance_work_mem at most the run's work_mem
-- (etl.work_mem), so a session's large maintenance_work_mem does not let a
-- run hold a sort of its whole batch in memory.  An event trigger notes
-- the setting each CREATE INDEX ran under; the caller's setting is back
-- after the run, and a smaller one is kept.
CREATE TABLE im.builds (run int, maintenance_work_mem text);
CREATE FUNCTION im.note_build() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO im.builds
    SELECT (SELECT count(*) FROM etl.runs WHERE pipeline = 'im_s') + 1,
           current_setting('maintenance_work_mem');
END $$;
CREATE EVENT TRIGGER im_note_build ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
    EXECUTE FUNCTION im.note_build();
CREATE TABLE im.ssrc (id int PRIMARY KEY, n int, at timestamptz NOT NULL);
CREATE TABLE im.sdst (id int PRIMARY KEY, n int CHECK (n >= 0));
INSERT INTO im.ssrc SELECT g, CASE WHEN g % 1000 = 0 THEN -1 ELSE g END,
                           '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 20000) g;
SELECT etl_create_pipeline('im_s', 'im.ssrc', 'im.sdst', watermark_column => 'at') > 0 AS created;
SET maintenance_work_mem = '1GB';
SET etl.work_mem = '2MB';
SELECT status, rows_inserted, rows_rejected FROM etl_run('im_s');
SHOW maintenance_work_mem;
SELECT etl_reset_watermark('im_s');
DELETE FROM etl.dead_letters WHERE pipeline = 'im_s';
SET maintenance_work_mem = '1MB';
SET etl.work_mem = '64MB';
SELECT status, rows_inserted, rows_updated, rows_rejected FROM etl_run('im_s');
SHOW maintenance_work_mem;
RESET maintenance_work_mem;
RESET etl.work_mem;
DROP EVENT TRIGGER im_note_build;
SELECT * FROM im.builds ORDER BY run;

SELECT etl_drop_pipeline('im');
SELECT etl_drop_pipeline('im_q');
SELECT etl_drop_pipeline('im_s');
SELECT etl_drop_pipeline('im_c');
DROP SCHEMA im CASCADE;
