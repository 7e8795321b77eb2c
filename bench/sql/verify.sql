-- verify.sql: the correctness checks of the bench (untimed).  Each returns
-- a number that must be 0 unless said otherwise.

-- name: differences
-- Rows of the fact table that are not the transform of the source, and
-- rows of the transform that are missing from the fact table (row for row,
-- duplicates included; the hash column left out).
SELECT count(*) FROM (
    (SELECT order_id, customer_id, order_date, total_amount, currency, status,
            order_month, is_high_value FROM {{target}}
     EXCEPT ALL {{batch}})
    UNION ALL
    ({{batch}}
     EXCEPT ALL SELECT order_id, customer_id, order_date, total_amount, currency,
                       status, order_month, is_high_value FROM {{target}})) AS d;

-- name: client_differences
-- Rows in which the client-side pipeline's result and etl_ext's differ,
-- both ways, the hash columns left out.
SELECT count(*) FROM (
    (SELECT order_id, customer_id, order_date, total_amount, currency, status,
            order_month, is_high_value FROM {{client}}
     EXCEPT ALL
     SELECT order_id, customer_id, order_date, total_amount, currency, status,
            order_month, is_high_value FROM {{target}})
    UNION ALL
    (SELECT order_id, customer_id, order_date, total_amount, currency, status,
            order_month, is_high_value FROM {{target}}
     EXCEPT ALL
     SELECT order_id, customer_id, order_date, total_amount, currency, status,
            order_month, is_high_value FROM {{client}})) AS d;

-- name: wrong_row_hashes
-- Target rows whose stored row hash is not etl_row_hash of their columns.
SELECT count(*) FROM {{target}}
 WHERE _etl_row_hash IS DISTINCT FROM
       etl_row_hash(customer_id, order_date, total_amount, currency, status,
                    order_month, is_high_value);

-- name: tuples_written
-- Tuples inserted, updated or deleted in a table so far (cumulative
-- statistics: the caller flushes its own first) and the WAL insert position.
SELECT n_tup_ins + n_tup_upd + n_tup_del, pg_current_wal_insert_lsn()::text
  FROM pg_stat_user_tables WHERE relid = %(table)s::regclass;
