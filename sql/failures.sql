-- failures: error classes, bad-row isolation, thresholds, durable failure
-- records, dead-letter replay and privacy

-- error classes by SQLSTATE
SELECT code, etl_error_class(code)
  FROM unnest(ARRAY['08006', '08001', '40001', '40P01', '55P03', '57P03', '53300',
                    '22001', '22P02', '23505', '23503', '42501', '42P01', '57014', 'XX000']) AS code;
SELECT etl_error_class('nope');
\echo sqlstate :LAST_ERROR_SQLSTATE

CREATE SCHEMA fl_src;
CREATE SCHEMA fl_dw;
CREATE TABLE fl_src.customers (customer_id int PRIMARY KEY);
INSERT INTO fl_src.customers SELECT g FROM generate_series(1, 40) g;
CREATE TABLE fl_src.orders (order_id int PRIMARY KEY, customer_id int, amount text,
                            code text, at timestamptz NOT NULL);
-- 1000 rows: 5 bad casts (transform), 5 too long (load: 22001), 5 NULL
-- customers (NOT NULL), 3 negative amounts (CHECK), 2 unknown customers
-- (foreign key); row 5 is both too long and negative: 19 bad rows, 1.9%
INSERT INTO fl_src.orders
SELECT g,
       CASE WHEN g % 200 = 7 THEN NULL WHEN g % 500 = 11 THEN 99 ELSE 1 + g % 40 END,
       CASE WHEN g % 200 = 3 THEN 'twelve' WHEN g % 334 = 5 THEN '-5' ELSE (g % 90)::text END,
       CASE WHEN g % 200 = 5 THEN 'TOOLONG' ELSE 'ok' END,
       '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 1000) g;
SELECT count(*) FILTER (WHERE amount = 'twelve') AS bad_casts,
       count(*) FILTER (WHERE code = 'TOOLONG') AS too_long,
       count(*) FILTER (WHERE customer_id IS NULL) AS null_customers,
       count(*) FILTER (WHERE amount = '-5') AS negative,
       count(*) FILTER (WHERE customer_id = 99) AS unknown_customers
  FROM fl_src.orders;
CREATE TABLE fl_dw.orders (
    order_id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES fl_src.customers,
    amount int CHECK (amount >= 0),
    code varchar(3));

SELECT etl_create_pipeline('fl_orders', 'fl_src.orders', 'fl_dw.orders',
    watermark_column => 'at', error_threshold => 5,
    transform => 'SELECT order_id, customer_id, amount::int AS amount, code FROM etl_delta') > 0 AS created;

-- the good 98% load, the bad 2% become dead letters; counts balance
SELECT status, rows_extracted, rows_inserted, rows_rejected,
       rows_extracted = rows_inserted + rows_rejected AS balanced
  FROM etl_run('fl_orders');
SELECT count(*) AS loaded FROM fl_dw.orders;
SELECT stage, sqlstate, error_class, count(*)
  FROM etl.dead_letters GROUP BY 1, 2, 3 ORDER BY 1, 2;
-- each dead letter holds its source row, its error and its run
SELECT d.record->>'order_id' AS order_id, d.record->>'amount' AS amount,
       d.stage, d.error_message, d.status, d.retry_count,
       d.run_id = r.run_id AS of_the_run
  FROM etl.dead_letters d JOIN etl.runs r USING (pipeline_id)
 WHERE (d.record->>'order_id')::int IN (3, 5, 7, 11, 5)
 ORDER BY (d.record->>'order_id')::int;
-- exactly the bad rows are missing from the target
SELECT count(*) AS good_rows_missing
  FROM fl_src.orders s
 WHERE s.amount <> 'twelve' AND s.amount <> '-5' AND s.code = 'ok'
   AND s.customer_id BETWEEN 1 AND 40
   AND NOT EXISTS (SELECT FROM fl_dw.orders d WHERE d.order_id = s.order_id);

