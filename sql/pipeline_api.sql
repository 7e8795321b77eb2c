-- pipeline_api: create, alter, drop, reset; every refusal with its SQLSTATE
CREATE SCHEMA api_src;
CREATE SCHEMA api_dw;
CREATE TABLE api_src.orders (
    order_id bigint PRIMARY KEY, customer_id bigint, status text,
    total numeric(12,2), updated_at timestamptz, note text, created_at timestamptz);
CREATE SEQUENCE api_src.cached_seq CACHE 20;
CREATE TABLE api_src.cached (id bigint DEFAULT nextval('api_src.cached_seq') PRIMARY KEY, status text);
CREATE TABLE api_src.cached_identity (id bigint GENERATED ALWAYS AS IDENTITY (CACHE 10) PRIMARY KEY, status text);
CREATE TABLE api_src.serial_ok (id bigserial PRIMARY KEY, status text);
CREATE TABLE api_dw.orders (
    order_id bigint PRIMARY KEY, customer_id bigint, status text,
    total numeric(12,2), loc point, _etl_row_hash bytea);
CREATE TABLE api_dw.nokey (order_id bigint, status text);
CREATE TABLE api_dw.ids (id bigint PRIMARY KEY, status text);
CREATE VIEW api_dw.a_view AS SELECT 1 AS order_id;
-- a function with a side effect: a transform calling it must never run it
CREATE TABLE api_src.side_effects (at timestamptz);
CREATE FUNCTION api_src.side_effect() RETURNS text LANGUAGE sql
    AS $$INSERT INTO api_src.side_effects VALUES (now()) RETURNING 'x'$$;

-- a valid pipeline with defaults
SELECT etl_create_pipeline('p1', 'api_src.orders', 'api_dw.orders',
                           watermark_column => 'updated_at') > 0 AS created;
SELECT name, owner::text = current_user AS owner_is_caller, source, target, key, mode, watermark_column, overlap,
       transform, load, batch_size, error_threshold, max_attempts,
       retry_policy, retry_base_delay, retry_max_delay, on_schema_change,
       options, watermark
  FROM etl.pipelines WHERE name = 'p1';

-- every parameter stored as given; relation names resolved with the
-- caller's search_path and stored qualified; trailing semicolon dropped
SET search_path = api_src, public;
SELECT etl_create_pipeline(
    name => 'p2', source => 'orders', target => 'api_dw.orders',
    key => ARRAY['order_id'], mode => 'timestamp',
    watermark_column => 'updated_at', overlap => '5 minutes',
    transform => $$SELECT order_id, upper(status) AS status FROM etl_delta;  -- done$$,
    load => 'append', batch_size => 500, error_threshold => 2.5,
    max_attempts => 5, retry_policy => 'linear',
    retry_base_delay => '2 seconds', retry_max_delay => '1 minute',
    on_schema_change => 'ignore', options => '{"note": "x"}') > 0 AS created;
RESET search_path;
SELECT name, source, target, key, mode, watermark_column, overlap, transform,
       load, batch_size, error_threshold, max_attempts, retry_policy,
       retry_base_delay, retry_max_delay, on_schema_change, options
  FROM etl.pipelines WHERE name = 'p2';

SELECT count(*) AS pipelines_before_refusals FROM etl.pipelines;

