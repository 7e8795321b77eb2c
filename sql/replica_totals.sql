-- replica_totals: runs and check results written with session_replication_role
-- = replica (a logical replication apply, or a database or role that sets
-- it) are counted in etl.run_totals, etl.check_totals and the metrics: the
-- triggers that keep them fire ALWAYS

CREATE SCHEMA rt;
CREATE TABLE rt.src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE rt.dst (id int PRIMARY KEY, n int);
INSERT INTO rt.src SELECT g, g::text, now() - interval '1 hour' FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('rt', 'rt.src', 'rt.dst', watermark_column => 'at', max_attempts => 1,
    error_threshold => 0, transform => 'SELECT id, v::int AS n FROM etl_delta') > 0 AS created;
-- a warning check that fails on every run with rows
SELECT etl_add_check('rt', 'range', column_name => 'n', params => '{"max": 5}', severity => 'warning');

-- the catalog triggers fire in every session_replication_role
SELECT tgrelid::regclass AS "table", tgname, tgenabled FROM pg_trigger
 WHERE tgrelid IN ('etl.runs'::regclass, 'etl.check_results'::regclass) AND NOT tgisinternal
 ORDER BY 1, 2;

-- what the counters say must equal what the catalogs hold
CREATE VIEW rt.counted AS
SELECT (SELECT coalesce(sum(t.runs), 0) FROM etl.run_totals t WHERE t.pipeline_id = p.pipeline_id
           AND t.status = 'succeeded') AS succeeded_counted,
       (SELECT count(*) FROM etl.runs r WHERE r.pipeline_id = p.pipeline_id
           AND r.status = 'succeeded') AS succeeded_runs,
       (SELECT coalesce(sum(t.runs), 0) FROM etl.run_totals t WHERE t.pipeline_id = p.pipeline_id
           AND t.status = 'failed') AS failed_counted,
       (SELECT count(*) FROM etl.runs r WHERE r.pipeline_id = p.pipeline_id
           AND r.status = 'failed') AS failed_runs,
       (SELECT coalesce(sum(t.rows_inserted + t.rows_updated), 0) FROM etl.run_totals t
         WHERE t.pipeline_id = p.pipeline_id) AS rows_counted,
       (SELECT coalesce(sum(r.rows_inserted + r.rows_updated), 0) FROM etl.runs r
         WHERE r.pipeline_id = p.pipeline_id) AS rows_loaded,
       (SELECT coalesce(sum(t.failures), 0) FROM etl.check_totals t
         WHERE t.pipeline_id = p.pipeline_id) AS check_failures_counted,
       (SELECT count(*) FROM etl.check_results c WHERE c.pipeline_id = p.pipeline_id
           AND NOT c.passed) AS check_failures
  FROM etl.pipelines p WHERE p.name = 'rt';

-- a run in an ordinary session
SELECT status, rows_inserted FROM etl_run('rt');
SELECT * FROM rt.counted;

-- runs in a session with session_replication_role = replica: a succeeded
-- one (and its failed check), then a failed one, whose record the
-- autonomous writer commits
SET session_replication_role = replica;
UPDATE rt.src SET v = (id + 100)::text, at = now() - interval '30 minutes' WHERE id <= 3;
SELECT status, rows_updated FROM etl_run('rt');
UPDATE rt.src SET v = 'x', at = now() - interval '20 minutes' WHERE id = 4;
DO $$ BEGIN PERFORM etl_run('rt'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'run failed: %', SQLSTATE; END $$;
SELECT * FROM rt.counted;
RESET session_replication_role;

-- a database that sets it: the runs of new sessions, and the autonomous
-- writer's failure records, are counted too
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET session_replication_role = replica;
\c
SHOW session_replication_role;
UPDATE rt.src SET v = '7', at = now() - interval '10 minutes' WHERE id = 4;
SELECT status, rows_updated FROM etl_run('rt');
UPDATE rt.src SET v = 'y', at = now() - interval '5 minutes' WHERE id = 5;
DO $$ BEGIN PERFORM etl_run('rt'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'run failed: %', SQLSTATE; END $$;
SELECT * FROM rt.counted;
ALTER DATABASE :"db" RESET session_replication_role;
\c

-- the metrics read the counters
SELECT labels->>'status' AS status, value FROM etl_metric_rows()
 WHERE metric = 'etl_runs_total' AND labels->>'pipeline' = 'rt' ORDER BY 1;
SELECT labels->>'check' AS check, value FROM etl_metric_rows()
 WHERE metric = 'etl_check_failures_total' AND labels->>'pipeline' = 'rt' ORDER BY 1;

SELECT etl_drop_pipeline('rt');
DROP SCHEMA rt CASCADE;
