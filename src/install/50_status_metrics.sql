/*
 * src/install/50_status_metrics.sql -- observing pipelines: the view
 * etl.status with its parts in etl_internal (the fenced lag, the failures
 * whose record waits in a file, the schedules), and the metrics
 * etl_metric_rows and etl_metrics.
 */

-- Observing -----------------------------------------------------------------

CREATE FUNCTION etl_internal.etl_lag(pipeline text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_lag'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lag(text) IS
    'distance from the watermark to the newest source row (interval or number, as text); NULL when unknown or not readable';

CREATE FUNCTION etl_internal.etl_unrecorded_failures()
RETURNS TABLE (pipeline_id bigint, run_id bigint, failed_at timestamptz,
               sqlstate text, error text)
AS 'MODULE_PATHNAME', 'etl_unrecorded_failures'
LANGUAGE C STABLE ROWS 10;
COMMENT ON FUNCTION etl_internal.etl_unrecorded_failures() IS
    'failed runs whose record no background worker could write yet: kept in files of the data directory until the next run of the pipeline records them (error shown to those who may read the runs)';

CREATE FUNCTION etl_internal.etl_schedules()
RETURNS TABLE (pipeline_id bigint, schedule text, elsewhere text)
AS 'MODULE_PATHNAME', 'etl_schedules'
LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION etl_internal.etl_schedules() IS
    'for every pipeline with a pg_cron job, in one query: the schedule of its active job in this database (etl.status.schedule), and where it runs when that is another host, port or database than this server''s (etl.status.schedule_elsewhere); no rows without pg_cron and outside the database named by cron.database_name';

-- One row per pipeline, read from etl.run_totals (its last success and
-- failure, its failures in a row) rather than from the history: its cost
-- grows with the number of pipelines, not with the runs recorded (JIT
-- compilation, which the planner chooses by estimated cost, stays out of
-- it).  The lag is read per row (fenced: see etl_lag); the schedules in
-- one query.
CREATE VIEW etl.status AS
WITH unrecorded AS MATERIALIZED (
    SELECT * FROM etl_internal.etl_unrecorded_failures()
)
SELECT p.name AS pipeline,
       p.mode,
       p.load,
       p.watermark,
       etl_internal.etl_lag(p.name) AS lag,
       CASE WHEN u.last_run_id OPERATOR(pg_catalog.>)
                 GREATEST(s.last_run_id, f.last_run_id, 0)
              OR f.last_run_id OPERATOR(pg_catalog.>) COALESCE(s.last_run_id, 0)
            THEN 'failed'
            WHEN s.last_run_id IS NOT NULL THEN 'succeeded' END AS last_status,
       -- the error may quote data: only for those who may read the runs
       CASE WHEN NOT pg_catalog.pg_has_role(p.owner, 'USAGE') THEN NULL
            WHEN u.last_run_id OPERATOR(pg_catalog.>)
                 GREATEST(s.last_run_id, f.last_run_id, 0)
            THEN u.last_error
            WHEN f.last_run_id OPERATOR(pg_catalog.>) COALESCE(s.last_run_id, 0)
            THEN (SELECT r.error FROM etl.runs r
                   WHERE r.run_id OPERATOR(pg_catalog.=) f.last_run_id) END
           AS last_error,
       s.last_finished_at AS last_success_at,
       CASE WHEN f.streak_after OPERATOR(pg_catalog.=) COALESCE(s.last_run_id, 0)
            THEN f.streak ELSE 0 END
           OPERATOR(pg_catalog.+) u.since_success AS consecutive_failures,
       (SELECT pg_catalog.count(*)
          FROM etl.dead_letters d
         WHERE d.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
           AND d.status OPERATOR(pg_catalog.=) 'pending'
       ) AS pending_dead_letters,
       sch.schedule,
       sch.elsewhere AS schedule_elsewhere,
       u.n AS unrecorded_failures
  FROM etl.pipelines p
  LEFT JOIN etl.run_totals s
         ON s.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
        AND s.status OPERATOR(pg_catalog.=) 'succeeded'
  LEFT JOIN etl.run_totals f
         ON f.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
        AND f.status OPERATOR(pg_catalog.=) 'failed'
  LEFT JOIN etl_internal.etl_schedules() sch
         ON sch.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
  CROSS JOIN LATERAL (
        SELECT pg_catalog.count(*) AS n,
               pg_catalog.count(*) FILTER (
                   WHERE x.run_id OPERATOR(pg_catalog.>) COALESCE(s.last_run_id, 0))
                   AS since_success,
               pg_catalog.max(x.run_id) AS last_run_id,
               (pg_catalog.array_agg(x.error ORDER BY x.run_id DESC))[1] AS last_error
          FROM unrecorded x
         WHERE x.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id) u;
COMMENT ON VIEW etl.status IS 'one row per pipeline: watermark, lag, last outcome, failures, dead letters, schedule, failures whose record waits to be written';
GRANT SELECT ON etl.status TO PUBLIC;

-- Metrics ---------------------------------------------------------------------

CREATE FUNCTION etl_metric_rows()
RETURNS TABLE (metric text, type text, help text, labels jsonb, value double precision)
AS 'MODULE_PATHNAME', 'etl_metric_rows'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_metric_rows() IS
    'the samples of etl_metrics(), one row each (labels as jsonb; histogram rows carry .series)';

CREATE FUNCTION etl_metrics(format text DEFAULT 'prometheus')
RETURNS text
AS 'MODULE_PATHNAME', 'etl_metrics'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_metrics(text) IS
    'metrics of every pipeline in the Prometheus text exposition format 0.0.4, or as JSON';