-- above the threshold the run fails: nothing loaded, watermark unmoved,
-- and yet its record and dead letters are committed, also when the caller
-- rolls back or catches the error
CREATE TABLE fl_dw.orders_strict (LIKE fl_dw.orders INCLUDING ALL);
ALTER TABLE fl_dw.orders_strict ADD FOREIGN KEY (customer_id) REFERENCES fl_src.customers;
SELECT etl_create_pipeline('fl_strict', 'fl_src.orders', 'fl_dw.orders_strict',
    watermark_column => 'at', error_threshold => 1,
    transform => 'SELECT order_id, customer_id, amount::int AS amount, code FROM etl_delta') > 0 AS created;
BEGIN;
SELECT * FROM regress.run_failing('fl_strict') \gx
ROLLBACK;
SELECT count(*) AS loaded FROM fl_dw.orders_strict;
SELECT watermark IS NULL AS watermark_unmoved FROM etl.pipelines WHERE name = 'fl_strict';
SELECT status, rows_extracted, rows_inserted, rows_rejected, sqlstate, error_class,
       error, attempts
  FROM etl.runs WHERE pipeline = 'fl_strict';
SELECT count(*) AS dead_letters_kept FROM etl.dead_letters d JOIN etl.runs r USING (run_id)
 WHERE r.pipeline = 'fl_strict';
DO $$
BEGIN
    PERFORM etl_run('fl_strict');
EXCEPTION WHEN data_exception THEN
    RAISE NOTICE 'caught: %', regexp_replace(SQLERRM, '[0-9]+', 'N');
END
$$;
SELECT status, count(*) FROM etl.runs WHERE pipeline = 'fl_strict' GROUP BY status;
SELECT pipeline, last_status, consecutive_failures, pending_dead_letters
  FROM etl.status WHERE pipeline IN ('fl_orders', 'fl_strict') ORDER BY pipeline;

-- threshold 0: the first bad row fails the run
SELECT etl_alter_pipeline('fl_strict', error_threshold => 0) > 0 AS altered;
SELECT * FROM regress.run_failing('fl_strict') \gx
SELECT rows_rejected FROM etl.runs WHERE pipeline = 'fl_strict' ORDER BY run_id DESC LIMIT 1;

-- a fatal error is recorded too: the run's error, SQLSTATE and class
ALTER TABLE fl_dw.orders_strict RENAME COLUMN code TO kind;
SELECT * FROM regress.run_failing('fl_strict') \gx
SELECT status, sqlstate, error_class, error FROM etl.runs
 WHERE pipeline = 'fl_strict' ORDER BY run_id DESC LIMIT 1;
ALTER TABLE fl_dw.orders_strict RENAME COLUMN kind TO code;

-- replay: fix the transform and add the missing customer, then retry
SELECT etl_alter_pipeline('fl_orders', transform => $$
    SELECT order_id, customer_id,
           CASE WHEN amount ~ '^-?[0-9]+$' THEN greatest(amount::int, 0) ELSE 12 END AS amount,
           left(code, 3) AS code
      FROM etl_delta$$) > 0 AS altered;
INSERT INTO fl_src.customers VALUES (99);
SELECT * FROM etl_retry_dead_letters('fl_orders');
SELECT status, count(*), min(retry_count) AS retries, max(resolution) AS resolution
  FROM etl.dead_letters WHERE pipeline = 'fl_orders' GROUP BY status ORDER BY status;
SELECT count(*) AS loaded FROM fl_dw.orders;
SELECT watermark::timestamptz = '2024-01-01'::timestamptz + interval '1000 minutes' AS watermark_unmoved
  FROM etl.pipelines WHERE name = 'fl_orders';
-- what still fails (NULL customers) counts another try; resolve by hand
SELECT count(*) AS still_pending, min(retry_count) AS retries, min(sqlstate) AS sqlstate
  FROM etl.dead_letters WHERE pipeline = 'fl_orders' AND status = 'pending';
