-- dead_letters.sql: the dead-letter case.  A target whose currency column
-- is varchar(3): a source row whose currency reads 'us dollar' cannot load
-- (22001, value too long), a data error that etl_ext isolates into
-- etl.dead_letters while the rest of the batch loads.

-- name: target_table
CREATE TABLE {{target}} (
    order_id      bigint PRIMARY KEY,
    customer_id   bigint,
    order_date    date,
    total_amount  numeric(12,2),
    currency      varchar(3),
    status        text,
    order_month   text,
    is_high_value boolean,
    _etl_row_hash bytea
) WITH (autovacuum_enabled = off);
CREATE TABLE bench.rejects (order_id bigint, sqlstate text, message text);

-- name: save_bad_rows
-- The rows that go bad (every %(step)s-th key, offset 7) and their currency,
-- to restore them afterwards.
CREATE TABLE bench.bad_rows AS
SELECT order_id, currency FROM {{source}} WHERE mod(order_id, %(step)s) = 7;

-- name: spoil
UPDATE {{source}} AS o SET currency = 'us dollar'
  FROM bench.bad_rows AS b WHERE o.order_id = b.order_id;

-- name: restore
UPDATE {{source}} AS o SET currency = b.currency
  FROM bench.bad_rows AS b WHERE o.order_id = b.order_id;

-- name: forget
-- the dead letters of earlier runs, so that the next run rejects its bad
-- rows afresh (a row version pending as a dead letter is not rejected again)
DELETE FROM etl.dead_letters WHERE pipeline = %(pipeline)s;

-- name: dead_letters_of_last_run
SELECT count(*) FROM etl.dead_letters
 WHERE run_id = (SELECT max(run_id) FROM etl.runs WHERE pipeline = %(pipeline)s);

-- name: row_by_row
-- What a user writes without set-based isolation: the batch row by row,
-- each INSERT in its own subtransaction (a PL/pgSQL block with an
-- exception handler), a failing row recorded in bench.rejects.
DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT b.*, etl_row_hash(b.customer_id, b.order_date, b.total_amount, b.currency,
                                 b.status, b.order_month, b.is_high_value) AS row_hash
          FROM ({{batch}} OFFSET 0) AS b
    LOOP
        BEGIN
            INSERT INTO {{target}} (order_id, customer_id, order_date, total_amount, currency,
                                    status, order_month, is_high_value, _etl_row_hash)
            VALUES (r.order_id, r.customer_id, r.order_date, r.total_amount, r.currency,
                    r.status, r.order_month, r.is_high_value, r.row_hash);
        EXCEPTION WHEN others THEN
            INSERT INTO bench.rejects VALUES (r.order_id, SQLSTATE, SQLERRM);
        END;
    END LOOP;
END
$do$;
