-- catch_up_checks: the empty last step of a catch-up is not judged by the
-- quality checks.  When the pending rows are an exact multiple of
-- batch_size, etl_catch_up ends with a step that finds nothing; a row_count
-- check {"min": 1} would fail it, and the whole catch-up with it.  That step
-- (the one after a step that took a full batch) skips the checks; a
-- catch-up that finds nothing at all is judged like any run.

CREATE SCHEMA cc;
CREATE TABLE cc.src (id int PRIMARY KEY, n int NOT NULL, at timestamptz NOT NULL);
CREATE TABLE cc.dst (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO cc.src SELECT g, g * 10, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('cc', 'cc.src', 'cc.dst', watermark_column => 'at',
                           batch_size => 5) > 0 AS created;
SELECT etl_add_check('cc', 'row_count', params => '{"min": 1}');
SELECT etl_add_check('cc', 'positive', column_name => 'n');

-- 10 rows in steps of 5: 5, 5, then the empty last step; the call succeeds
SET client_min_messages = warning;  -- progress notices carry timings
CALL etl_catch_up('cc');
RESET client_min_messages;
SELECT run_id - min(run_id) OVER () + 1 AS step, status, triggered_by, rows_extracted,
       rows_inserted, error
  FROM etl.runs WHERE pipeline = 'cc' ORDER BY run_id;
-- the full steps were judged (both checks passed), the empty one not at all
SELECT r.rows_extracted, c.check_name, c.passed, c.observed
  FROM etl.runs r JOIN etl.check_results c USING (run_id)
 WHERE r.pipeline = 'cc' ORDER BY r.run_id, c.check_name;
SELECT count(*) AS results_of_the_empty_step
  FROM etl.check_results c JOIN etl.runs r USING (run_id)
 WHERE r.pipeline = 'cc' AND r.rows_extracted = 0;
SELECT kind, status, rows FROM etl.batches WHERE pipeline = 'cc' ORDER BY batch_id;
-- the target row for row
SELECT count(*) AS differences FROM (
    (SELECT id, n FROM cc.src EXCEPT SELECT id, n FROM cc.dst)
    UNION ALL (SELECT id, n FROM cc.dst EXCEPT SELECT id, n FROM cc.src)) d;

-- a catch-up that finds nothing at all is judged as a run would be: its
-- one step fails the row_count check, and the failure is recorded
SET client_min_messages = warning;
\set VERBOSITY sqlstate
CALL etl_catch_up('cc');
\set VERBOSITY default
RESET client_min_messages;
SELECT status, rows_extracted, sqlstate, error FROM etl.runs
 WHERE pipeline = 'cc' ORDER BY run_id DESC LIMIT 1;

-- resumed after a crash that followed a full step: 5 new rows taken by a
-- step, then a step that a crash cut short (its started row is left);
-- the next catch-up abandons that row, finds nothing and ends successfully
INSERT INTO cc.src SELECT g, g * 10, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(11, 15) g;
SELECT status, rows_extracted FROM etl_internal.etl_run_step('cc', 'catch_up', NULL, NULL,
                                                etl_internal.etl_batch_start('cc', 'catch_up'));
SELECT etl_internal.etl_batch_start('cc', 'catch_up') > 0 AS started_then_cut_short;
SET client_min_messages = warning;
CALL etl_catch_up('cc');
RESET client_min_messages;
SELECT status, rows FROM etl.batches WHERE pipeline = 'cc' ORDER BY batch_id DESC LIMIT 3;
SELECT status, rows_extracted, error FROM etl.runs
 WHERE pipeline = 'cc' ORDER BY run_id DESC LIMIT 1;
SELECT count(*) AS differences FROM (
    (SELECT id, n FROM cc.src EXCEPT SELECT id, n FROM cc.dst)
    UNION ALL (SELECT id, n FROM cc.dst EXCEPT SELECT id, n FROM cc.src)) d;

-- an etl_run that finds nothing is judged too (the check is for that)
\set VERBOSITY sqlstate
SELECT status FROM etl_run('cc');
\set VERBOSITY default
SELECT status, rows_extracted, triggered_by, error FROM etl.runs
 WHERE pipeline = 'cc' ORDER BY run_id DESC LIMIT 1;

SELECT etl_drop_pipeline('cc');
DROP SCHEMA cc CASCADE;