SELECT etl_resolve_dead_letter(id, 'ignored', 'orders without a customer are test data')
  FROM etl.dead_letters WHERE pipeline = 'fl_orders' AND status = 'pending';
SELECT status, resolution, resolved_at IS NOT NULL AS resolved_at_set, count(*)
  FROM etl.dead_letters WHERE pipeline = 'fl_orders' GROUP BY 1, 2, 3 ORDER BY 1;
SELECT etl_resolve_dead_letter(-1, 'ignored');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_resolve_dead_letter(id, 'forgotten') FROM etl.dead_letters LIMIT 1;
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT * FROM etl_retry_dead_letters('fl_orders');

-- dead letters are private to the pipeline's owner
CALL regress.create_role('regress_etl_outsider');
SELECT max(id) AS dl_id FROM etl.dead_letters \gset
SET ROLE regress_etl_outsider;
SELECT count(*) AS visible_dead_letters FROM etl.dead_letters;
SELECT * FROM regress.error_of($$SELECT * FROM etl_retry_dead_letters('fl_orders')$$) \gx
SELECT * FROM regress.error_of(format('SELECT etl_resolve_dead_letter(%s, %L)', :dl_id, 'ignored')) \gx
RESET ROLE;
SELECT status FROM etl.dead_letters WHERE id = :dl_id;
CALL regress.drop_role('regress_etl_outsider');

-- bad-row isolation reloads a batch in parts, which only gives the same
-- result when the transform is row-local (each output row from one source
-- row).  One that aggregates cannot be loaded in parts: a bad row fails the
-- run with its own SQLSTATE and nothing loads (no partial totals)
CREATE TABLE fl_src.sales (sale_id int PRIMARY KEY, customer_id int, amount text,
                           at timestamptz NOT NULL);
INSERT INTO fl_src.sales
SELECT g, 1 + g % 10, CASE WHEN g = 500 THEN 'oops' ELSE '1' END,
       '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 1000) g;
CREATE TABLE fl_dw.customer_totals (customer_id int PRIMARY KEY, total numeric, sales bigint);
SELECT etl_create_pipeline('fl_totals', 'fl_src.sales', 'fl_dw.customer_totals',
    watermark_column => 'at',
    transform => $$SELECT customer_id, sum(amount::numeric) AS total, count(*) AS sales
                     FROM etl_delta GROUP BY customer_id$$) > 0 AS created;
SELECT * FROM regress.run_failing('fl_totals') \gx
SELECT count(*) AS loaded FROM fl_dw.customer_totals;
SELECT watermark IS NULL AS watermark_unmoved FROM etl.pipelines WHERE name = 'fl_totals';
SELECT count(*) AS dead_letters FROM etl.dead_letters WHERE pipeline = 'fl_totals';
-- window functions are not row-local either
CREATE TABLE fl_dw.sales_share (sale_id int PRIMARY KEY, amount numeric, customer_total numeric);
SELECT etl_create_pipeline('fl_share', 'fl_src.sales', 'fl_dw.sales_share',
    watermark_column => 'at',
    transform => $$SELECT sale_id, amount::numeric AS amount,
                          sum(amount::numeric) OVER (PARTITION BY customer_id) AS customer_total
                     FROM etl_delta$$) > 0 AS created;
SELECT code, message FROM regress.run_failing('fl_share');
SELECT count(*) AS loaded FROM fl_dw.sales_share;
-- a row-local transform that filters and joins isolates its bad row
SELECT etl_alter_pipeline('fl_share',
    transform => $$SELECT s.sale_id, s.amount::numeric AS amount, NULL::numeric AS customer_total
                     FROM etl_delta s JOIN fl_src.customers c USING (customer_id)
                    WHERE s.sale_id <= 800$$) > 0 AS altered;
