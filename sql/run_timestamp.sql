-- run_timestamp: increments by a timestamp watermark
CREATE SCHEMA ts_src;
CREATE SCHEMA ts_dw;
CREATE TABLE ts_src.orders (
    order_id bigint PRIMARY KEY, customer_id bigint, status text,
    currency text, total numeric(12,2), created_at timestamptz,
    updated_at timestamptz);
INSERT INTO ts_src.orders
SELECT g, g % 7, (ARRAY['Pending', 'COMPLETED', 'cancelled', 'Refunded'])[1 + g % 4],
       CASE WHEN g % 7 = 0 THEN NULL ELSE (ARRAY['usd', 'eur', 'gbp'])[1 + g % 3] END,
       (g * 37) % 5000 + 1,
       '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
       '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 200) g;
CREATE TABLE ts_dw.fact_orders (
    order_id bigint PRIMARY KEY, customer_id bigint, order_date date,
    total_amount numeric(12,2), currency text, status text,
    order_month text, is_high_value boolean,
    _etl_row_hash bytea, _etl_run_id bigint, _etl_loaded_at timestamptz);

-- an orders transform: dates, amounts, currency, status, month, flag
SELECT etl_create_pipeline(
    name => 'ts_orders', source => 'ts_src.orders', target => 'ts_dw.fact_orders',
    mode => 'timestamp', watermark_column => 'updated_at',
    transform => $$
        SELECT order_id, customer_id, (created_at AT TIME ZONE 'UTC')::date AS order_date,
               total::numeric(12,2) AS total_amount,
               upper(coalesce(currency, 'usd')) AS currency,
               lower(status) AS status,
               to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS order_month,
               total > 4000 AS is_high_value
          FROM etl_delta$$) > 0 AS created;

-- what the target must hold: the transform applied to every source row
CREATE VIEW ts_src.expected AS
SELECT order_id, customer_id, (created_at AT TIME ZONE 'UTC')::date AS order_date,
       total::numeric(12,2) AS total_amount, upper(coalesce(currency, 'usd')) AS currency,
       lower(status) AS status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS order_month,
       total > 4000 AS is_high_value
  FROM ts_src.orders;
CREATE VIEW ts_src.diff AS
(SELECT 'missing' AS problem, * FROM ts_src.expected
 EXCEPT SELECT 'missing', order_id, customer_id, order_date, total_amount, currency, status, order_month, is_high_value FROM ts_dw.fact_orders)
UNION ALL
(SELECT 'extra', order_id, customer_id, order_date, total_amount, currency, status, order_month, is_high_value FROM ts_dw.fact_orders
 EXCEPT SELECT 'extra', * FROM ts_src.expected);

-- first load
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted,
       rows_unchanged, rows_rejected, watermark_from, watermark_to, attempts
  FROM etl_run('ts_orders');
SELECT count(*) AS differences FROM ts_src.diff;
SELECT watermark::timestamptz = (SELECT max(updated_at) FROM ts_src.orders) AS watermark_is_max
  FROM etl.pipelines WHERE name = 'ts_orders';
-- audit columns: row hash of the non-key columns, run id, load time
SELECT count(*) FILTER (WHERE f._etl_run_id = r.run_id) AS with_run_id,
       count(*) FILTER (WHERE f._etl_loaded_at = r.started_at) AS with_loaded_at,
       count(*) FILTER (WHERE f._etl_row_hash = etl_row_hash(f.customer_id, f.order_date,
             f.total_amount, f.currency, f.status, f.order_month, f.is_high_value)) AS with_row_hash
  FROM ts_dw.fact_orders f, (SELECT max(run_id) AS run_id, max(started_at) AS started_at
                               FROM etl.runs WHERE pipeline = 'ts_orders') r;

-- nothing new: nothing extracted, nothing written
CREATE TEMP TABLE before_rerun AS SELECT order_id, ctid AS tid, xmin::text AS xid FROM ts_dw.fact_orders;
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged,
       watermark_from = watermark_to AS watermark_kept
  FROM etl_run('ts_orders');
SELECT count(*) AS rewritten_rows
  FROM before_rerun b JOIN ts_dw.fact_orders f USING (order_id)
 WHERE (f.ctid, f.xmin::text) <> (b.tid, b.xid);

-- an increment: 3 changed rows (one changes nothing the transform keeps),
-- 2 new rows
UPDATE ts_src.orders SET status = 'refunded', updated_at = '2024-02-01 00:00:00+00' WHERE order_id IN (1, 2);
UPDATE ts_src.orders SET status = upper(status), updated_at = '2024-02-01 00:00:00+00' WHERE order_id = 3;
INSERT INTO ts_src.orders VALUES
    (201, 1, 'Pending', 'eur', 4500, '2024-02-01 00:00:00+00', '2024-02-01 00:00:00+00'),
    (202, 2, 'Pending', NULL, 10, '2024-02-01 00:00:00+00', '2024-02-01 00:00:00+00');
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, watermark_to
  FROM etl_run('ts_orders');
SELECT count(*) AS differences FROM ts_src.diff;
SELECT count(*) AS rewritten_rows
  FROM before_rerun b JOIN ts_dw.fact_orders f USING (order_id)
 WHERE (f.ctid, f.xmin::text) <> (b.tid, b.xid);

-- a run rolled back leaves target and watermark as they were
UPDATE ts_src.orders SET total = total + 1, updated_at = '2024-02-02 00:00:00+00' WHERE order_id = 10;
BEGIN;
SELECT rows_extracted, rows_updated FROM etl_run('ts_orders');
ROLLBACK;
SELECT total_amount FROM ts_dw.fact_orders WHERE order_id = 10;
SELECT watermark FROM etl.pipelines WHERE name = 'ts_orders';
SELECT rows_extracted, rows_updated FROM etl_run('ts_orders');
SELECT count(*) AS differences FROM ts_src.diff;

