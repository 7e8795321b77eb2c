-- metrics.sql: the metrics case.  A history of
-- 100,000 recorded runs over 100 pipelines, written straight into the
-- catalogs as a superuser (the triggers on etl.runs and etl.check_results
-- keep etl.run_totals and etl.check_totals as runs would), then
-- etl_metrics() over it.

-- name: tables
-- The metrics pipelines' source and target: small, with the watermark
-- column indexed (etl_watermark_lag_seconds reads its newest value).
CREATE TABLE bench.metrics_src (id bigint PRIMARY KEY, v text, updated_at timestamptz);
CREATE INDEX ON bench.metrics_src (updated_at);
INSERT INTO bench.metrics_src
SELECT g, 'v' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 1000) AS g;
CREATE TABLE bench.metrics_tgt (id bigint PRIMARY KEY, v text, updated_at timestamptz);

-- name: pipeline
-- One metrics pipeline over them (named %(name)s) with two checks and a
-- watermark, as a pipeline that has run has (its lag is a metric).
SELECT etl_create_pipeline(name => %(name)s, source => 'bench.metrics_src',
                           target => 'bench.metrics_tgt', mode => 'timestamp',
                           watermark_column => 'updated_at');
SELECT etl_reset_watermark(%(name)s, '2024-01-01 12:00:00+00');
SELECT etl_add_check(%(name)s, 'not_null', column_name => 'v');
SELECT etl_add_check(%(name)s, 'row_count', params => '{"min": 1}', severity => 'warning');

-- name: runs
-- Runs number %(lo)s to %(hi)s, spread over the metrics pipelines, in time
-- order: 93 in 100 succeeded, 5 failed, 2 skipped; durations from 1 ms to
-- about 2 minutes (a log-uniform spread over the histogram's buckets).
-- One statement per few thousand runs, each its own transaction, as runs
-- come (one transaction for all would make the triggers update the same
-- few etl.run_totals rows along ever longer chains of row versions).
SELECT setseed(%(seed)s);
INSERT INTO etl.runs (pipeline_id, pipeline, status, rows_extracted, rows_inserted,
                      rows_updated, rows_unchanged, rows_rejected, watermark_from,
                      watermark_to, started_at, finished_at, duration, error, sqlstate,
                      error_class, run_by, triggered_by, extract_ms, load_ms)
SELECT p.pipeline_id, p.name, r.status,
       CASE WHEN r.status = 'skipped' THEN 0 ELSE r.n END,
       CASE WHEN r.status = 'succeeded' THEN r.n / 3 ELSE 0 END,
       CASE WHEN r.status = 'succeeded' THEN r.n / 3 ELSE 0 END,
       CASE WHEN r.status = 'succeeded' THEN r.n - 2 * (r.n / 3) ELSE 0 END,
       0, NULL, NULL, r.started_at,
       r.started_at + r.duration, r.duration,
       CASE WHEN r.status = 'failed' THEN 'canceling statement due to lock timeout' END,
       CASE WHEN r.status = 'failed' THEN '55P03' END,
       CASE WHEN r.status = 'failed' THEN 'transient' END,
       'postgres'::regrole,
       CASE WHEN r.i %% 10 = 0 THEN 'manual' ELSE 'schedule' END,
       extract(epoch FROM r.duration) * 300, extract(epoch FROM r.duration) * 600
  FROM (SELECT i,
               CASE WHEN u < 0.93 THEN 'succeeded' WHEN u < 0.98 THEN 'failed'
                    ELSE 'skipped' END AS status,
               floor(random() * 10000)::bigint AS n,
               timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute' AS started_at,
               make_interval(secs => 0.001 * power(120000, random())) AS duration
          FROM (SELECT i, random() AS u FROM generate_series(%(lo)s, %(hi)s) AS i
                OFFSET 0) AS g) AS r
  JOIN (SELECT pipeline_id, name, row_number() OVER (ORDER BY pipeline_id) - 1 AS k
          FROM etl.pipelines WHERE name LIKE 'bench\_metrics\_%%') AS p
    ON p.k = r.i %% %(pipelines)s;

-- name: check_results
-- Check results for one run in %(every)s of the metrics pipelines' runs that
-- were not skipped, one row per check; one in 20 failing.
SELECT setseed(0.9);
INSERT INTO etl.check_results (run_id, pipeline_id, pipeline, check_name, kind,
                               column_name, severity, passed, failing_rows, observed)
SELECT r.run_id, r.pipeline_id, r.pipeline, c.name, c.kind, c.column_name, c.severity,
       f.failing = 0, f.failing, NULL
  FROM etl.runs r
  JOIN etl.checks c USING (pipeline_id)
  CROSS JOIN LATERAL (SELECT CASE WHEN random() < 0.05 THEN 1 + floor(random() * 100)::bigint
                                  ELSE 0 END AS failing
                        WHERE r.run_id IS NOT NULL) AS f   -- a draw per row, not one for all
 WHERE r.pipeline LIKE 'bench\_metrics\_%%' AND r.status <> 'skipped'
   AND r.run_id %% %(every)s = 0;

-- name: analyze
VACUUM ANALYZE etl.pipelines, etl.runs, etl.run_totals, etl.check_results,
               etl.check_totals, etl.checks, etl.dead_letters;

-- name: expected_runs
-- What etl_runs_total must say: runs per pipeline and status.
SELECT pipeline, status, count(*) FROM etl.runs
 WHERE status <> 'running' GROUP BY pipeline, status;

-- name: expected_check_failures
-- What etl_check_failures_total must say: failed results per pipeline and check.
SELECT pipeline, check_name, count(*) FILTER (WHERE NOT passed)
  FROM etl.check_results GROUP BY pipeline, check_name;

-- name: drop
SELECT count(etl_drop_pipeline(name)) FROM etl.pipelines WHERE name LIKE 'bench\_metrics\_%';
DROP TABLE bench.metrics_src, bench.metrics_tgt;