SELECT status, rows_inserted, rows_rejected FROM etl_run('fl_share');
SELECT count(*) AS loaded, count(*) FILTER (WHERE sale_id = 500) AS bad_loaded FROM fl_dw.sales_share;
-- fixed in the source, the totals are exact
UPDATE fl_src.sales SET amount = '1' WHERE sale_id = 500;
SELECT status, rows_inserted, rows_rejected FROM etl_run('fl_totals');
SELECT customer_id, total, sales FROM fl_dw.customer_totals ORDER BY customer_id;

-- the parts of an isolated batch load in the order of the watermark, each
-- seeing what the parts before it loaded: with three versions of each
-- item in one batch, the latest loads, and a key that an earlier part
-- inserted is updated, not inserted twice
CREATE TABLE fl_src.versions (id int PRIMARY KEY, item_id int, price text, at timestamptz NOT NULL);
INSERT INTO fl_src.versions
SELECT g, 1 + (g - 1) % 100, CASE WHEN g = 150 THEN 'n/a' ELSE (g * 10)::text END,
       '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 300) g;
CREATE TABLE fl_dw.prices (item_id int PRIMARY KEY, price numeric);
SELECT etl_create_pipeline('fl_versions', 'fl_src.versions', 'fl_dw.prices', watermark_column => 'at',
    transform => 'SELECT item_id, price::numeric AS price FROM etl_delta') > 0 AS created;
SELECT status, rows_extracted, rows_rejected FROM etl_run('fl_versions');
SELECT record->>'id' AS id, sqlstate FROM etl.dead_letters WHERE pipeline = 'fl_versions';
SELECT count(*) AS items, count(*) FILTER (WHERE price = (item_id + 200) * 10) AS latest
  FROM fl_dw.prices;

-- isolation keeps few subtransactions: every one that writes and commits
-- keeps its transaction id in the backend's cache (64 places) until the
-- run's transaction ends.  Bad rows are found by probes that are rolled
-- back, and the good rows load in at most 24 parts (each row carries the
-- id of the subtransaction that wrote it, so count them).  A child row
-- whose parent (same table) is in its own part but in another probe is
-- tried again after the part and loads; of two rows with the same unique
-- email the second is rejected, as loading row by row would
CREATE TABLE fl_src.staff (id int PRIMARY KEY, manager_id int, email text, salary text,
                           at timestamptz NOT NULL);
INSERT INTO fl_src.staff
SELECT g, CASE WHEN g = 70 THEN 10 END,
       'e' || CASE WHEN g = 310 THEN 300 ELSE g END || '@example.com',
       CASE WHEN g IN (30, 1000, 3000, 5999) THEN '-1' WHEN g IN (1600, 4000) THEN 'x'
            ELSE g::text END,
       '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 6000) g;
CREATE TABLE fl_dw.staff (id int PRIMARY KEY, manager_id int REFERENCES fl_dw.staff,
                          email text UNIQUE, salary int CHECK (salary >= 0));
SELECT etl_create_pipeline('fl_staff', 'fl_src.staff', 'fl_dw.staff', watermark_column => 'at',
    transform => 'SELECT id, manager_id, email, salary::int AS salary FROM etl_delta') > 0 AS created;
-- etl.isolation_parts = 24 keeps the writing subtransactions within the
-- backend's cache of 64 (the default, 512 parts, is faster and overflows it)
SET etl.isolation_parts = 24;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('fl_staff');
RESET etl.isolation_parts;
SELECT (record->>'id')::int AS id, stage, sqlstate FROM etl.dead_letters
 WHERE pipeline = 'fl_staff' ORDER BY 1;
SELECT count(*) AS loaded, count(*) FILTER (WHERE id = 70 AND manager_id = 10) AS child_loaded,
       count(DISTINCT xmin::text) AS writing_subtransactions,
       count(DISTINCT xmin::text) <= 60 AS within_the_cache
  FROM fl_dw.staff;
