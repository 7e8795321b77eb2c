-- checks.sql: the checks case.  Quality checks of the orders (completeness,
-- validity, uniqueness, referential) as etl_ext checks, and the
-- same checks written by hand, one query per check over the batch (the
-- transform of the source, {{batch}}), as a client-side checker runs them.

-- name: dim_customers
-- The dimension the foreign-key check refers to: every customer id of the
-- workload.
CREATE TABLE dw.dim_customers (customer_id bigint PRIMARY KEY) WITH (autovacuum_enabled = off);
INSERT INTO dw.dim_customers SELECT g FROM generate_series(1, 100000) AS g;

-- name: add_checks
-- Seven checks of five kinds on the pipeline %(pipeline)s (not_null three
-- times, positive, accepted_values, unique, foreign_key), and one of each
-- other kind, so that all ten kinds run: range, z_score, row_count,
-- expression, freshness.
SELECT etl_add_check(%(pipeline)s, 'not_null', column_name => 'order_id');
SELECT etl_add_check(%(pipeline)s, 'not_null', column_name => 'customer_id');
SELECT etl_add_check(%(pipeline)s, 'not_null', column_name => 'total_amount');
SELECT etl_add_check(%(pipeline)s, 'positive', column_name => 'total_amount');
SELECT etl_add_check(%(pipeline)s, 'accepted_values', column_name => 'status',
                     params => '{"values": ["pending", "completed", "cancelled", "refunded"]}');
SELECT etl_add_check(%(pipeline)s, 'unique', column_name => 'order_id');
SELECT etl_add_check(%(pipeline)s, 'foreign_key', column_name => 'customer_id',
                     params => '{"references": "dw.dim_customers(customer_id)"}');
SELECT etl_add_check(%(pipeline)s, 'range', column_name => 'total_amount',
                     params => '{"min": 0, "max": 100000}');
SELECT etl_add_check(%(pipeline)s, 'z_score', column_name => 'total_amount',
                     params => '{"threshold": 10}');
SELECT etl_add_check(%(pipeline)s, 'row_count', params => '{"min": 1}');
SELECT etl_add_check(%(pipeline)s, 'expression',
                     params => '{"sql": "is_high_value = (total_amount > 1000)"}');
SELECT etl_add_check(%(pipeline)s, 'freshness', params => '{"max_age": "100 years"}');

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

-- name: by_hand_range_total_amount
SELECT count(*) FROM ({{batch}}) AS b WHERE total_amount < 0 OR total_amount > 100000;

-- name: by_hand_z_score_total_amount
-- The mean and standard deviation of the batch, then the rows beyond 10.
WITH s AS (SELECT avg(total_amount) AS m, stddev_samp(total_amount) AS sd FROM ({{batch}}) AS b)
SELECT count(*) FROM ({{batch}}) AS b, s WHERE abs(b.total_amount - s.m) / s.sd > 10;

-- name: by_hand_row_count
SELECT (count(*) < 1)::int FROM ({{batch}}) AS b;

-- name: by_hand_expression
SELECT count(*) FROM ({{batch}}) AS b WHERE (is_high_value = (total_amount > 1000)) IS NOT TRUE;

-- name: by_hand_freshness
SELECT (max(updated_at) < now() - interval '100 years')::int FROM {{source}};