-- names
SELECT etl_create_pipeline(NULL, 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline(repeat('n', 64), 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline(E'two\nlines', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('p1', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE

-- relations
SELECT etl_create_pipeline('bad', 'api_src.missing', 'api_dw.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.missing', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', NULL, 'api_dw.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.a_view', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_src.orders', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE

-- modes, loads, policies
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', mode => 'sometimes', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', load => 'upsert', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', retry_policy => 'forever', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', on_schema_change => 'drop', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', mode => 'snapshot', options => '{"delete_mode": "sometimes"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', load => 'partition_swap', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE

-- watermark column
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'changed_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'status');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', mode => 'serial', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- serial ids from a cached sequence could commit out of order
SELECT etl_create_pipeline('bad', 'api_src.cached', 'api_dw.ids', mode => 'serial', watermark_column => 'id');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.cached_identity', 'api_dw.ids', mode => 'serial', watermark_column => 'id');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('serial_ok', 'api_src.serial_ok', 'api_dw.ids', mode => 'serial', watermark_column => 'id') > 0 AS created;

-- key
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', key => ARRAY['order_no'], watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.nokey', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', key => '{}', watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', key => ARRAY['order_id', 'order_id'], watermark_column => 'updated_at');
\echo sqlstate :LAST_ERROR_SQLSTATE

-- transform
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id FROM etl_delta; DROP TABLE api_dw.orders');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'DELETE FROM api_dw.orders');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id INTO api_dw.copy FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'WITH d AS (DELETE FROM api_dw.orders RETURNING order_id) SELECT order_id FROM d');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, statuss AS status FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT d.order_id FROM etl_delta d JOIN customers c USING (customer_id)');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, note FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, upper(status) FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, point(1, 2) AS total FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, status, status FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT status FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, ''\x''::bytea AS _etl_row_hash FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, $1 AS status FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- analysed, never executed
SELECT etl_create_pipeline('side', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
    transform => 'SELECT order_id, api_src.side_effect() AS status FROM etl_delta') > 0 AS created;
SELECT count(*) AS side_effects FROM api_src.side_effects;
SELECT etl_drop_pipeline('side');

-- settings
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at', batch_size => 0);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at', batch_size => -5);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at', error_threshold => -1);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at', error_threshold => 100.5);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at', max_attempts => 0);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at',
                           retry_base_delay => '10 minutes', retry_max_delay => '1 minute');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at', overlap => '-1 minute');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.serial_ok', 'api_dw.ids', mode => 'serial', watermark_column => 'id', overlap => '1 minute');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('bad', 'api_src.orders', 'api_dw.orders', watermark_column => 'updated_at', options => '[1, 2]');
\echo sqlstate :LAST_ERROR_SQLSTATE

-- nothing was stored by any refusal
SELECT count(*) AS pipelines_after_refusals FROM etl.pipelines;

-- alter: NULL = unchanged; the whole definition is validated again
SELECT etl_alter_pipeline('p1', batch_size => 1000, max_attempts => 7) = pipeline_id AS altered
  FROM etl.pipelines WHERE name = 'p1';
SELECT batch_size, max_attempts, watermark_column, retry_policy FROM etl.pipelines WHERE name = 'p1';
SELECT etl_alter_pipeline('p1', watermark_column => 'status');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_alter_pipeline('p1', transform => 'SELECT nope FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_alter_pipeline('missing', batch_size => 1);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT batch_size, max_attempts, watermark_column, transform FROM etl.pipelines WHERE name = 'p1';
-- transform => '' restores the default transform
SELECT etl_alter_pipeline('p2', transform => '') > 0 AS altered;
SELECT transform IS NULL AS default_transform FROM etl.pipelines WHERE name = 'p2';

-- reset_watermark: typed, canonical, never in the future
SET TimeZone = 'UTC';
SELECT etl_reset_watermark('p1', '2024-01-01 10:00');
SELECT watermark FROM etl.pipelines WHERE name = 'p1';
SELECT etl_reset_watermark('p1', 'yesterday-ish');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('p1', '2999-01-01');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('serial_ok', '12x');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('serial_ok', '42');
SELECT watermark FROM etl.pipelines WHERE name = 'serial_ok';
-- a refused alter keeps the watermark; changing the watermark column resets it
SELECT etl_alter_pipeline('serial_ok', mode => 'timestamp', watermark_column => 'id');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT watermark FROM etl.pipelines WHERE name = 'serial_ok';
SELECT etl_alter_pipeline('p1', watermark_column => 'created_at') > 0 AS altered;
SELECT watermark_column, watermark IS NULL AS watermark_reset FROM etl.pipelines WHERE name = 'p1';
SELECT etl_reset_watermark('p1', '2024-01-01 10:00');
SELECT etl_reset_watermark('p1', NULL) IS NULL AS reset_to_null;
SELECT watermark IS NULL AS no_watermark FROM etl.pipelines WHERE name = 'p1';
RESET TimeZone;

-- drop
SELECT etl_drop_pipeline('p2');
SELECT etl_drop_pipeline('p2');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT name FROM etl.pipelines ORDER BY name;
SELECT etl_drop_pipeline('p1'), etl_drop_pipeline('serial_ok');
DROP SCHEMA api_src, api_dw CASCADE;
