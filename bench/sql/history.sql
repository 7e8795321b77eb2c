-- history.sql: the history and monitoring cases (no cliff as history
-- grows).  A history written straight into the catalogs as a superuser:
-- runs with the trigger that keeps etl.run_totals switched off, then etl.run_totals
-- rebuilt from them in one statement (what the trigger would have written,
-- exactly), so that a million runs take seconds to write rather than
-- hours.

-- name: history_tables
-- A small source and two targets: one pipeline with a long history, one
-- fresh, both over the same source.
CREATE TABLE bench.hist_src (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL)
    WITH (autovacuum_enabled = off);
CREATE INDEX ON bench.hist_src (updated_at);
INSERT INTO bench.hist_src
SELECT g, 'v' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 1000) AS g;
CREATE TABLE bench.hist_big (id bigint PRIMARY KEY, v text, updated_at timestamptz)
    WITH (autovacuum_enabled = off);
CREATE TABLE bench.hist_fresh (id bigint PRIMARY KEY, v text, updated_at timestamptz)
    WITH (autovacuum_enabled = off);
SELECT etl_create_pipeline(name => 'bench_hist_big', source => 'bench.hist_src',
                           target => 'bench.hist_big', mode => 'timestamp',
                           watermark_column => 'updated_at');
SELECT etl_create_pipeline(name => 'bench_hist_fresh', source => 'bench.hist_src',
                           target => 'bench.hist_fresh', mode => 'timestamp',
                           watermark_column => 'updated_at');

-- name: history_batches
-- %(n)s batch rows of pipeline %(name)s: completed, 1 in 20 failed, as
-- catch-up and backfill steps leave them.
INSERT INTO etl.batches (run_id, pipeline_id, pipeline, kind, range_from, range_to,
                         status, rows, created_at, updated_at)
SELECT NULL, p.pipeline_id, p.name, 'catch_up', g::text, (g + 1)::text,
       CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'completed' END, 100,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute',
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute'
  FROM etl.pipelines p, generate_series(1, %(n)s) AS g
 WHERE p.name = %(name)s;

-- name: triggers_off
ALTER TABLE etl.runs DISABLE TRIGGER runs_add_totals;

-- name: triggers_on
ALTER TABLE etl.runs ENABLE TRIGGER runs_add_totals;

-- name: history_runs
-- %(n)s runs of the %(pipelines)s pipelines whose name is LIKE %(pattern)s,
-- spread over them in turn, in time order: 93 in 100 succeeded, 5 failed, 2 skipped;
-- durations from 1 ms to about 2 minutes (log-uniform).
SELECT setseed(0.14);
INSERT INTO etl.runs (pipeline_id, pipeline, status, rows_extracted, rows_inserted,
                      rows_updated, rows_unchanged, started_at, finished_at, duration,
                      error, sqlstate, error_class, run_by, triggered_by, extract_ms, load_ms)
SELECT p.pipeline_id, p.name, r.status,
       CASE WHEN r.status = 'skipped' THEN 0 ELSE r.n END,
       CASE WHEN r.status = 'succeeded' THEN r.n / 3 ELSE 0 END,
       CASE WHEN r.status = 'succeeded' THEN r.n / 3 ELSE 0 END,
       CASE WHEN r.status = 'succeeded' THEN r.n - 2 * (r.n / 3) ELSE 0 END,
       r.started_at, r.started_at + r.duration, r.duration,
       CASE WHEN r.status = 'failed' THEN 'canceling statement due to lock timeout' END,
       CASE WHEN r.status = 'failed' THEN '55P03' END,
       CASE WHEN r.status = 'failed' THEN 'transient' END,
       'postgres'::regrole, 'schedule',
       extract(epoch FROM r.duration) * 300, extract(epoch FROM r.duration) * 600
  FROM (SELECT i,
               CASE WHEN u < 0.93 THEN 'succeeded' WHEN u < 0.98 THEN 'failed'
                    ELSE 'skipped' END AS status,
               floor(random() * 10000)::bigint AS n,
               timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute' AS started_at,
               make_interval(secs => 0.001 * power(120000, random())) AS duration
          FROM (SELECT i, random() AS u FROM generate_series(0, %(n)s - 1) AS i OFFSET 0) AS g) AS r
  JOIN (SELECT pipeline_id, name, row_number() OVER (ORDER BY pipeline_id) - 1 AS k
          FROM etl.pipelines WHERE name LIKE %(pattern)s) AS p
    ON p.k = r.i %% %(pipelines)s;

-- name: rebuild_totals
-- etl.run_totals of the pipelines whose name is LIKE %(pattern)s, from
-- their runs, as the trigger keeps it: per outcome the count, seconds,
-- cumulative buckets (a run counts in every bucket whose bound it does not
-- exceed), row counts and last run; for failures the failures in a row
-- after the last success.
DELETE FROM etl.run_totals
 WHERE pipeline_id IN (SELECT pipeline_id FROM etl.pipelines WHERE name LIKE %(pattern)s);
