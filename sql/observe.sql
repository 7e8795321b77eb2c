-- observe: metrics, status and alerts, column lineage, OpenLineage

CREATE SCHEMA obs_src;
CREATE SCHEMA obs_dw;
CREATE TABLE obs_src.orders (order_id int PRIMARY KEY, customer_id int, total numeric,
                             status text, note text, seq int NOT NULL);
CREATE TABLE obs_dw.customers (customer_id int PRIMARY KEY, segment text, region text);
INSERT INTO obs_dw.customers VALUES (1, 'gold', 'eu'), (2, 'silver', 'us');
INSERT INTO obs_src.orders
SELECT g, 1 + g % 2, g * 10, CASE WHEN g % 3 = 0 THEN 'Shipped' ELSE 'New' END, NULL, g
  FROM generate_series(1, 10) g;
CREATE TABLE obs_dw.fact (order_id int PRIMARY KEY, customer_id int, total_amount numeric,
                          status text, segment text, is_big boolean);
CREATE TABLE obs_dw.by_customer (customer_id int PRIMARY KEY, orders bigint, total numeric);
CREATE TABLE obs_dw.copy (LIKE obs_src.orders);
ALTER TABLE obs_dw.copy ADD PRIMARY KEY (order_id);
CREATE TABLE obs_dw.star (LIKE obs_src.orders);
ALTER TABLE obs_dw.star ADD PRIMARY KEY (order_id);

-- a transform with plain columns, expressions and a dimension join
SELECT etl_create_pipeline('obs_fact', 'obs_src.orders', 'obs_dw.fact', mode => 'serial',
    watermark_column => 'seq', max_attempts => 1,
    transform => $$SELECT d.order_id, d.customer_id, d.total * 1.0 AS total_amount,
                          lower(d.status) AS status, c.segment, d.total > 50 AS is_big
                     FROM etl_delta d JOIN obs_dw.customers c USING (customer_id)$$) > 0 AS created;
-- an aggregate over the first pipeline's target (lineage across pipelines)
SELECT etl_create_pipeline('obs_agg', 'obs_dw.fact', 'obs_dw.by_customer', mode => 'serial',
    watermark_column => 'order_id',
    transform => $$SELECT customer_id, count(*) AS orders, sum(total_amount) AS total
                     FROM etl_delta GROUP BY customer_id$$) > 0 AS created;
-- the default transform, and SELECT *
SELECT etl_create_pipeline('obs_copy', 'obs_src.orders', 'obs_dw.copy', mode => 'serial',
    watermark_column => 'seq') > 0 AS created;
SELECT etl_create_pipeline('obs_star', 'obs_src.orders', 'obs_dw.star', mode => 'serial',
    watermark_column => 'seq',
    transform => 'SELECT * FROM etl_delta') > 0 AS created;

-- alert_after_failures: 1 by default, at least 1, changed by etl_alter_pipeline
SELECT name, alert_after_failures FROM etl.pipelines WHERE name LIKE 'obs%' ORDER BY name;
SELECT etl_create_pipeline('obs_bad', 'obs_src.orders', 'obs_dw.copy', mode => 'serial',
    watermark_column => 'seq', alert_after_failures => 0);
SELECT etl_alter_pipeline('obs_fact', alert_after_failures => 2) > 0 AS altered;
SELECT alert_after_failures FROM etl.pipelines WHERE name = 'obs_fact';

-- column lineage from the query tree
SELECT pipeline, target_column, source_columns, transformation
  FROM etl_lineage() WHERE pipeline LIKE 'obs%' ORDER BY pipeline, target_column;
SELECT target_column, input_fields FROM etl_internal.etl_lineage_columns('obs_fact') ORDER BY 1;
SELECT * FROM etl_internal.etl_lineage_relations('obs_fact');
SELECT * FROM etl_internal.etl_lineage_relations('obs_copy');
-- filtered by a relation the pipelines read or write
SELECT DISTINCT source, pipeline, target FROM etl_lineage('obs_dw.by_customer') ORDER BY 2;
SELECT DISTINCT source, pipeline, target FROM etl_lineage('obs_src.orders') ORDER BY 2;
-- upstream, recursively across pipelines
SELECT * FROM etl_lineage_upstream('obs_dw.by_customer');
SELECT * FROM etl_lineage_upstream('obs_src.orders');
-- subqueries, CTEs and scalar sublinks are followed to the base columns
SELECT etl_alter_pipeline('obs_star', transform =>
    $$WITH x AS (SELECT * FROM etl_delta)
      SELECT s.order_id, s.customer_id, s.total, s.status,
             (SELECT c.region FROM obs_dw.customers c WHERE c.customer_id = s.customer_id) AS note,
             s.seq
        FROM (SELECT * FROM x) s$$) > 0 AS altered;
