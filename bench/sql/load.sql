-- load.sql: the statements the cases time.  {{batch}} is the transform
-- (transform.sql) over the rows a statement loads: the whole source, or
-- only the rows changed since a watermark given as a literal; {{target}}
-- is the fact table.

-- name: etl_run
-- etl_ext: one increment of the pipeline (extract, transform, row hash,
-- load, watermark and run log), in one call.
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged,
       rows_rejected
  FROM etl_run(%(pipeline)s);

-- name: floor
-- The floor: the transform's rows inserted as they come, with no row hash,
-- no change detection and no bookkeeping.  Nothing can load faster.
INSERT INTO {{target}} (order_id, customer_id, order_date, total_amount,
                        currency, status, order_month, is_high_value)
{{batch}};

-- name: merge
-- A hand-written MERGE, what a user writes without etl_ext: the batch with
-- its row hash (etl_row_hash, so that the target ends up identical to
-- etl_ext's), unchanged rows skipped by comparing the hash, changed rows
-- updated, new keys inserted.  OFFSET 0 computes the transform once per row
-- rather than again for the hash's arguments (etl_ext does the same).
MERGE INTO {{target}} AS t
USING (SELECT b.*,
              etl_row_hash(b.customer_id, b.order_date, b.total_amount, b.currency,
                           b.status, b.order_month, b.is_high_value) AS row_hash
         FROM ({{batch}} OFFSET 0) AS b) AS s
   ON t.order_id = s.order_id
 WHEN MATCHED AND t._etl_row_hash IS DISTINCT FROM s.row_hash THEN
      UPDATE SET customer_id = s.customer_id, order_date = s.order_date,
                 total_amount = s.total_amount, currency = s.currency,
                 status = s.status, order_month = s.order_month,
                 is_high_value = s.is_high_value, _etl_row_hash = s.row_hash
 WHEN NOT MATCHED THEN
      INSERT (order_id, customer_id, order_date, total_amount, currency, status,
              order_month, is_high_value, _etl_row_hash)
      VALUES (s.order_id, s.customer_id, s.order_date, s.total_amount, s.currency,
              s.status, s.order_month, s.is_high_value, s.row_hash);

-- name: upsert
-- The other hand-written upsert: INSERT ... ON CONFLICT DO UPDATE, skipping
-- unchanged rows with the same row hash comparison.  A skipped row is still
-- locked, which writes WAL and dirties its page.
INSERT INTO {{target}} AS t (order_id, customer_id, order_date, total_amount,
                             currency, status, order_month, is_high_value,
                             _etl_row_hash)
SELECT b.*,
       etl_row_hash(b.customer_id, b.order_date, b.total_amount, b.currency,
                    b.status, b.order_month, b.is_high_value)
  FROM ({{batch}} OFFSET 0) AS b
    ON CONFLICT (order_id) DO UPDATE
   SET customer_id = EXCLUDED.customer_id, order_date = EXCLUDED.order_date,
       total_amount = EXCLUDED.total_amount, currency = EXCLUDED.currency,
       status = EXCLUDED.status, order_month = EXCLUDED.order_month,
       is_high_value = EXCLUDED.is_high_value, _etl_row_hash = EXCLUDED._etl_row_hash
 WHERE t._etl_row_hash IS DISTINCT FROM EXCLUDED._etl_row_hash;

-- name: change_rows
-- An increment at the source: about 10,000 rows spread over the whole table
-- (every %(step)s-th key, offset %(slot)s) change their total and get a new
-- updated_at.  Untimed.
UPDATE {{source}}
   SET total = total + 1, updated_at = clock_timestamp()
 WHERE mod(order_id, %(step)s) = %(slot)s;
