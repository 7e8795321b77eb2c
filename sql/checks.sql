-- checks: quality checks on every batch before it loads

-- etl_dup_count, the parallel-safe duplicate counter of unique checks,
-- agrees with count(x) - count(DISTINCT x), serially and in parallel
CREATE TABLE public.dups AS
SELECT g % 700 AS i, (g % 650)::text AS t, (g % 600)::numeric / 7 AS n,
       point(g % 10, 0) AS p, CASE WHEN g % 9 = 0 THEN NULL ELSE g % 800 END AS withnulls
  FROM generate_series(1, 20000) g;
ANALYZE public.dups;
SELECT etl_internal.etl_dup_count(i) = count(i) - count(DISTINCT i) AS int_ok,
       etl_internal.etl_dup_count(t) = count(t) - count(DISTINCT t) AS text_ok,
       etl_internal.etl_dup_count(n) = count(n) - count(DISTINCT n) AS numeric_ok,
       etl_internal.etl_dup_count(p) = count(p) - count(DISTINCT p::text) AS no_hash_type_ok,
       etl_internal.etl_dup_count(withnulls) = count(withnulls) - count(DISTINCT withnulls) AS nulls_ok
  FROM public.dups;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT etl_internal.etl_dup_count(i) FROM public.dups;
SELECT etl_internal.etl_dup_count(i) AS int_dups, etl_internal.etl_dup_count(t) AS text_dups,
       etl_internal.etl_dup_count(withnulls) AS dups_with_nulls
  FROM public.dups;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT count(i) - count(DISTINCT i) AS int_dups, count(t) - count(DISTINCT t) AS text_dups,
       count(withnulls) - count(DISTINCT withnulls) AS dups_with_nulls
  FROM public.dups;
-- etl_zstats, the z-score check's statistics in one aggregate: {n, mean,
-- stddev_samp, min, max} of the finite values, as count(), avg(),
-- stddev_samp(), min() and max() compute them over those values: equal
-- serially, within rounding in parallel (the halves combine in any order)
CREATE TABLE public.zs AS
SELECT CASE WHEN g % 97 = 0 THEN 'NaN' WHEN g % 89 = 0 THEN 'Infinity'
            WHEN g % 79 = 0 THEN '-Infinity' WHEN g % 83 = 0 THEN NULL
            ELSE (g % 1000) / 7.0 END::float8 AS x
  FROM generate_series(1, 20000) g;
ANALYZE public.zs;
CREATE VIEW public.zs_expected AS
SELECT ARRAY[count(x), avg(x), stddev_samp(x), min(x), max(x)]::float8[] AS e
  FROM public.zs WHERE x <> ALL ('{NaN,Infinity,-Infinity}');
SELECT etl_internal.etl_zstats(x) = (SELECT e FROM public.zs_expected) AS serial_equal FROM public.zs;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT etl_internal.etl_zstats(x) FROM public.zs;
SELECT z[1] = e[1] AND z[4] = e[4] AND z[5] = e[5]
       AND abs(z[2] - e[2]) <= 1e-12 * abs(e[2]) AND abs(z[3] - e[3]) <= 1e-12 * e[3]
       AS parallel_equal
  FROM (SELECT etl_internal.etl_zstats(x) AS z FROM public.zs) a, public.zs_expected;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- no finite value: n 0, the rest NULL; one: no stddev; all equal: 0
SELECT etl_internal.etl_zstats(x) AS no_finite FROM (VALUES ('NaN'::float8), (NULL), ('Infinity')) v(x);
SELECT etl_internal.etl_zstats(x) AS one FROM (VALUES (2.5::float8), ('NaN')) v(x);
SELECT etl_internal.etl_zstats(x) AS all_equal FROM (VALUES (3::float8), (3), (3)) v(x);
-- sums beyond double precision: NaN, not an error (the check then notes it)
SELECT etl_internal.etl_zstats(x) AS too_large FROM (VALUES (1e308::float8), (-1e308), (1e308)) v(x);
DROP VIEW public.zs_expected;
DROP TABLE public.zs;
-- its hash set stays within work_mem: beyond it the count is unknown (NULL),
-- serially and in parallel, and a unique check then counts exactly
SET work_mem = 64;
SELECT etl_internal.etl_dup_count(g) IS NULL AS unknown, count(*)
  FROM generate_series(1, 100000) g;
SELECT etl_internal.etl_dup_count(g % 1000) AS dups_fit_in_work_mem
  FROM generate_series(1, 100000) g;
-- just under the limit (4096 hashes here) a sort would free too little
-- room each time: the count is given up instead of sorting every few rows
SELECT etl_internal.etl_dup_count(g % 4090) IS NULL AS unknown_near_the_limit
  FROM generate_series(1, 200000) g;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