WITH b AS (
    SELECT etl_internal.etl_duration_buckets() AS bounds
), x AS (
    SELECT r.pipeline_id, r.status, r.run_id, r.finished_at,
           COALESCE(EXTRACT(epoch FROM r.duration)::double precision, 0) AS secs,
           r.rows_extracted, r.rows_inserted, r.rows_updated, r.rows_deleted,
           r.rows_unchanged, r.rows_rejected
      FROM etl.runs r JOIN etl.pipelines p USING (pipeline_id)
     WHERE p.name LIKE %(pattern)s AND r.status IN ('succeeded', 'failed')
), firsts AS (
    -- the first bucket each run counts in (cardinality + 1: none):
    -- width_bucket counts the bounds at or below secs
    SELECT x.*, CASE WHEN w.n > 0 AND b.bounds[w.n] = x.secs THEN w.n ELSE w.n + 1 END
                    AS first_bucket
      FROM x, b, LATERAL (SELECT width_bucket(x.secs, b.bounds) AS n) AS w
), per_bucket AS (
    SELECT pipeline_id, status, first_bucket, count(*) AS n
      FROM firsts GROUP BY 1, 2, 3
), grid AS (
    SELECT k.pipeline_id, k.status, u.i
      FROM (SELECT DISTINCT pipeline_id, status FROM x) AS k,
           b, unnest(b.bounds) WITH ORDINALITY AS u(bound, i)
), cumulative AS (
    SELECT c.pipeline_id, c.status, array_agg(c.n::bigint ORDER BY c.i) AS buckets
      FROM (SELECT g.pipeline_id, g.status, g.i,
                   sum(COALESCE(pb.n, 0)) OVER (PARTITION BY g.pipeline_id, g.status
                                                ORDER BY g.i) AS n
              FROM grid g
              LEFT JOIN per_bucket pb
                     ON pb.pipeline_id = g.pipeline_id AND pb.status = g.status
                    AND pb.first_bucket = g.i) AS c
     GROUP BY c.pipeline_id, c.status
), success AS (
    SELECT pipeline_id, COALESCE(max(run_id) FILTER (WHERE status = 'succeeded'), 0) AS last
      FROM x GROUP BY pipeline_id
)
INSERT INTO etl.run_totals
SELECT x.pipeline_id, x.status, count(*), sum(x.secs), c.buckets,
       sum(x.rows_extracted), sum(x.rows_inserted), sum(x.rows_updated), sum(x.rows_deleted),
       sum(x.rows_unchanged), sum(x.rows_rejected), max(x.run_id),
       (array_agg(x.secs ORDER BY x.run_id DESC))[1],
       (array_agg(x.finished_at ORDER BY x.run_id DESC))[1],
       CASE WHEN x.status = 'failed' THEN count(*) FILTER (WHERE x.run_id > s.last) ELSE 0 END,
       CASE WHEN x.status = 'failed' THEN s.last ELSE 0 END
  FROM x JOIN cumulative c USING (pipeline_id, status) JOIN success s USING (pipeline_id)
 GROUP BY x.pipeline_id, x.status, c.buckets, s.last;

-- name: analyze
VACUUM ANALYZE etl.pipelines, etl.runs, etl.run_totals, etl.batches, etl.checks,
               etl.check_totals, etl.dead_letters;

-- name: history_drop
SELECT etl_drop_pipeline('bench_hist_big'), etl_drop_pipeline('bench_hist_fresh');
DROP TABLE bench.hist_src, bench.hist_big, bench.hist_fresh;

-- name: monitoring_tables
-- The monitoring case's shared source (its watermark column indexed: the
-- lag reads its newest value) and target.
CREATE TABLE bench.mon_src (id bigint PRIMARY KEY, v text, updated_at timestamptz)
    WITH (autovacuum_enabled = off);
CREATE INDEX ON bench.mon_src (updated_at);
INSERT INTO bench.mon_src
SELECT g, 'v' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 1000) AS g;
CREATE TABLE bench.mon_tgt (id bigint PRIMARY KEY, v text, updated_at timestamptz);

-- name: monitoring_pipelines
-- Pipelines bench_mon_0001 .. bench_mon_%(n)s over the shared source, each
-- with a watermark (its lag is shown) and a check.
SELECT count(etl_create_pipeline(name => 'bench_mon_' || lpad(g::text, 4, '0'),
                                 source => 'bench.mon_src', target => 'bench.mon_tgt',
                                 mode => 'timestamp', watermark_column => 'updated_at'))
  FROM generate_series(1, %(n)s) AS g;
SELECT count(etl_reset_watermark(name, '2024-01-01 12:00:00+00'))
  FROM etl.pipelines WHERE name LIKE 'bench\_mon\_%%';
SELECT count(etl_add_check(name, 'not_null', column_name => 'v'))
  FROM etl.pipelines WHERE name LIKE 'bench\_mon\_%%';

-- name: monitoring_sources
-- A source of its own for each of them (a copy of the shared one, indexed
-- alike): the lag then reads one source per pipeline.
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT name FROM etl.pipelines WHERE name LIKE 'bench\_mon\_%' ORDER BY name LOOP
        EXECUTE format('CREATE TABLE bench.%I (LIKE bench.mon_src INCLUDING INDEXES)'
                       ' WITH (autovacuum_enabled = off)', 'src_' || p.name);
        EXECUTE format('INSERT INTO bench.%I SELECT * FROM bench.mon_src', 'src_' || p.name);
        PERFORM etl_alter_pipeline(p.name, source => format('bench.%I', 'src_' || p.name));
    END LOOP;
END
$$;

-- name: monitoring_sources_drop
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT name FROM etl.pipelines WHERE name LIKE 'bench\_mon\_%' LOOP
        PERFORM etl_alter_pipeline(p.name, source => 'bench.mon_src');
        EXECUTE format('DROP TABLE bench.%I', 'src_' || p.name);
    END LOOP;
END
$$;

-- name: monitoring_drop
SELECT count(etl_drop_pipeline(name)) FROM etl.pipelines WHERE name LIKE 'bench\_mon\_%';
DROP TABLE bench.mon_src, bench.mon_tgt;
