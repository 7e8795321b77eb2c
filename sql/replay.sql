-- replay: a dead letter whose source row has a newer version is not
-- replayed over it, but marked resolved as superseded

CREATE SCHEMA rp_src;
CREATE SCHEMA rp_dw;
CREATE TABLE rp_src.items (id int PRIMARY KEY, qty text, at timestamptz NOT NULL);
CREATE TABLE rp_dw.items (id int PRIMARY KEY, qty int);
INSERT INTO rp_src.items VALUES (1, '10', '2024-01-01 00:00'), (2, 'x20', '2024-01-01 00:01'),
                                (3, 'x30', '2024-01-01 00:02'), (4, 'x40', '2024-01-01 00:03');
SELECT etl_create_pipeline('rp_items', 'rp_src.items', 'rp_dw.items', watermark_column => 'at',
    error_threshold => 100, transform => 'SELECT id, qty::int AS qty FROM etl_delta') > 0 AS created;
-- items 2, 3 and 4 fail the cast and become dead letters
SELECT status, rows_inserted, rows_rejected FROM etl_run('rp_items');
-- item 2 is corrected at the source and loaded by the next run ...
UPDATE rp_src.items SET qty = '25', at = '2024-01-02' WHERE id = 2;
SELECT status, rows_extracted, rows_inserted FROM etl_run('rp_items');
-- ... item 3 is changed too, not loaded yet; item 4 stays as it was
UPDATE rp_src.items SET qty = 'x35', at = '2024-01-03' WHERE id = 3;
-- the transform learns to read 'x20'; the replay loads item 4 alone: the
-- dead letters of items 2 and 3 hold older versions than the source
SELECT etl_alter_pipeline('rp_items', transform =>
    $$SELECT id, ltrim(qty, 'x')::int AS qty FROM etl_delta$$) > 0 AS altered;
SELECT * FROM etl_retry_dead_letters('rp_items');
SELECT id, qty FROM rp_dw.items ORDER BY id;
SELECT record->>'id' AS id, record->>'qty' AS qty, status, resolution, retry_count
  FROM etl.dead_letters WHERE pipeline = 'rp_items' ORDER BY (record->>'id')::int;
-- the next run loads item 3's new version
SELECT status, rows_extracted, rows_inserted, rows_updated FROM etl_run('rp_items');
SELECT id, qty FROM rp_dw.items ORDER BY id;
SELECT * FROM etl_retry_dead_letters('rp_items');

-- a source without a primary key (a view): its rows are found by the
-- pipeline's key
CREATE TABLE rp_dw.items_v (id int PRIMARY KEY, qty int);
CREATE VIEW rp_src.items_v AS SELECT id, qty, at FROM rp_src.items;
UPDATE rp_src.items SET qty = 'x50', at = '2024-01-04' WHERE id = 1;
SELECT etl_create_pipeline('rp_items_v', 'rp_src.items_v', 'rp_dw.items_v', watermark_column => 'at',
    error_threshold => 100, transform => 'SELECT id, qty::int AS qty FROM etl_delta') > 0 AS created;
SELECT status, rows_inserted, rows_rejected FROM etl_run('rp_items_v');
UPDATE rp_src.items SET qty = '55', at = '2024-01-05' WHERE id = 1;
SELECT status, rows_extracted, rows_updated, rows_inserted FROM etl_run('rp_items_v');
SELECT etl_alter_pipeline('rp_items_v', transform =>
    $$SELECT id, ltrim(qty, 'x')::int AS qty FROM etl_delta$$) > 0 AS altered;
SELECT * FROM etl_retry_dead_letters('rp_items_v');
SELECT id, qty FROM rp_dw.items_v WHERE id = 1;
SELECT status, resolution FROM etl.dead_letters
 WHERE pipeline = 'rp_items_v' AND record->>'id' = '1';

SELECT etl_drop_pipeline('rp_items'), etl_drop_pipeline('rp_items_v');
DROP SCHEMA rp_src, rp_dw CASCADE;