INSERT INTO public.dups (i) SELECT g FROM generate_series(1, 60000) g;
EXPLAIN (COSTS OFF) SELECT etl_internal.etl_dup_count(i) FROM public.dups;
SELECT etl_internal.etl_dup_count(i) IS NULL AS unknown FROM public.dups;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET work_mem;
DROP TABLE public.dups;
CREATE SCHEMA ck_src;
CREATE SCHEMA ck_dw;
CREATE TABLE ck_dw.dim_customers (customer_id int PRIMARY KEY);
INSERT INTO ck_dw.dim_customers SELECT g FROM generate_series(1, 50) g;
CREATE TABLE ck_src.orders (order_id int PRIMARY KEY, customer_id int, status text,
                            total numeric(12,2), email text,
                            updated_at timestamptz NOT NULL);
-- 100 clean rows
INSERT INTO ck_src.orders
SELECT g, 1 + g % 50, (ARRAY['pending', 'completed', 'cancelled', 'refunded'])[1 + g % 4],
       10 + g, 'c' || g || '@example.com', now() - interval '1 hour' + g * interval '1 second'
  FROM generate_series(1, 100) g;
CREATE TABLE ck_dw.orders (order_id int PRIMARY KEY, customer_id int, status text,
                           total numeric(12,2), email text);
SELECT etl_create_pipeline('ck', 'ck_src.orders', 'ck_dw.orders', watermark_column => 'updated_at') > 0 AS created;

-- one check of each kind; default names <pipeline>_<column>_<kind>
SELECT etl_add_check('ck', 'not_null', column_name => 'customer_id');
SELECT etl_add_check('ck', 'unique', column_name => 'email');
SELECT etl_add_check('ck', 'accepted_values', column_name => 'status',
                     params => '{"values": ["pending", "completed", "cancelled", "refunded"]}');
SELECT etl_add_check('ck', 'positive', column_name => 'total');
SELECT etl_add_check('ck', 'range', column_name => 'total', params => '{"min": 0, "max": 100000}');
SELECT etl_add_check('ck', 'foreign_key', column_name => 'customer_id',
                     params => '{"references": "ck_dw.dim_customers(customer_id)"}');
SELECT etl_add_check('ck', 'z_score', column_name => 'total', params => '{"threshold": 4}',
                     severity => 'warning');
SELECT etl_add_check('ck', 'row_count', params => '{"min": 1}');
SELECT etl_add_check('ck', 'expression', params => '{"sql": "total < 1e6 AND email LIKE ''%@%''"}',
                     name => 'ck_sane');
SELECT etl_add_check('ck', 'freshness', params => '{"max_age": "2 hours"}');
SELECT name, kind, column_name, params, severity FROM etl.checks ORDER BY check_id;

-- a clean batch passes every check and loads
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ck');
SELECT check_name, kind, column_name, severity, passed, failing_rows
  FROM etl.check_results ORDER BY result_id;
SELECT observed->'mean' IS NOT NULL AS has_mean, observed->'stddev' IS NOT NULL AS has_stddev,
       (observed->>'max_z')::float8 <= 4 AS max_z_below
  FROM etl.check_results WHERE kind = 'z_score';
SELECT observed FROM etl.check_results WHERE kind IN ('row_count') ;

-- critical: a NULL customer fails the run; nothing loads; the results are kept
INSERT INTO ck_src.orders VALUES (101, NULL, 'pending', 5, 'x@example.com', now() - interval '1 minute');
SELECT * FROM regress.run_failing('ck') \gx
SELECT count(*) AS loaded FROM ck_dw.orders;
SELECT watermark::timestamptz < (SELECT max(updated_at) FROM ck_src.orders) AS watermark_unmoved
  FROM etl.pipelines WHERE name = 'ck';
SELECT r.status, c.check_name, c.passed, c.failing_rows, c.observed
  FROM etl.check_results c JOIN etl.runs r USING (run_id)
 WHERE r.status = 'failed' AND NOT c.passed;
SELECT count(*) AS results_of_failed_run FROM etl.check_results c JOIN etl.runs r USING (run_id)
 WHERE r.status = 'failed';

-- warning: recorded, the batch loads
SELECT etl_drop_check('ck', 'ck_customer_id_not_null');
SELECT etl_add_check('ck', 'not_null', column_name => 'customer_id', severity => 'warning');
SELECT status, rows_inserted FROM etl_run('ck');
SELECT check_name, passed, failing_rows, observed FROM etl.check_results
 WHERE run_id = (SELECT max(run_id) FROM etl.runs) AND NOT passed;
SELECT count(*) AS loaded FROM ck_dw.orders;

-- quarantine: exactly the failing rows become dead letters, the rest loads
SELECT etl_add_check('ck', 'accepted_values', column_name => 'status', name => 'ck_status_quarantine',
                     params => '{"values": ["pending", "completed", "cancelled", "refunded"]}',
                     severity => 'quarantine');
