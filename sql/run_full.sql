-- run_full: mode full, the whole source replaces the target atomically

CREATE SCHEMA fs;
CREATE TABLE fs.products (sku text PRIMARY KEY, name text, price numeric(8,2));
INSERT INTO fs.products VALUES ('a', 'Apple', 1.10), ('b', 'Banana', 0.50),
                               ('c', 'Cherry', 4.00), ('d', 'Date', 3.20);
CREATE TABLE fs.dim_product (sku text PRIMARY KEY, name text, price numeric(8,2),
                             _etl_row_hash bytea, _etl_run_id bigint);

-- no watermark, no batch_size
SELECT etl_create_pipeline('full1', 'fs.products', 'fs.dim_product', mode => 'full',
                           watermark_column => 'price');
SELECT etl_create_pipeline('full1', 'fs.products', 'fs.dim_product', mode => 'full',
                           batch_size => 100);
SELECT etl_create_pipeline('full1', 'fs.products', 'fs.dim_product', mode => 'full') > 0 AS created;
SELECT mode, watermark_column, watermark FROM etl.pipelines WHERE name = 'full1';

SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged,
       watermark_from, watermark_to
  FROM etl_run('full1');
-- unchanged: nothing written
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('full1');
SELECT count(DISTINCT _etl_run_id) AS runs_that_wrote FROM fs.dim_product;

-- deletes, updates and inserts in the source, all applied
DELETE FROM fs.products WHERE sku IN ('a', 'd');
UPDATE fs.products SET price = 0.55 WHERE sku = 'b';
INSERT INTO fs.products VALUES ('e', 'Elderberry', 7.00);
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('full1');
SELECT sku, name, price FROM fs.dim_product ORDER BY sku;
SELECT count(*) AS differences FROM (
    (SELECT sku, name, price FROM fs.products EXCEPT SELECT sku, name, price FROM fs.dim_product)
    UNION ALL
    (SELECT sku, name, price FROM fs.dim_product EXCEPT SELECT sku, name, price FROM fs.products)) d;

-- an empty source empties the target
BEGIN;
DELETE FROM fs.products;
SELECT rows_extracted, rows_deleted FROM etl_run('full1');
SELECT count(*) FROM fs.dim_product;
ROLLBACK;

-- a failed run leaves the target as it was
SELECT etl_add_check('full1', 'positive', 'price', name => 'price_positive');
UPDATE fs.products SET price = -1 WHERE sku = 'c';
SELECT code, message FROM regress.run_failing('full1');
SELECT sku, name, price FROM fs.dim_product ORDER BY sku;
SELECT etl_drop_check('full1', 'price_positive');
UPDATE fs.products SET price = 4.00 WHERE sku = 'c';

-- a transform with a different key, and a bad row isolated: the target
-- keeps that key's old row, it is not deleted as vanished
CREATE TABLE fs.by_name (name text PRIMARY KEY, cents int NOT NULL CHECK (cents < 600));
SELECT etl_create_pipeline('full2', 'fs.products', 'fs.by_name', mode => 'full',
    error_threshold => 70, transform => 'SELECT upper(name) AS name, (price * 100)::int AS cents FROM etl_delta') > 0 AS created;
SELECT rows_extracted, rows_inserted, rows_rejected FROM etl_run('full2');
SELECT * FROM fs.by_name ORDER BY name;
UPDATE fs.products SET price = 6.50 WHERE sku = 'c';
UPDATE fs.products SET price = 0.60 WHERE sku = 'b';
SELECT rows_extracted, rows_updated, rows_deleted, rows_rejected FROM etl_run('full2');
SELECT * FROM fs.by_name ORDER BY name;

-- without a key (load append): the target is replaced row for row
CREATE TABLE fs.price_list (name text, price numeric(8,2));
INSERT INTO fs.price_list VALUES ('stale', 0);
SELECT etl_create_pipeline('full3', 'fs.products', 'fs.price_list', mode => 'full',
    load => 'append', transform => 'SELECT name, price FROM etl_delta') > 0 AS created;
SELECT rows_extracted, rows_inserted, rows_deleted FROM etl_run('full3');
SELECT rows_extracted, rows_inserted, rows_deleted FROM etl_run('full3');
SELECT * FROM fs.price_list ORDER BY name;
