-- demo/demo.sql — the main job of etl_ext end to end (run by make demo)
\set ON_ERROR_STOP 1
\set QUIET 1
\pset footer off
\pset null '(null)'
SET client_min_messages = warning;

\echo
\echo '== 1. A source: 100,000 orders from an application database'
\echo '   (mixed-case statuses, lowercase currencies, some missing)'
CREATE EXTENSION etl_ext;
CREATE SCHEMA src;
CREATE SCHEMA dw;
CREATE TABLE src.orders (
    order_id    bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status      text NOT NULL,
    currency    text,
    total       numeric(12,2) NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON src.orders (updated_at);
SELECT setseed(0.42) \gset
INSERT INTO src.orders
SELECT g, 1 + (random() * 4999)::int,
       (ARRAY['pending', 'Completed', 'CANCELLED', 'refunded'])[1 + (random() * 3)::int],
       CASE WHEN random() < 1.0 / 7 THEN NULL
            ELSE (ARRAY['usd', 'eur', 'gbp'])[1 + (random() * 2)::int] END,
       round((1 + random() * 4999)::numeric, 2),
       t, t + random() * interval '2 days'
  FROM generate_series(1, 100000) g,
       LATERAL (SELECT now() - interval '365 days' + g * interval '5 minutes' - interval '3 days' AS t) ts;
SELECT order_id, customer_id, status, currency, total, created_at::date AS created
  FROM src.orders ORDER BY order_id LIMIT 5;

\echo
\echo '== 2. A warehouse table, with the audit columns etl_ext fills'
CREATE TABLE dw.fact_orders (
    order_id       bigint PRIMARY KEY,
    customer_id    bigint NOT NULL,
    order_date     date NOT NULL,
    total_amount   numeric(12,2) NOT NULL,
    currency       char(3) NOT NULL,
    status         text NOT NULL,
    order_month    text NOT NULL,
    is_high_value  boolean NOT NULL,
    _etl_row_hash  bytea,
    _etl_run_id    bigint,
    _etl_loaded_at timestamptz
);
\echo '   dw.fact_orders created'

\echo
\echo '== 3. The pipeline: incremental by updated_at, the orders transform, merge on the key'
\set ECHO queries
SELECT etl_create_pipeline(
    name             => 'orders',
    source           => 'src.orders',
    target           => 'dw.fact_orders',
    mode             => 'timestamp',
    watermark_column => 'updated_at',
    transform        => $$
        SELECT order_id, customer_id,
               created_at::date                   AS order_date,
               total::numeric(12,2)               AS total_amount,
               upper(coalesce(currency, 'usd'))   AS currency,
               lower(status)                      AS status,
               to_char(created_at, 'YYYY-MM')     AS order_month,
               total > 1000                       AS is_high_value
          FROM etl_delta$$) AS pipeline_id;
\set ECHO none

\echo
\echo '== 4. First load: SELECT * FROM etl_run(''orders'')'
SELECT status, rows_extracted AS extracted, rows_inserted AS inserted,
       rows_updated AS updated, rows_unchanged AS unchanged,
       watermark_to::timestamptz(0) AS watermark, duration
  FROM etl_run('orders');
SELECT order_id, customer_id, order_date, total_amount, currency, status,
       order_month, is_high_value
  FROM dw.fact_orders ORDER BY order_id LIMIT 5;

\echo
\echo '== 5. Running again finds nothing new (and writes nothing)'
SELECT status, rows_extracted AS extracted, rows_inserted AS inserted,
       rows_updated AS updated, duration
  FROM etl_run('orders');

\echo
\echo '== 6. The application changes 500 orders and takes 200 new ones'
UPDATE src.orders SET status = 'refunded', updated_at = now()
 WHERE order_id IN (SELECT order_id FROM src.orders ORDER BY order_id LIMIT 500 OFFSET 1000);
INSERT INTO src.orders (order_id, customer_id, status, currency, total, created_at)
SELECT 100000 + g, g, 'pending', 'eur', 99.50 + g, now() FROM generate_series(1, 200) g;
\echo '   500 updated, 200 inserted'

\echo
\echo '== 7. The increment loads exactly those rows'
\echo '   (changed orders that were already refunded keep their row hash: counted unchanged, not rewritten)'
SELECT status, rows_extracted AS extracted, rows_inserted AS inserted,
       rows_updated AS updated, rows_unchanged AS unchanged, duration
  FROM etl_run('orders');
SELECT count(*) AS target_rows,
       count(*) FILTER (WHERE status = 'refunded') AS refunded,
       count(DISTINCT _etl_run_id) AS runs_seen
  FROM dw.fact_orders;

\echo
\echo '== 8. Reprocessing everything (watermark reset) is idempotent: unchanged rows are not rewritten'
SELECT etl_reset_watermark('orders') IS NULL AS watermark_reset;
SELECT status, rows_extracted AS extracted, rows_inserted AS inserted,
       rows_updated AS updated, rows_unchanged AS unchanged, duration
  FROM etl_run('orders');

\echo
\echo '== 9. The target equals the transformed source, row for row'
SELECT count(*) AS differences FROM (
    (SELECT order_id, upper(coalesce(currency, 'usd'))::char(3) AS currency, lower(status) AS status
       FROM src.orders
     EXCEPT SELECT order_id, currency, status FROM dw.fact_orders)
    UNION ALL
    (SELECT order_id, currency, status FROM dw.fact_orders
     EXCEPT SELECT order_id, upper(coalesce(currency, 'usd'))::char(3), lower(status)
       FROM src.orders)) d;

\echo
\echo '== 10. etl.status'
\x on
SELECT * FROM etl.status;
\x off

\echo
\echo '== 11. The run log (etl.runs)'
SELECT run_id, status, rows_extracted AS extracted, rows_inserted AS inserted,
       rows_updated AS updated, rows_unchanged AS unchanged,
       round(extract_ms::numeric, 1) AS extract_ms, round(load_ms::numeric, 1) AS load_ms
  FROM etl.runs ORDER BY run_id;

\echo
\echo '== 12. Observing: a second pipeline downstream, then metrics and column lineage'
CREATE TABLE dw.currencies (code char(3) PRIMARY KEY, name text NOT NULL, usd_rate numeric NOT NULL);
INSERT INTO dw.currencies VALUES ('USD', 'US dollar', 1), ('EUR', 'Euro', 1.08), ('GBP', 'Pound sterling', 1.27);
CREATE TABLE dw.orders_usd (
    order_id bigint PRIMARY KEY, order_month text, currency_name text, total_usd numeric(14,2));
SELECT etl_create_pipeline('orders_usd', 'dw.fact_orders', 'dw.orders_usd',
    mode => 'serial', watermark_column => '_etl_run_id',
    transform => $$SELECT f.order_id, f.order_month, c.name AS currency_name,
                          round(f.total_amount * c.usd_rate, 2) AS total_usd
                     FROM etl_delta f JOIN dw.currencies c ON c.code = f.currency$$) AS pipeline_id;
SELECT status, rows_extracted AS extracted, rows_inserted AS inserted FROM etl_run('orders_usd');
\echo '   etl_metrics(), Prometheus text (a few of its lines):'
SELECT line AS metrics FROM regexp_split_to_table(etl_metrics(), E'\n') AS line
 WHERE line ~ '^etl_(runs_total|rows_total\{kind="(extracted|inserted|updated)"|last_run_duration|run_duration_seconds_(count|bucket\{.*le="0.5"))';
\echo '   etl_lineage(): every target column and the source columns it comes from'
SELECT pipeline, target_column, source_columns, transformation FROM etl_lineage()
 WHERE pipeline = 'orders_usd' OR target_column IN ('currency', 'total_amount', 'order_month');
\echo '   etl_lineage_upstream(''dw.orders_usd''): where it comes from, across pipelines'
SELECT * FROM etl_lineage_upstream('dw.orders_usd');

\echo
\echo '== 13. A bad definition is refused with a clear error, and nothing is stored'
\set ON_ERROR_STOP 0
SELECT etl_create_pipeline('broken', 'src.orders', 'dw.fact_orders',
    watermark_column => 'updated_at',
    transform => 'SELECT order_id, totl AS total_amount FROM etl_delta');
\echo '   SQLSTATE' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
SELECT count(*) AS pipelines FROM etl.pipelines;
\echo