SELECT count(*) AS good_rows_missing FROM fl_src.staff s
 WHERE s.id NOT IN (30, 1000, 3000, 5999, 1600, 4000, 310)
   AND NOT EXISTS (SELECT FROM fl_dw.staff d WHERE d.id = s.id);

-- transient errors are retried inside the run: a target trigger fails the
-- first two attempts with a serialization failure (a sequence counts them,
-- outside the rolled-back attempts)
CREATE SEQUENCE fl_src.flaky_tries;
CREATE FUNCTION fl_src.flaky() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('fl_src.flaky_tries') <= 2 THEN
        RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END$$;
CREATE TABLE fl_dw.flaky (order_id int PRIMARY KEY, code text);
CREATE TRIGGER flaky BEFORE INSERT ON fl_dw.flaky FOR EACH ROW EXECUTE FUNCTION fl_src.flaky();
SELECT etl_create_pipeline('fl_flaky', 'fl_src.orders', 'fl_dw.flaky', watermark_column => 'at',
    retry_policy => 'linear', retry_base_delay => '10 ms', max_attempts => 3) > 0 AS created;
SELECT status, attempts, rows_inserted FROM etl_run('fl_flaky');
SELECT status, attempts, jsonb_array_length(attempt_errors) AS failed_attempts,
       attempt_errors->0->>'sqlstate' AS sqlstate, attempt_errors->0->>'error_class' AS class,
       attempt_errors->1->>'message' AS message
  FROM etl.runs WHERE pipeline = 'fl_flaky';
-- the same with one attempt too few: the run fails, each attempt recorded
SELECT setval('fl_src.flaky_tries', 1, false);
SELECT etl_reset_watermark('fl_flaky') IS NULL AS reset;
TRUNCATE fl_dw.flaky;
SELECT etl_alter_pipeline('fl_flaky', max_attempts => 2, retry_policy => 'none') > 0 AS altered;
SELECT * FROM regress.run_failing('fl_flaky') \gx
SELECT status, attempts, sqlstate, error_class, jsonb_array_length(attempt_errors) AS failed_attempts
  FROM etl.runs WHERE pipeline = 'fl_flaky' ORDER BY run_id DESC LIMIT 1;
SELECT count(*) AS loaded FROM fl_dw.flaky;

-- the backoff of each policy (exponential_jitter: 50-150% of exponential)
SELECT etl_alter_pipeline('fl_flaky', retry_policy => 'exponential', retry_base_delay => '1 second',
                          retry_max_delay => '5 seconds') > 0 AS altered;
SELECT n, etl_retry_delay('fl_flaky', n) FROM generate_series(1, 4) n;
SELECT etl_alter_pipeline('fl_flaky', retry_policy => 'linear') > 0 AS altered;
SELECT n, etl_retry_delay('fl_flaky', n) FROM generate_series(1, 4) n;
SELECT etl_alter_pipeline('fl_flaky', retry_policy => 'none') > 0 AS altered;
SELECT etl_retry_delay('fl_flaky', 3);
SELECT etl_alter_pipeline('fl_flaky', retry_policy => 'exponential_jitter', retry_max_delay => '1 hour') > 0 AS altered;
SELECT bool_and(d BETWEEN interval '2 seconds' AND interval '6 seconds') AS within_50_to_150_percent,
       count(DISTINCT d) > 1 AS jittered
  FROM (SELECT etl_retry_delay('fl_flaky', 3) AS d FROM generate_series(1, 200)) s;

SELECT etl_drop_pipeline('fl_orders'), etl_drop_pipeline('fl_strict'), etl_drop_pipeline('fl_flaky'),
       etl_drop_pipeline('fl_totals'), etl_drop_pipeline('fl_share'), etl_drop_pipeline('fl_versions'),
       etl_drop_pipeline('fl_staff');
SELECT count(*) AS orphan_dead_letters FROM etl.dead_letters;
DROP SCHEMA fl_src, fl_dw CASCADE;
