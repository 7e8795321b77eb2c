-- run_cdc: mode cdc, change rows applied in order, deletes included

CREATE SCHEMA cdc;
-- a Debezium-shaped change table: the operation, the position, the row
CREATE TABLE cdc.customer_changes (_cdc_lsn pg_lsn NOT NULL, _cdc_operation text NOT NULL,
                                   _cdc_source text, id int, name text, email text);
CREATE TABLE cdc.customers (id int PRIMARY KEY, name text, email text, _cdc_source text);

-- definitions: the operation column must exist and be text, keys must be in
-- the change rows, the watermark orderable
SELECT etl_create_pipeline('cdc_bad', 'cdc.customer_changes', 'cdc.customers', mode => 'cdc',
                           options => '{"op_column": "op"}');
CREATE TABLE cdc.int_op (_cdc_lsn pg_lsn, _cdc_operation int, id int);
SELECT etl_create_pipeline('cdc_bad', 'cdc.int_op', 'cdc.customers', mode => 'cdc');
CREATE TABLE cdc.no_key (_cdc_lsn pg_lsn, _cdc_operation text, customer int, name text);
SELECT etl_create_pipeline('cdc_bad', 'cdc.no_key', 'cdc.customers', mode => 'cdc',
    transform => 'SELECT customer AS id, name FROM etl_delta');
SELECT etl_create_pipeline('cdc_bad', 'cdc.customer_changes', 'cdc.customers', mode => 'cdc',
                           watermark_column => 'name');
SELECT etl_create_pipeline('cdc1', 'cdc.customer_changes', 'cdc.customers', mode => 'cdc') > 0 AS created;
SELECT mode, watermark_column, options FROM etl.pipelines WHERE name = 'cdc1';

-- only each key's last change counts; deletes of keys never loaded are no-ops;
-- _cdc_ columns are not loaded (the target's _cdc_source stays NULL)
INSERT INTO cdc.customer_changes VALUES
    ('0/10', 'c', 'db1', 1, 'Ann', 'ann@example.com'),
    ('0/20', 'c', 'db1', 2, 'Bob', 'bob@example.com'),
    ('0/30', 'u', 'db1', 1, 'Ann Lee', 'ann@example.com'),
    ('0/40', 'd', 'db1', 2, NULL, NULL),
    ('0/50', 'r', 'db1', 3, 'Cid', 'cid@example.com');
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted, watermark_to FROM etl_run('cdc1');
SELECT * FROM cdc.customers ORDER BY id;

-- operations in any case; a delete and an update
INSERT INTO cdc.customer_changes VALUES
    ('0/60', 'D', 'db1', 1, NULL, NULL),
    ('0/70', 'U', 'db1', 3, 'Cid', 'cid@new.example.com'),
    ('0/80', 'I', 'db1', 4, 'Dee', 'dee@example.com');
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted, watermark_to FROM etl_run('cdc1');
SELECT * FROM cdc.customers ORDER BY id;
-- nothing new
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('cdc1');

-- an unknown operation fails the run before anything loads; the watermark stays
INSERT INTO cdc.customer_changes VALUES
    ('0/90', 'u', 'db1', 4, 'Dee Dee', 'dee@example.com'),
    ('0/A0', 'x', 'db1', 5, 'Eve', 'eve@example.com');
SELECT * FROM regress.run_failing('cdc1');
SELECT watermark FROM etl.pipelines WHERE name = 'cdc1';
SELECT * FROM cdc.customers ORDER BY id;
DELETE FROM cdc.customer_changes WHERE _cdc_operation = 'x';
SELECT rows_extracted, rows_updated, watermark_to FROM etl_run('cdc1');
-- the target equals the last state of each key
SELECT count(*) AS differences FROM (
    (SELECT id, name, email FROM (SELECT DISTINCT ON (id) * FROM cdc.customer_changes ORDER BY id, _cdc_lsn DESC) l
      WHERE lower(_cdc_operation) <> 'd'
     EXCEPT SELECT id, name, email FROM cdc.customers)
    UNION ALL
    (SELECT id, name, email FROM cdc.customers
     EXCEPT SELECT id, name, email FROM (SELECT DISTINCT ON (id) * FROM cdc.customer_changes ORDER BY id, _cdc_lsn DESC) l
      WHERE lower(_cdc_operation) <> 'd')) d;

-- other names for the columns, a transform, an integer position
CREATE TABLE cdc.orders_log (seq bigint NOT NULL, op char(1) NOT NULL, order_id int, amount_cents int);
CREATE TABLE cdc.orders (order_id int PRIMARY KEY, amount numeric(10,2));
SELECT etl_create_pipeline('cdc2', 'cdc.orders_log', 'cdc.orders', mode => 'cdc',
    watermark_column => 'seq', options => '{"op_column": "op"}', error_threshold => 60,
    transform => 'SELECT order_id, amount_cents / 100.0 AS amount FROM etl_delta') > 0 AS created;
INSERT INTO cdc.orders_log VALUES (1, 'c', 10, 1000), (2, 'c', 11, 2000), (3, 'u', 10, 1500),
                                  (4, 'd', 11, NULL);
SELECT rows_extracted, rows_inserted, rows_deleted FROM etl_run('cdc2');
SELECT * FROM cdc.orders ORDER BY order_id;
-- a key deleted and created again in one batch: the last change wins
INSERT INTO cdc.orders_log VALUES (5, 'd', 10, NULL), (6, 'c', 10, 999), (7, 'c', 12, 1), (8, 'd', 12, NULL);
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('cdc2');
SELECT * FROM cdc.orders ORDER BY order_id;
-- bad rows of the upserts become dead letters; the deletes still apply
ALTER TABLE cdc.orders ADD CONSTRAINT positive CHECK (amount > 0);
INSERT INTO cdc.orders_log VALUES (9, 'c', 13, -5), (10, 'c', 14, 700), (11, 'd', 10, NULL);
SELECT rows_extracted, rows_inserted, rows_deleted, rows_rejected FROM etl_run('cdc2');
SELECT * FROM cdc.orders ORDER BY order_id;
SELECT stage, error_message, record->>'order_id' AS order_id FROM etl.dead_letters
 WHERE pipeline = 'cdc2' ORDER BY id;
