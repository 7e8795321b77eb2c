-- row_hash.sql: the row hash case.  One materialized batch (the transform
-- of the source), then the same scan with one hash function per statement
-- over the same seven business columns: what etl_ext hashes to detect a
-- changed row.  The built-in hashes take the row's text form (ROW(...)::text:
-- NULL-safe and unambiguous, what a user writes); etl_row_hash takes the
-- values.  count(expr) makes every row's hash be computed.

-- name: batch_table
CREATE TABLE bench.row_hash_batch WITH (autovacuum_enabled = off) AS {{batch}};

-- name: scan
-- The scan alone: subtracted from the others to get the cost of the hash.
SELECT count(*) FROM bench.row_hash_batch;

-- name: etl_row_hash
SELECT count(etl_row_hash(customer_id, order_date, total_amount, currency, status,
                          order_month, is_high_value))
  FROM bench.row_hash_batch;

-- name: sha256
SELECT count(sha256(convert_to(ROW(customer_id, order_date, total_amount, currency,
                                   status, order_month, is_high_value)::text, 'UTF8')))
  FROM bench.row_hash_batch;

-- name: md5
SELECT count(md5(ROW(customer_id, order_date, total_amount, currency, status,
                     order_month, is_high_value)::text))
  FROM bench.row_hash_batch;

-- name: hashtextextended
SELECT count(hashtextextended(ROW(customer_id, order_date, total_amount, currency,
                                  status, order_month, is_high_value)::text, 0))
  FROM bench.row_hash_batch;