SELECT target_column, source_columns, transformation FROM etl_internal.etl_lineage_columns('obs_star') ORDER BY 1;
SELECT etl_alter_pipeline('obs_star', transform => 'SELECT * FROM etl_delta') > 0 AS altered;
-- the lineage graph in Graphviz DOT (only these pipelines' edges)
SELECT line FROM regexp_split_to_table(etl_lineage_dot(), E'\n') AS line
 WHERE line NOT LIKE '%->%' OR line LIKE '%obs\_%';
-- an unknown pipeline
SELECT * FROM etl_internal.etl_lineage_columns('obs_nope');

-- runs to measure: obs_fact three times (the last with nothing new), obs_copy
-- once, then obs_copy fails twice on a critical check
SELECT status, rows_extracted, rows_inserted FROM etl_run('obs_fact');
INSERT INTO obs_src.orders VALUES (11, 2, 500, 'New', NULL, 11);
SELECT status, rows_extracted, rows_inserted FROM etl_run('obs_fact');
SELECT status, rows_extracted, rows_inserted FROM etl_run('obs_fact');
SELECT status, rows_extracted, rows_inserted FROM etl_run('obs_copy');
SELECT etl_add_check('obs_copy', 'not_null', 'note', name => 'note_present');
SELECT etl_add_check('obs_fact', 'accepted_values', 'status', '{"values": ["new"]}',
                     severity => 'warning', name => 'only_new');
INSERT INTO obs_src.orders VALUES (12, 1, 5, 'Shipped', NULL, 12);
SELECT code, message FROM regress.run_failing('obs_copy');
SELECT code, message FROM regress.run_failing('obs_copy');
SELECT status, rows_extracted, rows_inserted FROM etl_run('obs_fact');

-- status: consecutive failures, lag, last error
SELECT pipeline, last_status, consecutive_failures, lag, last_error
  FROM etl.status WHERE pipeline IN ('obs_fact', 'obs_copy') ORDER BY 1;

-- metrics: the samples, timings masked
SELECT metric, type, labels,
       CASE WHEN metric IN ('etl_last_run_duration_seconds', 'etl_last_success_timestamp_seconds')
                 OR labels->>'.series' = '_sum'
                 OR (labels->>'.series' = '_bucket' AND labels->>'le' <> '+Inf')
            THEN NULL ELSE value END AS value
  FROM etl_metric_rows()
 WHERE labels->>'pipeline' IN ('obs_fact', 'obs_copy')
   AND (labels->>'.series' IS DISTINCT FROM '_bucket' OR labels->>'le' IN ('0.005', '600', '+Inf'))
 ORDER BY metric, labels::text;
-- every histogram is cumulative and ends with +Inf = _count
SELECT pipeline, bool_and(v >= COALESCE(prev, 0)) AS cumulative, count(*) AS buckets,
       max(v) FILTER (WHERE le = '+Inf') = max(n) AS inf_is_count
  FROM (SELECT b.labels->>'pipeline' AS pipeline, b.labels->>'le' AS le, b.value AS v,
               lag(b.value) OVER (PARTITION BY b.labels->>'pipeline'
                                  ORDER BY (b.labels->>'le')::float8) AS prev,
               (SELECT c.value FROM etl_metric_rows() c
                 WHERE c.metric = b.metric AND c.labels->>'.series' = '_count'
                   AND c.labels->>'pipeline' = b.labels->>'pipeline') AS n
          FROM etl_metric_rows() b
         WHERE b.metric = 'etl_run_duration_seconds' AND b.labels->>'.series' = '_bucket'
           AND b.labels->>'pipeline' LIKE 'obs%') h
 GROUP BY 1 ORDER BY 1;

-- the Prometheus text: HELP and TYPE before each family, timings masked
SELECT regexp_replace(line, '^((etl_last_run_duration_seconds|etl_last_success_timestamp_seconds|etl_run_duration_seconds_sum|etl_run_duration_seconds_bucket)\{[^}]*\}) .*$', '\1 <t>') AS line
  FROM regexp_split_to_table(etl_metrics(), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE line LIKE '#%' OR line LIKE '%pipeline="obs\_fact"%'
 ORDER BY n;
-- label values are escaped: \ as \\, " as \"
SELECT etl_create_pipeline(E'obs_we"ird\\name', 'obs_src.orders', 'obs_dw.copy',
    mode => 'serial', watermark_column => 'seq') > 0 AS created;
SELECT line FROM regexp_split_to_table(etl_metrics(), E'\n') AS line
 WHERE line LIKE 'etl_dead_letters_pending%obs\_we%';
SELECT etl_drop_pipeline(E'obs_we"ird\\name');
-- JSON: the same families
SELECT m->>'name' AS name, m->>'type' AS type
  FROM jsonb_array_elements(etl_metrics('json')::jsonb->'metrics') m ORDER BY 1;
SELECT etl_metrics('xml');

-- counters only grow: deleting old runs does not lower them
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_runs_total' AND labels = '{"pipeline": "obs_fact", "status": "succeeded"}';
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_check_failures_total' AND labels = '{"check": "only_new", "pipeline": "obs_fact"}';
CALL regress.delete_runs('obs_fact');
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_runs_total' AND labels = '{"pipeline": "obs_fact", "status": "succeeded"}';
SELECT count(*) AS check_results_left FROM etl.check_results WHERE pipeline = 'obs_fact';
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_check_failures_total' AND labels = '{"check": "only_new", "pipeline": "obs_fact"}';

-- OpenLineage RunEvents (the namespace fixed so the output is stable)
SET etl.lineage_namespace = 'postgres://db.example:5432';
SELECT etl_internal.etl_lineage_namespace();
SELECT max(run_id) AS ok_run FROM etl.runs WHERE pipeline = 'obs_copy' AND status = 'succeeded' \gset
SELECT max(run_id) AS failed_run FROM etl.runs WHERE pipeline = 'obs_copy' AND status = 'failed' \gset
SELECT e->>'eventType' AS type, e->'run'->>'runId' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid,
       e->>'eventTime' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS rfc3339,
       replace((e->'job')::text, current_database(), '<db>')::jsonb AS job,
       e->>'schemaURL' AS schema_url
  FROM etl_openlineage(:ok_run) e;
SELECT jsonb_pretty(replace((e->'inputs')::text, current_database(), '<db>')::jsonb)
  FROM etl_openlineage(:ok_run) e;
SELECT jsonb_pretty(e->'outputs'->0->'outputFacets') FROM etl_openlineage(:ok_run) e;
SELECT k AS column, v->'inputFields'->0->>'field' AS field,
       v->'inputFields'->0->'transformations'->0->>'type' AS type
  FROM etl_openlineage(:ok_run) e,
       jsonb_each(e->'outputs'->0->'facets'->'columnLineage'->'fields') AS f(k, v)
 ORDER BY 1;
-- a failed run: FAIL with its error; the check's null count and assertion
SELECT e->>'eventType' AS type, jsonb_pretty(e->'run'->'facets') AS run_facets,
       jsonb_pretty(e->'inputs'->0->'inputFacets') AS input_facets
  FROM etl_openlineage(:failed_run) e;
-- START: no statistics
SELECT e->>'eventType' AS type, e->'outputs'->0 ? 'outputFacets' AS has_stats,
       (e->>'eventTime')::timestamptz = r.started_at AS at_start
  FROM etl_openlineage(:ok_run, 'start') e, etl.runs r WHERE r.run_id = :ok_run;
-- a run id is stable; different runs differ
SELECT (SELECT etl_openlineage(:ok_run)->'run') = (SELECT etl_openlineage(:ok_run)->'run') AS stable,
       (SELECT etl_openlineage(:ok_run)->'run'->>'runId') <> (SELECT etl_openlineage(:failed_run)->'run'->>'runId') AS distinct;
SELECT etl_openlineage(-1);
SELECT etl_openlineage(:ok_run, 'DONE');
RESET etl.lineage_namespace;
SELECT etl_internal.etl_lineage_namespace() LIKE 'postgres://%:%' AS default_namespace;
