-- schema.sql: the workload of make bench.  Named statements ("-- name: x"),
-- read by bench/bench.py; {{source}}, {{target}} ... are table names it
-- fills in, %(x)s are values passed as parameters.

-- name: setup
CREATE EXTENSION etl_ext;
CREATE SCHEMA src;
CREATE SCHEMA dw;
CREATE SCHEMA bench;

-- name: source_table
-- The source: orders as an OLTP system keeps them.  Autovacuum is off for
-- every bench table: the bench vacuums and analyzes them itself, outside the
-- timed statements, so that no background vacuum runs during a measurement.
CREATE TABLE {{source}} (
    order_id    bigint PRIMARY KEY,
    customer_id bigint,
    status      text,
    currency    text,
    total       numeric(12,2),
    created_at  timestamptz,
    updated_at  timestamptz
) WITH (autovacuum_enabled = off);

-- name: source_rows
-- %(rows)s orders from a fixed seed, so that every run loads the same data:
--   status      pending/completed/cancelled/refunded in mixed case
--   currency    usd/eur/gbp in lower case, 1 in 7 NULL
--   total       1.00 to 5000.00
--   created_at  spread over 2024; updated_at up to 10 days later
-- setseed() fixes the sequence of random() in this session; the inner query
-- draws each row's random numbers, in order, once.
SELECT setseed(0.2024);
INSERT INTO {{source}}
SELECT g,
       1 + floor(r_customer * 100000)::bigint,
       (ARRAY['pending', 'Pending', 'PENDING', 'completed', 'Completed', 'COMPLETED',
              'cancelled', 'Cancelled', 'CANCELLED', 'refunded', 'Refunded', 'REFUNDED'])
           [1 + floor(r_status * 12)::int],
       CASE WHEN r_null < 1.0 / 7 THEN NULL
            ELSE (ARRAY['usd', 'eur', 'gbp'])[1 + floor(r_currency * 3)::int] END,
       round((1 + r_total * 4999)::numeric, 2),
       timestamptz '2024-01-01 00:00:00+00' + r_created * interval '355 days',
       timestamptz '2024-01-01 00:00:00+00' + r_created * interval '355 days'
           + r_updated * interval '10 days'
  FROM (SELECT g, random() AS r_customer, random() AS r_status, random() AS r_null,
               random() AS r_currency, random() AS r_total, random() AS r_created,
               random() AS r_updated
          FROM generate_series(1, %(rows)s) AS g
        OFFSET 0) AS r;

-- name: source_index
CREATE INDEX ON {{source}} (updated_at);

-- name: target_table
-- The fact table etl_ext loads: the transform's columns, key order_id, and
-- the row hash that etl_ext fills and compares.
CREATE TABLE {{target}} (
    order_id      bigint PRIMARY KEY,
    customer_id   bigint,
    order_date    date,
    total_amount  numeric(12,2),
    currency      text,
    status        text,
    order_month   text,
    is_high_value boolean,
    _etl_row_hash bytea
) WITH (autovacuum_enabled = off);

-- name: client_tables
-- What the client-side pipeline loads: the same columns, with its SHA-256
-- key hash (hex text) in place of etl_ext's row hash, and its extraction
-- state (high watermark per pipeline).
CREATE TABLE {{target}} (
    order_id      bigint PRIMARY KEY,
    customer_id   bigint,
    order_date    date,
    total_amount  numeric(12,2),
    currency      text,
    status        text,
    order_month   text,
    is_high_value boolean,
    _record_hash  text
) WITH (autovacuum_enabled = off);
CREATE TABLE {{state}} (
    pipeline       text PRIMARY KEY,
    high_watermark timestamptz NOT NULL,
    rows_extracted bigint NOT NULL,
    last_run       timestamptz NOT NULL
);

-- name: pipeline
SELECT etl_create_pipeline(
    name => %(name)s, source => %(source)s, target => %(target)s,
    mode => 'timestamp', watermark_column => 'updated_at',
    transform => %(transform)s);

-- name: drop_pipeline
SELECT etl_drop_pipeline(%(name)s);