-- the run log: one row per run with per-stage times, one batch per range
SELECT run_id > 0 AS has_id, status, rows_extracted, triggered_by,
       run_by::text = current_user AS run_by_caller,
       extract_ms >= 0 AS extract_timed, load_ms >= 0 AS load_timed,
       duration >= '0'::interval AS has_duration
  FROM etl.runs WHERE pipeline = 'ts_orders' ORDER BY run_id;
SELECT kind, range_from, range_to, status, rows
  FROM etl.batches WHERE pipeline = 'ts_orders' ORDER BY batch_id;
SELECT pipeline, mode, load, watermark, lag, last_status, consecutive_failures,
       pending_dead_letters, schedule
  FROM etl.status WHERE pipeline = 'ts_orders';

-- overlap re-reads a window: rows there are unchanged, nothing written
SELECT etl_alter_pipeline('ts_orders', overlap => '1 day') > 0 AS altered;
TRUNCATE before_rerun;
INSERT INTO before_rerun SELECT order_id, ctid, xmin::text FROM ts_dw.fact_orders;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged,
       watermark_from = watermark_to AS watermark_kept
  FROM etl_run('ts_orders');
SELECT count(*) AS rewritten_rows
  FROM before_rerun b JOIN ts_dw.fact_orders f USING (order_id)
 WHERE (f.ctid, f.xmin::text) <> (b.tid, b.xid);
-- a row arriving late with a client timestamp inside the window is loaded
INSERT INTO ts_src.orders VALUES (203, 3, 'Pending', 'usd', 20, '2024-02-01 12:00:00+00', '2024-02-01 12:00:00+00');
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('ts_orders');
SELECT count(*) AS differences FROM ts_src.diff;

-- batch_size takes the oldest rows first and never splits equal timestamps
CREATE TABLE ts_src.events (id int PRIMARY KEY, at timestamp);
CREATE TABLE ts_dw.events (id int PRIMARY KEY, at timestamp);
INSERT INTO ts_src.events VALUES
    (1, '2024-01-01 00:00'), (2, '2024-01-01 00:01'), (3, '2024-01-01 00:02'),
    (4, '2024-01-01 00:02'), (5, '2024-01-01 00:03'), (6, NULL);
SELECT etl_create_pipeline('ts_events', 'ts_src.events', 'ts_dw.events',
                           watermark_column => 'at', batch_size => 3) > 0 AS created;
SELECT rows_extracted, rows_inserted, watermark_from, watermark_to FROM etl_run('ts_events');
SELECT rows_extracted, rows_inserted, watermark_from, watermark_to FROM etl_run('ts_events');
SELECT rows_extracted, rows_inserted, watermark_from, watermark_to FROM etl_run('ts_events');
-- the default transform loads the columns both have; NULL timestamps never load
SELECT * FROM ts_dw.events ORDER BY id;

-- rows stamped in the future wait until their time has come
INSERT INTO ts_src.events VALUES (7, now()::timestamp + interval '1 day');
SELECT rows_extracted FROM etl_run('ts_events');

-- a watermark in the future cannot come from a run: refused with a hint
CALL regress.store_watermark('ts_events', '2999-01-01 00:00:00');
SELECT * FROM regress.run_failing('ts_events') \gx
SELECT etl_reset_watermark('ts_events', '2024-01-01 00:03') IS NOT NULL AS reset;

-- what went away since the definition is named precisely
ALTER TABLE ts_src.events RENAME COLUMN at TO happened_at;
SELECT * FROM regress.run_failing('ts_events') \gx
ALTER TABLE ts_src.events RENAME COLUMN happened_at TO at;
DROP VIEW ts_src.diff;
ALTER TABLE ts_dw.fact_orders DROP COLUMN order_month;
SELECT * FROM regress.run_failing('ts_orders') \gx
DROP TABLE ts_src.events;
SELECT * FROM regress.run_failing('ts_events') \gx

-- a run reads the data as committed after its safe upper bound: in a
-- REPEATABLE READ or SERIALIZABLE transaction it would load rows the
-- caller's snapshot cannot see, so it is refused there (25000), before
-- anything else; READ COMMITTED runs
CREATE TABLE ts_dw.order_status (order_id bigint PRIMARY KEY, status text);
SELECT etl_create_pipeline('ts_iso', 'ts_src.orders', 'ts_dw.order_status',
                           watermark_column => 'updated_at') > 0 AS created;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS source_rows FROM ts_src.orders;
SELECT status FROM etl_run('ts_iso');
\echo sqlstate :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT status FROM etl_run('ts_iso');
\echo sqlstate :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM etl_retry_dead_letters('ts_iso');
\echo sqlstate :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS loaded FROM ts_dw.order_status;
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT status, rows_extracted = (SELECT count(*) FROM ts_src.orders) AS all_rows FROM etl_run('ts_iso');
COMMIT;
SELECT etl_drop_pipeline('ts_iso');

-- bad calls
SELECT * FROM regress.run_failing('no_such_pipeline') \gx
SELECT * FROM etl_run(NULL);
\echo sqlstate :LAST_ERROR_SQLSTATE

SELECT etl_drop_pipeline('ts_orders'), etl_drop_pipeline('ts_events');
SELECT count(*) AS orphan_runs FROM etl.runs WHERE pipeline IN ('ts_orders', 'ts_events');
DROP SCHEMA ts_src, ts_dw CASCADE;