SELECT etl_drop_check('ck', 'ck_status_accepted_values');
SELECT etl_add_check('ck', 'foreign_key', column_name => 'customer_id', name => 'ck_fk_quarantine',
                     params => '{"references": "ck_dw.dim_customers(customer_id)"}', severity => 'quarantine');
SELECT etl_drop_check('ck', 'ck_customer_id_foreign_key');
INSERT INTO ck_src.orders VALUES
    (102, 1, 'lost', 20, 'a102@example.com', now() - interval '30 seconds'),
    (103, 999, 'pending', 20, 'a103@example.com', now() - interval '30 seconds'),
    (104, 2, 'pending', 20, 'a104@example.com', now() - interval '30 seconds');
-- 2 of 3 rows quarantined: above the error threshold, the run fails
SELECT * FROM regress.run_failing('ck') \gx
SELECT etl_alter_pipeline('ck', error_threshold => 100) > 0 AS altered;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ck');
SELECT order_id FROM ck_dw.orders WHERE order_id > 101 ORDER BY order_id;
SELECT stage, record->>'order_id' AS order_id, sqlstate, error_message
  FROM etl.dead_letters ORDER BY id;
SELECT check_name, passed, failing_rows, observed->'sample_keys' AS sample_keys
  FROM etl.check_results WHERE run_id = (SELECT max(run_id) FROM etl.runs) AND NOT passed
 ORDER BY check_name;

-- quarantine knows the failing rows by their place in the batch, carried
-- through the transform, never by a key matched again: a transform that
-- changes the key (lower(code)), a key with a NULL part, an append
-- pipeline without a key all set aside exactly the failing source rows
CREATE TABLE ck_src.codes (region text, code text, status text, at timestamptz NOT NULL);
INSERT INTO ck_src.codes VALUES
    ('eu', 'A1', 'ok', now() - interval '1 minute'),
    ('eu', 'A2', 'weird', now() - interval '1 minute'),
    ('eu', 'A3', 'ok', now() - interval '1 minute');
CREATE TABLE ck_dw.codes (code text PRIMARY KEY, status text);
SELECT etl_create_pipeline('ck_q', 'ck_src.codes', 'ck_dw.codes', watermark_column => 'at',
    error_threshold => 100, transform => 'SELECT lower(code) AS code, status FROM etl_delta') > 0 AS created;
SELECT etl_add_check('ck_q', 'accepted_values', column_name => 'status',
                     params => '{"values": ["ok"]}', severity => 'quarantine');
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ck_q');
SELECT code, status FROM ck_dw.codes ORDER BY code;
SELECT record->>'code' AS code, record->>'status' AS status, stage, sqlstate, error_message
  FROM etl.dead_letters WHERE pipeline = 'ck_q';
SELECT watermark IS NOT NULL AS advanced FROM etl.pipelines WHERE name = 'ck_q';
-- a replay runs the checks again: the row still fails and stays pending
-- (one more try); once the check accepts it, it loads
SELECT * FROM etl_retry_dead_letters('ck_q');
SELECT status, retry_count, stage, error_message FROM etl.dead_letters WHERE pipeline = 'ck_q';
SELECT code FROM ck_dw.codes ORDER BY code;
SELECT etl_drop_check('ck_q', 'ck_q_status_accepted_values');
SELECT etl_add_check('ck_q', 'accepted_values', column_name => 'status',
                     params => '{"values": ["ok", "weird"]}', severity => 'quarantine');
SELECT * FROM etl_retry_dead_letters('ck_q');
SELECT code, status FROM ck_dw.codes ORDER BY code;
-- a key with a NULL part
CREATE TABLE ck_dw.regional (region text, code text, status text, UNIQUE (region, code));
SELECT etl_create_pipeline('ck_qn', 'ck_src.codes', 'ck_dw.regional', watermark_column => 'at',
    key => ARRAY['region', 'code'], error_threshold => 100,
    transform => $$SELECT CASE WHEN code = 'A2' THEN NULL ELSE region END AS region, code, status
                     FROM etl_delta$$) > 0 AS created;
SELECT etl_add_check('ck_qn', 'accepted_values', column_name => 'status',
                     params => '{"values": ["ok"]}', severity => 'quarantine');
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ck_qn');
SELECT region, code, status FROM ck_dw.regional ORDER BY code;
-- append without a key
CREATE TABLE ck_dw.code_log (code text, status text);
SELECT etl_create_pipeline('ck_qa', 'ck_src.codes', 'ck_dw.code_log', watermark_column => 'at',
    load => 'append', error_threshold => 100) > 0 AS created;
