-- modes.sql: the cases of modes xid and snapshot, a postgres_fdw source and
-- the catch-up: the pipelines they create and the
-- statements they time.  {{source}}, {{target}} ... are names bench.py
-- fills in, %(x)s values passed as parameters.

-- name: xid_source
-- A copy of a source prepared for mode xid before its rows go in:
-- etl_track_changes adds _etl_xid (DEFAULT pg_current_xact_id()), its
-- BEFORE UPDATE trigger and its index; the INSERT then fills _etl_xid
-- without the table rewrite that tracking a filled table costs.
CREATE TABLE {{source}} (LIKE {{original}} INCLUDING ALL) WITH (autovacuum_enabled = off);
SELECT etl_track_changes('{{source}}');
INSERT INTO {{source}} SELECT * FROM {{original}};

-- name: xid_pipeline
SELECT etl_create_pipeline(
    name => %(name)s, source => %(source)s, target => %(target)s,
    mode => 'xid', transform => %(transform)s);

-- name: snapshot_pipeline
SELECT etl_create_pipeline(
    name => %(name)s, source => %(source)s, target => %(target)s,
    mode => 'snapshot', transform => %(transform)s);

-- name: signatures
-- The stored signatures of a pipeline.
SELECT count(*) FROM etl.snapshot_signatures
 WHERE pipeline_id = (SELECT pipeline_id FROM etl.pipelines WHERE name = %(name)s);

-- name: scan_source
-- The snapshot case's reference: one full scan of the source ...
SELECT count(*) FROM {{source}};

-- name: scan_signatures
-- ... and one of the pipeline's signatures.
SELECT count(*) FROM etl.snapshot_signatures WHERE pipeline_id = %(pipeline_id)s;

-- name: hashed_source
-- For reference: what the comparison computes for every source row (the
-- transform, then etl_row_hash of the key and of the other columns), with
-- no signature to compare it with.
SELECT count(etl_row_hash(order_id)),
       count(etl_row_hash(customer_id, order_date, total_amount, currency, status,
                          order_month, is_high_value))
  FROM ({{batch}}) AS b;

-- name: remote_database
CREATE DATABASE {{database}};

-- name: remote_server
-- A loopback postgres_fdw server to the remote database of the same
-- cluster, over the cluster's socket, and the foreign table of its orders.
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
DO $do$
BEGIN
    EXECUTE format('CREATE SERVER {{server}} FOREIGN DATA WRAPPER postgres_fdw '
                   'OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), '{{database}}');
END
$do$;
CREATE USER MAPPING FOR CURRENT_USER SERVER {{server}};
CREATE FOREIGN TABLE {{foreign}} (
    order_id    bigint NOT NULL,
    customer_id bigint,
    status      text,
    currency    text,
    total       numeric(12,2),
    created_at  timestamptz,
    updated_at  timestamptz
) SERVER {{server}} OPTIONS (schema_name 'src', table_name 'orders');

-- name: fetch_size
-- The fetch_size of a foreign table (NULL: none set on it).
SELECT option_value FROM pg_options_to_table(
    (SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = %(table)s::regclass))
 WHERE option_name = 'fetch_size';

-- name: drop_remote
DROP SERVER {{server}} CASCADE;
DROP DATABASE {{database}} WITH (FORCE);

-- name: catch_up
CALL etl_catch_up(%(pipeline)s);

-- name: catch_up_runs
-- The steps of the catch-up started after run %(after)s: (steps, rows
-- inserted, seconds of the extract stages, seconds of the load stages).
SELECT count(*), coalesce(sum(rows_inserted), 0),
       coalesce(sum(extract_ms), 0) / 1000, coalesce(sum(load_ms), 0) / 1000
  FROM etl.runs
 WHERE pipeline = %(pipeline)s AND run_id > %(after)s AND triggered_by = 'catch_up'
   AND status = 'succeeded';

-- name: stage_ms
-- The extract and load stages of a pipeline's last run, in seconds.
SELECT extract_ms / 1000, load_ms / 1000 FROM etl.runs
 WHERE run_id = (SELECT max(run_id) FROM etl.runs WHERE pipeline = %(pipeline)s);

-- name: swap_target
-- The partition swap case's target: the fact table partitioned by month of
-- order_date (twelve partitions of 2024, about rows/12 each).
CREATE TABLE {{target}} (
    order_id      bigint NOT NULL,
    customer_id   bigint,
    order_date    date NOT NULL,
    total_amount  numeric(12,2),
    currency      text,
    status        text,
    order_month   text,
    is_high_value boolean,
    _etl_row_hash bytea,
    PRIMARY KEY (order_id, order_date)
) PARTITION BY RANGE (order_date);
DO $do$
BEGIN
    FOR m IN 0..11 LOOP
        EXECUTE format('CREATE TABLE %s PARTITION OF {{target}} FOR VALUES FROM (%L) TO (%L) '
                       'WITH (autovacuum_enabled = off)',
                       '{{target}}_' || to_char(date '2024-01-01' + m * interval '1 month', 'YYYYMM'),
                       date '2024-01-01' + m * interval '1 month',
                       date '2024-01-01' + (m + 1) * interval '1 month');
    END LOOP;
END
$do$;

-- name: swap_pipeline
-- Keyed by order_id alone, as the other targets (the primary key adds the
-- partition key, which PostgreSQL requires): the row hash covers the same
-- seven columns.
SELECT etl_create_pipeline(
    name => %(name)s, source => %(source)s, target => %(target)s,
    mode => 'timestamp', watermark_column => 'updated_at',
    key => ARRAY['order_id'], transform => %(transform)s, load => 'partition_swap',
    options => '{"partition_interval": "1 month"}');

-- name: swap_change_rows
-- An increment that touches one partition: about %(n)s orders of June 2024
-- (every %(step)s-th key of the month, offset %(slot)s) change.  Untimed.
UPDATE {{source}}
   SET total = total + 1, updated_at = clock_timestamp()
 WHERE created_at >= '2024-06-01 00:00:00+00' AND created_at < '2024-07-01 00:00:00+00'
   AND mod(order_id, %(step)s) = %(slot)s;

-- name: source_in_watermark_order
-- The same rows as {{source}}, laid out in the order of their watermark,
-- as the rows of an append-mostly table lie: each catch-up step's range is
-- then a run of neighbouring pages, not a few rows of every page.
CREATE TABLE {{copy}} (LIKE {{source}} INCLUDING ALL) WITH (autovacuum_enabled = off);
INSERT INTO {{copy}} SELECT * FROM {{source}} ORDER BY updated_at, order_id;
