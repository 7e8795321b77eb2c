-- checks.sql: the checks case.  The guide's validate_quality task as
-- etl_ext checks (completeness, validity, uniqueness, referential), and the
-- same checks written by hand, one query per check over the batch (the
-- transform of the source, {{batch}}), as a client-side checker runs them.

-- name: dim_customers
-- The dimension the foreign-key check refers to: every customer id of the
-- workload.
CREATE TABLE dw.dim_customers (customer_id bigint PRIMARY KEY) WITH (autovacuum_enabled = off);
INSERT INTO dw.dim_customers SELECT g FROM generate_series(1, 100000) AS g;

-- name: add_checks
-- The guide's seven checks on the pipeline %(pipeline)s.
SELECT etl_add_check(%(pipeline)s, 'not_null', column_name => 'order_id');
SELECT etl_add_check(%(pipeline)s, 'not_null', column_name => 'customer_id');
SELECT etl_add_check(%(pipeline)s, 'not_null', column_name => 'total_amount');
SELECT etl_add_check(%(pipeline)s, 'positive', column_name => 'total_amount');
SELECT etl_add_check(%(pipeline)s, 'accepted_values', column_name => 'status',
                     params => '{"values": ["pending", "completed", "cancelled", "refunded"]}');
SELECT etl_add_check(%(pipeline)s, 'unique', column_name => 'order_id');
SELECT etl_add_check(%(pipeline)s, 'foreign_key', column_name => 'customer_id',
                     params => '{"references": "dw.dim_customers(customer_id)"}');

-- name: results
-- The check results of the pipeline's last run: (checks, passed, failing rows).
SELECT count(*), count(*) FILTER (WHERE passed), coalesce(sum(failing_rows), 0)
  FROM etl.check_results
 WHERE run_id = (SELECT max(run_id) FROM etl.runs WHERE pipeline = %(pipeline)s);

-- name: check_ms
-- The check stage of the pipeline's last run, in milliseconds.
SELECT check_ms FROM etl.runs
 WHERE run_id = (SELECT max(run_id) FROM etl.runs WHERE pipeline = %(pipeline)s);

-- The hand-written checks: each returns its failing rows (0 = passed).

-- name: by_hand_not_null_order_id
SELECT count(*) FROM ({{batch}}) AS b WHERE order_id IS NULL;

-- name: by_hand_not_null_customer_id
SELECT count(*) FROM ({{batch}}) AS b WHERE customer_id IS NULL;

-- name: by_hand_not_null_total_amount
SELECT count(*) FROM ({{batch}}) AS b WHERE total_amount IS NULL;

-- name: by_hand_positive_total_amount
SELECT count(*) FROM ({{batch}}) AS b WHERE total_amount <= 0;

-- name: by_hand_accepted_values_status
SELECT count(*) FROM ({{batch}}) AS b
 WHERE status NOT IN ('pending', 'completed', 'cancelled', 'refunded');

-- name: by_hand_unique_order_id
SELECT count(*) FROM (SELECT order_id FROM ({{batch}}) AS b
                       GROUP BY order_id HAVING count(*) > 1) AS d;

-- name: by_hand_foreign_key_customer_id
SELECT count(*) FROM ({{batch}}) AS b
 WHERE customer_id IS NOT NULL
   AND NOT EXISTS (SELECT FROM dw.dim_customers AS c WHERE c.customer_id = b.customer_id);