SELECT etl_add_check('ck_qa', 'accepted_values', column_name => 'status',
                     params => '{"values": ["ok"]}', severity => 'quarantine');
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ck_qa');
SELECT code, status FROM ck_dw.code_log ORDER BY code;
SELECT pipeline, record->>'code' AS code, status FROM etl.dead_letters
 WHERE pipeline IN ('ck_qn', 'ck_qa') ORDER BY pipeline;
-- a transform that is not row-local cannot quarantine: refused when the
-- check is added, and a pipeline with such a check cannot become one
SELECT etl_create_pipeline('ck_qagg', 'ck_src.codes', 'ck_dw.codes', watermark_column => 'at',
    transform => 'SELECT min(lower(code)) AS code, status FROM etl_delta GROUP BY status') > 0 AS created;
SELECT etl_add_check('ck_qagg', 'not_null', column_name => 'code', severity => 'quarantine');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_alter_pipeline('ck_q', transform => 'SELECT DISTINCT lower(code) AS code, status FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name IN ('ck_q', 'ck_qn', 'ck_qa', 'ck_qagg') ORDER BY name;

-- unique: duplicates in the batch and clashes with the target's other rows
INSERT INTO ck_src.orders VALUES
    (105, 3, 'pending', 20, 'dup@example.com', now() - interval '20 seconds'),
    (106, 4, 'pending', 20, 'dup@example.com', now() - interval '20 seconds'),
    (107, 5, 'pending', 20, 'c1@example.com', now() - interval '20 seconds');
SELECT * FROM regress.run_failing('ck') \gx
SELECT check_name, failing_rows, observed FROM etl.check_results
 WHERE run_id = (SELECT max(run_id) FROM etl.runs) AND NOT passed;
DELETE FROM ck_src.orders WHERE order_id IN (105, 106, 107);

-- z-score: an outlier is flagged (warning), a batch without spread passes
INSERT INTO ck_src.orders SELECT 200 + g, 1, 'pending', 50, 'z' || g || '@example.com',
                                 now() - interval '10 seconds' FROM generate_series(1, 30) g;
INSERT INTO ck_src.orders VALUES (300, 1, 'pending', 99999, 'big@example.com', now() - interval '10 seconds');
SELECT status, rows_inserted FROM etl_run('ck');
SELECT passed, failing_rows, observed->'sample_keys' AS sample_keys,
       (observed->>'max_z')::float8 > 4 AS max_z_above
  FROM etl.check_results WHERE run_id = (SELECT max(run_id) FROM etl.runs) AND kind = 'z_score';
INSERT INTO ck_src.orders VALUES (301, 1, 'pending', 50, 'same@example.com', now() - interval '5 seconds');
SELECT status FROM etl_run('ck');
SELECT passed, observed->>'note' AS note FROM etl.check_results
 WHERE run_id = (SELECT max(run_id) FROM etl.runs) AND kind = 'z_score';

-- z-score over values that are not numbers: NaN and +-Infinity have no
-- distance from a mean, so they neither count nor fail (as a warning and as
-- a quarantine); the finite outlier is found
CREATE TABLE ck_src.readings (id int PRIMARY KEY, v float8, n numeric, at timestamptz NOT NULL);
INSERT INTO ck_src.readings
SELECT g, 10 + g % 3, 10 + g % 3, now() - interval '1 minute' FROM generate_series(1, 20) g;
INSERT INTO ck_src.readings VALUES
    (21, 1000, 1000, now() - interval '1 minute'),
    (22, 'NaN', 'NaN', now() - interval '1 minute'),
    (23, 'Infinity', 'Infinity', now() - interval '1 minute'),
    (24, '-Infinity', '-Infinity', now() - interval '1 minute');
CREATE TABLE ck_dw.readings (id int PRIMARY KEY, v float8, n numeric);
SELECT etl_create_pipeline('ck_z', 'ck_src.readings', 'ck_dw.readings', watermark_column => 'at') > 0 AS created;
SELECT etl_add_check('ck_z', 'z_score', column_name => 'v', params => '{"threshold": 3}', severity => 'warning');
SELECT etl_add_check('ck_z', 'z_score', column_name => 'n', params => '{"threshold": 3}', severity => 'quarantine');
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ck_z');
SELECT column_name, passed, failing_rows, round((observed->>'mean')::numeric, 4) AS mean,
       round((observed->>'stddev')::numeric, 4) AS stddev, observed->'sample_keys' AS sample_keys
  FROM etl.check_results WHERE run_id = (SELECT max(run_id) FROM etl.runs) ORDER BY column_name;
SELECT id, v, n FROM ck_dw.readings WHERE id > 20 ORDER BY id;
SELECT record->>'id' AS id, stage, error_message FROM etl.dead_letters
 WHERE pipeline = 'ck_z' ORDER BY id;
-- only non-finite values: no spread to judge
UPDATE ck_src.readings SET v = 'NaN', n = 'Infinity', at = now() WHERE id IN (1, 2);
SELECT status, rows_extracted, rows_inserted + rows_updated AS written FROM etl_run('ck_z');
SELECT column_name, passed, observed->>'note' AS note
  FROM etl.check_results WHERE run_id = (SELECT max(run_id) FROM etl.runs) ORDER BY column_name;
SELECT etl_add_check('ck_z', 'z_score', column_name => 'v', params => '{"threshold": 1e999}', name => 'ck_z_inf');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_drop_pipeline('ck_z');

-- unique: exact when etl_dup_count cannot tell (more distinct values than
-- etl.work_mem holds); refused for a type without equality and ordering
CREATE TABLE ck_src.events (id int PRIMARY KEY, email text, payload json,
                            at timestamptz NOT NULL);
INSERT INTO ck_src.events
SELECT g, 'e' || CASE WHEN g % 5000 = 0 THEN 1 ELSE g END || '@example.com',
       json_build_object('g', g), now() - interval '1 minute'
  FROM generate_series(1, 20000) g;
CREATE TABLE ck_dw.events (id int PRIMARY KEY, email text, payload json);
SELECT etl_create_pipeline('ck_u', 'ck_src.events', 'ck_dw.events', watermark_column => 'at') > 0 AS created;
SELECT etl_add_check('ck_u', 'unique', column_name => 'email', severity => 'warning');
SET etl.work_mem = 64;
SELECT status, rows_inserted FROM etl_run('ck_u');
RESET etl.work_mem;
SELECT passed, failing_rows, observed->'duplicates_in_batch' AS in_batch, observed->'sample_values' AS sample
  FROM etl.check_results WHERE run_id = (SELECT max(run_id) FROM etl.runs);
SELECT etl_add_check('ck_u', 'unique', column_name => 'payload');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_drop_pipeline('ck_u');

-- the checks run the transform over the batch: a row whose transform fails
-- with a data error is isolated first (a dead letter, stage transform), as
-- a load would, then the checks judge the rows left and those load
CREATE TABLE ck_src.raw (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO ck_src.raw
SELECT g, CASE WHEN g = 50 THEN 'bad' ELSE g::text END, now() - interval '1 minute'
  FROM generate_series(1, 100) g;
CREATE TABLE ck_dw.cooked (id int PRIMARY KEY, v int);
SELECT etl_create_pipeline('ck_cast', 'ck_src.raw', 'ck_dw.cooked', watermark_column => 'at',
    transform => 'SELECT id, v::int AS v FROM etl_delta') > 0 AS created;
SELECT etl_add_check('ck_cast', 'not_null', column_name => 'v', severity => 'warning');
SELECT etl_add_check('ck_cast', 'row_count', params => '{"min": 1}');
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ck_cast');
SELECT record->>'id' AS id, record->>'v' AS v, stage, sqlstate FROM etl.dead_letters
 WHERE pipeline = 'ck_cast';
SELECT check_name, passed, observed FROM etl.check_results
 WHERE run_id = (SELECT max(run_id) FROM etl.runs) ORDER BY check_name;
SELECT count(*) AS loaded, count(*) FILTER (WHERE id = 50) AS bad_loaded FROM ck_dw.cooked;
-- not row-local (it aggregates), the transform cannot be isolated: the
-- run fails with the data error, and nothing loads
TRUNCATE ck_dw.cooked;
SELECT etl_reset_watermark('ck_cast') IS NULL AS reset;
SELECT etl_alter_pipeline('ck_cast',
    transform => 'SELECT min(id) AS id, sum(v::int)::int AS v FROM etl_delta') > 0 AS altered;
SELECT code, split_part(detail, E'\n', 1) AS error, left(split_part(detail, E'\n', 2), 60) AS why
  FROM regress.run_failing('ck_cast');
SELECT count(*) AS loaded FROM ck_dw.cooked;
SELECT etl_drop_pipeline('ck_cast');

-- row_count and freshness judge the batch: an empty increment fails
-- row_count min 1 (as a warning here), freshness sees an old source
SELECT etl_drop_check('ck', 'ck_row_count');
SELECT etl_add_check('ck', 'row_count', params => '{"min": 1, "max": 1000}', severity => 'warning');
SELECT status FROM etl_run('ck');
SELECT passed, observed FROM etl.check_results
 WHERE run_id = (SELECT max(run_id) FROM etl.runs) AND kind = 'row_count';
UPDATE ck_src.orders SET updated_at = updated_at - interval '1 day';
SELECT etl_reset_watermark('ck', (now() - interval '3 days')::text) IS NOT NULL AS reset;
SELECT code, message, detail LIKE '%freshness check failed; observed {"newest": %' AS detail_names_newest
  FROM regress.run_failing('ck');
SELECT passed, observed->'max_age' AS max_age FROM etl.check_results
 WHERE run_id = (SELECT max(run_id) FROM etl.runs) AND kind = 'freshness';

-- the checks compile into one aggregate pass over the batch: one SELECT
-- over the transform, one FILTER per row-level check, the foreign key as a
-- probe inside it, the z-score as one aggregate over the finite values
-- (etl_zstats: the planner computes it once for its four columns)
SELECT etl_check_sql('ck');
SELECT (SELECT count(*) FROM regexp_matches(etl_check_sql('ck'), 'count\(\*\) FILTER \(WHERE', 'g')) AS filters,
       (SELECT count(*) FROM etl.checks
         WHERE kind NOT IN ('unique', 'z_score', 'row_count', 'freshness')) AS row_level_checks;

-- validation when a check is added
SELECT etl_add_check('ck', 'sometimes', column_name => 'total');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- the kinds etl.checks.kind admits (its CHECK constraint) are exactly the
-- kinds of the kind table, which the hint of an unknown kind lists
CREATE FUNCTION pg_temp.kind_hint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    hint text;
BEGIN
    PERFORM etl_add_check('ck', 'sometimes');
    RETURN NULL;
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN hint;
END $$;
WITH tab AS (
    SELECT pg_catalog.array_agg(k ORDER BY k) AS kinds
      FROM pg_catalog.regexp_split_to_table(pg_catalog.rtrim(pg_catalog.substring(
               pg_temp.kind_hint(), 'Valid values are: (.*)'), '.'), ', ') AS k),
con AS (
    SELECT pg_catalog.array_agg(m[1] ORDER BY m[1]) AS kinds
      FROM pg_catalog.pg_constraint AS c,
           pg_catalog.regexp_matches(pg_catalog.pg_get_constraintdef(c.oid), '''([^'']+)''', 'g') AS m
     WHERE c.conrelid = 'etl.checks'::pg_catalog.regclass AND c.contype = 'c'
       AND pg_catalog.pg_get_constraintdef(c.oid) LIKE '%(kind %')
SELECT pg_catalog.cardinality(tab.kinds) AS table_kinds,
       pg_catalog.cardinality(con.kinds) AS constraint_kinds,
       (SELECT pg_catalog.array_agg(k) FROM pg_catalog.unnest(tab.kinds) AS k
         WHERE k <> ALL (con.kinds)) AS only_in_table,
       (SELECT pg_catalog.array_agg(k) FROM pg_catalog.unnest(con.kinds) AS k
         WHERE k <> ALL (tab.kinds)) AS only_in_constraint
  FROM tab, con;
SELECT etl_add_check('ck', 'not_null', column_name => 'totl');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'not_null');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'row_count', column_name => 'total', params => '{"min": 1}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'accepted_values', column_name => 'status', params => '{"values": "pending"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'range', column_name => 'total', params => '{"min": "cheap"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'range', column_name => 'total');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'positive', column_name => 'status');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'z_score', column_name => 'total', params => '{"threshold": -1}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'foreign_key', column_name => 'customer_id', params => '{"references": "ck_dw.nope(customer_id)"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'foreign_key', column_name => 'customer_id', params => '{"references": "ck_dw.dim_customers(id)"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'foreign_key', column_name => 'customer_id', params => '{"references": "dim_customers"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'expression', params => '{"sql": "total > 0; DROP TABLE ck_dw.orders"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- a trailing semicolon would break every run's statements: refused too
SELECT etl_add_check('ck', 'expression', params => '{"sql": "total > 0;"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'expression', params => '{"sql": "total > 0 ; -- done"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'expression', params => '{"sql": "1 FROM pg_class"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'expression', params => '{"sql": "totl > 0"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'expression', params => '{"sql": "total + 1"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'expression', params => '{"sql": "sum(total) > 0"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'freshness', params => '{"max_age": 7200}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'not_null', column_name => 'total', severity => 'fatal');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'row_count', params => '{"min": 1}', severity => 'quarantine');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'not_null', column_name => 'total', name => repeat('n', 64));
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_add_check('ck', 'unique', column_name => 'email');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_drop_check('ck', 'nope');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- a change of the pipeline that would break a check is refused
SELECT etl_alter_pipeline('ck', transform => 'SELECT order_id, customer_id, status, total FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT count(*) AS checks FROM etl.checks;

SELECT etl_drop_pipeline('ck');
SELECT count(*) AS orphan_checks FROM etl.checks;
DROP SCHEMA ck_src, ck_dw CASCADE;

-- foreign keys: a small referenced table is probed as an array of its
-- values (integers: etl_not_in's set, read by each process; other types:
-- = ANY over an array parameter, a hash lookup),
-- a large one, or one of another type, as a subplan; all count the same
-- rows.  NULLs and duplicates among the
-- referenced values change nothing; an empty referenced table fails every
-- row with a value.
CREATE SCHEMA fk;
CREATE TABLE fk.src (id int PRIMARY KEY, ref int, big bigint, code text, at timestamptz NOT NULL);
INSERT INTO fk.src SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g END, g, 'c' || g,
                          now() - interval '1 hour'
  FROM generate_series(1, 40) g;
CREATE TABLE fk.dst (id int PRIMARY KEY, ref int, big bigint, code text);
CREATE TABLE fk.codes (v text);
INSERT INTO fk.codes SELECT 'c' || g FROM generate_series(1, 30) g;
CREATE TABLE fk.small (v int);
INSERT INTO fk.small SELECT g FROM generate_series(1, 30) g;
INSERT INTO fk.small VALUES (NULL), (5), (5);
CREATE TABLE fk.wide (v bigint);          -- another type than fk.src.ref
INSERT INTO fk.wide SELECT g FROM generate_series(1, 30) g;
CREATE TABLE fk.large (v int);            -- large by its statistics
INSERT INTO fk.large SELECT g FROM generate_series(1, 30) g;
INSERT INTO fk.large SELECT NULL FROM generate_series(1, 260000); -- the subplan leaves NULLs out too
ANALYZE fk.large;
SELECT reltuples > 250000 AS large_by_statistics FROM pg_class WHERE oid = 'fk.large'::regclass;
CREATE TABLE fk.empty (v int);
SELECT etl_create_pipeline('fk', 'fk.src', 'fk.dst', watermark_column => 'at') > 0 AS created;
SELECT etl_add_check('fk', 'foreign_key', column_name => 'ref', name => 'fk_small',
                     params => '{"references": "fk.small(v)"}', severity => 'warning');
SELECT etl_add_check('fk', 'foreign_key', column_name => 'ref', name => 'fk_wide',
                     params => '{"references": "fk.wide(v)"}', severity => 'warning');
SELECT etl_add_check('fk', 'foreign_key', column_name => 'ref', name => 'fk_large',
                     params => '{"references": "fk.large(v)"}', severity => 'warning');
SELECT etl_add_check('fk', 'foreign_key', column_name => 'ref', name => 'fk_empty',
                     params => '{"references": "fk.empty(v)"}', severity => 'warning');
SELECT etl_add_check('fk', 'foreign_key', column_name => 'big', name => 'fk_big_small',
                     params => '{"references": "fk.wide(v)"}', severity => 'warning');
SELECT etl_add_check('fk', 'foreign_key', column_name => 'code', name => 'fk_text',
                     params => '{"references": "fk.codes(v)"}', severity => 'warning');
SELECT regexp_split_to_table(etl_check_sql('fk'), E'\n') AS line OFFSET 1 LIMIT 7;
-- etl_not_in itself: NULLs match nothing; each parallel worker reads the
-- referenced table itself and counts as a single process does
SELECT etl_internal.etl_not_in(3, 'fk.small', 'v') AS three, etl_internal.etl_not_in(31, 'fk.small', 'v') AS thirty_one,
       etl_internal.etl_not_in(NULL, 'fk.small', 'v') AS null_value, etl_internal.etl_not_in(1, NULL, 'v') AS null_ref,
       etl_internal.etl_not_in(1, 'fk.empty', 'v') AS empty;
-- dense values are kept as a bitmap over their span, sparse ones in a set
-- (here also the extremes of int8)
CREATE TABLE fk.sparse (v bigint);
INSERT INTO fk.sparse SELECT g * 1000 FROM generate_series(1, 30) g;
INSERT INTO fk.sparse VALUES (-9223372036854775808), (9223372036854775807);
SELECT etl_internal.etl_not_in(2000, 'fk.sparse', 'v') AS two_thousand, etl_internal.etl_not_in(2001, 'fk.sparse', 'v') AS two_thousand_one,
       etl_internal.etl_not_in(-9223372036854775808, 'fk.sparse', 'v') AS min_int8,
       etl_internal.etl_not_in(9223372036854775807, 'fk.sparse', 'v') AS max_int8,
       etl_internal.etl_not_in(0, 'fk.sparse', 'v') AS zero;
CREATE TABLE fk.span (v bigint);
INSERT INTO fk.span VALUES (-9223372036854775808), (9223372036854775807), (0);
SELECT etl_internal.etl_not_in(0, 'fk.span', 'v') AS zero, etl_internal.etl_not_in(1, 'fk.span', 'v') AS one,
       etl_internal.etl_not_in(9223372036854775807, 'fk.span', 'v') AS max_int8;
SELECT x, etl_internal.etl_not_in(x, 'fk.small', 'v') AS missing FROM (VALUES (0), (1), (30), (31), (-5)) v(x);
-- arguments that change from row to row are read again
SELECT r, etl_internal.etl_not_in(1, r, 'v') AS missing FROM (VALUES ('fk.small'::regclass), ('fk.empty')) t(r);
-- a referenced table never analyzed is judged by its size: a big one keeps
-- the subplan
CREATE TABLE fk.unanalyzed (v int);
INSERT INTO fk.unanalyzed SELECT g FROM generate_series(1, 300000) g;
SELECT etl_add_check('fk', 'foreign_key', column_name => 'ref', name => 'fk_unanalyzed',
                     params => '{"references": "fk.unanalyzed(v)"}', severity => 'warning');
SELECT line FROM regexp_split_to_table(etl_check_sql('fk'), E'\n') AS line
 WHERE line LIKE '%fk.unanalyzed%';
SELECT etl_drop_check('fk', 'fk_unanalyzed');
CREATE TABLE fk.many AS SELECT g % 50 AS x FROM generate_series(1, 30000) g;
ANALYZE fk.many;
SELECT count(*) FILTER (WHERE etl_internal.etl_not_in(x, 'fk.small', 'v')) AS serial_missing FROM fk.many;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT count(*) FILTER (WHERE etl_internal.etl_not_in(x, 'fk.small', 'v')) FROM fk.many;
SELECT count(*) FILTER (WHERE etl_internal.etl_not_in(x, 'fk.small', 'v')) AS parallel_missing FROM fk.many;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT status, rows_inserted FROM etl_run('fk');
-- rows 31..40 with a value: 31..39 (40 is NULL) are missing from 1..30
SELECT check_name, passed, failing_rows, observed->'sample_keys' AS sample
  FROM etl.check_results WHERE run_id = (SELECT max(run_id) FROM etl.runs WHERE pipeline = 'fk')
 ORDER BY check_name;
-- a run plans each statement with its values, whatever the caller's
-- plan_cache_mode (a generic plan would search = ANY's array row by row)
SELECT etl_alter_pipeline('fk', transform => $$SELECT id, ref, big,
    current_setting('plan_cache_mode') AS code FROM etl_delta$$) > 0 AS altered;
SELECT etl_reset_watermark('fk');
SET plan_cache_mode = force_generic_plan;
SELECT status FROM etl_run('fk');
RESET plan_cache_mode;
SELECT DISTINCT code AS plan_cache_mode_in_a_run FROM fk.dst;
SELECT etl_drop_pipeline('fk');
DROP SCHEMA fk CASCADE;

-- positive, range (both bounds, one bound) and expression fail exactly their
-- rows: NULL is neither positive nor out of range, an expression that is
-- NULL fails (IS NOT TRUE); as warnings the batch loads, as critical
-- nothing does
CREATE SCHEMA pr;
CREATE TABLE pr.src (id int PRIMARY KEY, amount numeric, qty int, at timestamptz NOT NULL);
INSERT INTO pr.src VALUES (1, 10, 1, now() - interval '1 hour'), (2, 0, 5, now() - interval '1 hour'),
    (3, -4, 2, now() - interval '1 hour'), (4, 500, 200, now() - interval '1 hour'),
    (5, NULL, NULL, now() - interval '1 hour');
CREATE TABLE pr.dst (id int PRIMARY KEY, amount numeric, qty int);
SELECT etl_create_pipeline('pr', 'pr.src', 'pr.dst', watermark_column => 'at') > 0 AS created;
SELECT etl_add_check('pr', 'positive', column_name => 'amount', severity => 'warning');
SELECT etl_add_check('pr', 'range', column_name => 'qty', params => '{"min": 1, "max": 100}',
                     severity => 'warning');
SELECT etl_add_check('pr', 'range', column_name => 'amount', params => '{"max": 100}',
                     name => 'pr_amount_at_most_100', severity => 'warning');
SELECT etl_add_check('pr', 'expression', params => '{"sql": "amount * qty < 1000"}',
                     name => 'pr_value', severity => 'warning');
SELECT status, rows_inserted FROM etl_run('pr');
SELECT check_name, passed, failing_rows, observed->'sample_keys' AS sample_keys
  FROM etl.check_results WHERE run_id = (SELECT max(run_id) FROM etl.runs WHERE pipeline = 'pr')
 ORDER BY check_name;
SELECT count(*) AS loaded FROM pr.dst;
TRUNCATE pr.dst;
SELECT etl_reset_watermark('pr');
SELECT etl_drop_check('pr', 'pr_value');
SELECT etl_add_check('pr', 'expression', params => '{"sql": "amount * qty < 1000"}',
                     name => 'pr_value', severity => 'critical');
SELECT code, detail FROM regress.run_failing('pr');
SELECT status FROM etl.runs WHERE run_id = (SELECT max(run_id) FROM etl.runs WHERE pipeline = 'pr');
SELECT count(*) AS loaded_after_critical FROM pr.dst;
SELECT etl_drop_pipeline('pr');
DROP SCHEMA pr CASCADE;
