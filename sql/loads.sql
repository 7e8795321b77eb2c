-- loads: merge writes only what changed; append skips known keys;
-- delete_insert replaces by key
CREATE SCHEMA ld_src;
CREATE SCHEMA ld_dw;
CREATE TABLE ld_src.items (id int PRIMARY KEY, name text, price numeric(8,2),
                           tags jsonb, at timestamptz);
INSERT INTO ld_src.items
SELECT g, 'item ' || g, g * 1.5, jsonb_build_object('g', g), '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 100) g;

-- merge into a target without _etl_row_hash: columns are compared
-- (jsonb and numeric with their own equality), unchanged rows untouched
CREATE TABLE ld_dw.items (id int PRIMARY KEY, name text, price numeric(8,2),
                          tags jsonb, note text DEFAULT 'kept');
SELECT etl_create_pipeline('ld_merge', 'ld_src.items', 'ld_dw.items',
                           watermark_column => 'at') > 0 AS created;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('ld_merge');
-- a first load into an empty target inserts; a second pass over the same
-- rows (watermark reset) writes no tuple
UPDATE ld_dw.items SET note = 'edited here' WHERE id = 5;
CREATE TEMP TABLE snap AS SELECT id, ctid AS tid, xmin::text AS xid FROM ld_dw.items;
SELECT etl_reset_watermark('ld_merge') IS NULL AS reset;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('ld_merge');
SELECT count(*) AS rewritten FROM snap s JOIN ld_dw.items i USING (id)
 WHERE (i.ctid, i.xmin::text) <> (s.tid, s.xid);
-- a change to one column of one row updates exactly that row; columns the
-- pipeline does not load keep their value
UPDATE ld_src.items SET tags = '{"g": 7, "x": true}', at = '2024-06-01' WHERE id = 7;
UPDATE ld_src.items SET price = 15.00, at = '2024-06-01' WHERE id = 10;  -- same value
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('ld_merge');
SELECT count(*) AS rewritten FROM snap s JOIN ld_dw.items i USING (id)
 WHERE (i.ctid, i.xmin::text) <> (s.tid, s.xid);
SELECT id, tags, note FROM ld_dw.items WHERE id IN (5, 7) ORDER BY id;
-- NULL to a value and back are changes
UPDATE ld_src.items SET name = NULL, at = '2024-06-02' WHERE id = 8;
SELECT rows_updated FROM etl_run('ld_merge');
UPDATE ld_src.items SET name = '', at = '2024-06-03' WHERE id = 8;
SELECT rows_updated FROM etl_run('ld_merge');
SELECT name IS NULL AS is_null, name = '' AS is_empty FROM ld_dw.items WHERE id = 8;

-- append: keys already in the target are skipped, never updated
CREATE TABLE ld_dw.items_log (id int PRIMARY KEY, name text, price numeric(8,2));
INSERT INTO ld_dw.items_log VALUES (1, 'preexisting', 0);
SELECT etl_create_pipeline('ld_append', 'ld_src.items', 'ld_dw.items_log',
                           watermark_column => 'at', load => 'append') > 0 AS created;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('ld_append');
SELECT count(*) AS rows, min(name) FILTER (WHERE id = 1) AS first FROM ld_dw.items_log;
-- append without a key: every row is inserted (a reset reloads them only
-- when forced: steps_exact)
CREATE TABLE ld_dw.items_history (id int, name text, price numeric(8,2));
SELECT etl_create_pipeline('ld_history', 'ld_src.items', 'ld_dw.items_history',
                           watermark_column => 'at', load => 'append') > 0 AS created;
SELECT key FROM etl.pipelines WHERE name = 'ld_history';
SELECT rows_inserted FROM etl_run('ld_history');
SELECT etl_reset_watermark('ld_history', NULL, force => true) IS NULL AS reset;
SELECT rows_inserted FROM etl_run('ld_history');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM ld_dw.items_history;

-- delete_insert: the batch's keys are deleted, then the batch inserted (a key
-- the target had counts as an updated row)
CREATE TABLE ld_dw.items_replace (id int PRIMARY KEY, name text, price numeric(8,2),
                                  _etl_run_id bigint, _etl_loaded_at timestamptz);
INSERT INTO ld_dw.items_replace (id, name, price) VALUES (1, 'old', 0), (1000, 'untouched', 0);
SELECT etl_create_pipeline('ld_replace', 'ld_src.items', 'ld_dw.items_replace',
                           watermark_column => 'at', load => 'delete_insert') > 0 AS created;
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('ld_replace');
SELECT id, name FROM ld_dw.items_replace WHERE id IN (1, 1000) ORDER BY id;
UPDATE ld_src.items SET name = 'renamed', at = '2024-07-01' WHERE id IN (2, 3);
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('ld_replace');
SELECT count(*) AS rows, count(*) FILTER (WHERE name = 'renamed') AS renamed,
       count(DISTINCT _etl_run_id) AS runs
  FROM ld_dw.items_replace;

-- a transform that filters and joins a dimension (schema-qualified)
CREATE TABLE ld_src.categories (id int PRIMARY KEY, label text);
INSERT INTO ld_src.categories VALUES (0, 'even'), (1, 'odd');
CREATE TABLE ld_dw.labelled (id int PRIMARY KEY, label text, _etl_row_hash bytea);
SELECT etl_create_pipeline('ld_join', 'ld_src.items', 'ld_dw.labelled', watermark_column => 'at',
    transform => $$SELECT d.id, c.label FROM etl_delta d
                   JOIN ld_src.categories c ON c.id = d.id % 2
                   WHERE d.id <= 10$$) > 0 AS created;
SELECT rows_extracted, rows_inserted FROM etl_run('ld_join');
SELECT label, count(*) FROM ld_dw.labelled GROUP BY label ORDER BY label;

-- keys of different types in batch and target: an int batch key matches
-- a text target key by the text it is stored as, on every run (not only on
-- the first, which inserts)
CREATE TABLE ld_dw.items_by_text (id text PRIMARY KEY, name text);
SELECT etl_create_pipeline('ld_textkey', 'ld_src.items', 'ld_dw.items_by_text',
                           watermark_column => 'at') > 0 AS created;
SELECT status, rows_inserted, rows_updated FROM etl_run('ld_textkey');
UPDATE ld_src.items SET name = 'retyped', at = '2024-08-01' WHERE id IN (4, 40);
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('ld_textkey');
SELECT count(*) AS differences FROM (
    SELECT id::text, name FROM ld_src.items
    EXCEPT SELECT id, name FROM ld_dw.items_by_text) d;
SELECT id, name FROM ld_dw.items_by_text WHERE name = 'retyped' ORDER BY id;
-- delete_insert too
SELECT etl_alter_pipeline('ld_textkey', load => 'delete_insert') > 0 AS altered;
UPDATE ld_src.items SET name = 'retyped again', at = '2024-08-02' WHERE id = 4;
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('ld_textkey');
SELECT count(*) AS rows, count(*) FILTER (WHERE name = 'retyped again') AS again
  FROM ld_dw.items_by_text;

-- without _etl_row_hash, a row is unchanged when its stored values equal
-- the batch's converted as the load converts them: a price computed as a
-- raw numeric is rounded to the target's numeric(12,2) before comparing,
-- so a re-run updates nothing
CREATE TABLE ld_dw.prices (id int PRIMARY KEY, price numeric(12,2), code varchar(3));
SELECT etl_create_pipeline('ld_prices', 'ld_src.items', 'ld_dw.prices', watermark_column => 'at',
    transform => $$SELECT id, price * 1.111 AS price, left(name, 3) AS code FROM etl_delta$$) > 0 AS created;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('ld_prices');
SELECT etl_reset_watermark('ld_prices') IS NULL AS reset;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('ld_prices');
SELECT count(*) AS differences FROM (
    SELECT id, (price * 1.111)::numeric(12,2), left(name, 3)::varchar(3) FROM ld_src.items
    EXCEPT SELECT id, price, code FROM ld_dw.prices) d;
-- a value too long for varchar(3) is not "equal" to its truncation: the
-- update is tried and the row rejected (22001), as an insert would be
SELECT etl_alter_pipeline('ld_prices',
    transform => $$SELECT id, price * 1.111 AS price, name AS code FROM etl_delta$$,
    error_threshold => 100) > 0 AS altered;
UPDATE ld_dw.prices SET code = 'ite' WHERE id = 1;
UPDATE ld_src.items SET name = 'item', at = '2024-08-03' WHERE id = 1;
SELECT rows_extracted, rows_updated, rows_unchanged, rows_rejected FROM etl_run('ld_prices');
SELECT sqlstate, record->>'id' AS id FROM etl.dead_letters WHERE pipeline = 'ld_prices';

-- a key must be unique in the target: a primary key or a unique index on
-- exactly the key columns; otherwise the pipeline is refused, naming them
CREATE TABLE ld_dw.by_name (name text, price numeric(8,2));
SELECT etl_create_pipeline('ld_byname', 'ld_src.items', 'ld_dw.by_name',
                           watermark_column => 'at', key => ARRAY['name']);
\echo sqlstate :LAST_ERROR_SQLSTATE
CREATE INDEX ON ld_dw.by_name (name);
CREATE UNIQUE INDEX by_name_price ON ld_dw.by_name (name, price);
CREATE UNIQUE INDEX by_name_upper ON ld_dw.by_name (upper(name));
SELECT etl_create_pipeline('ld_byname', 'ld_src.items', 'ld_dw.by_name',
                           watermark_column => 'at', key => ARRAY['name']);
\echo sqlstate :LAST_ERROR_SQLSTATE
CREATE UNIQUE INDEX by_name_name ON ld_dw.by_name (name);
SELECT etl_create_pipeline('ld_byname', 'ld_src.items', 'ld_dw.by_name',
                           watermark_column => 'at', key => ARRAY['name']) > 0 AS created;
-- a run after the index is gone fails the same way
DROP INDEX ld_dw.by_name_name;
SELECT code, message, hint FROM regress.run_failing('ld_byname');
SELECT etl_alter_pipeline('ld_byname', key => ARRAY['name', 'price']) > 0 AS altered;

-- a NULL key (or a NULL part of one) matches no target row: each run that
-- read the row would insert it again.  It is a bad row instead, a dead
-- letter with its own message.  A key that comes more than once in one
-- batch (several versions in one increment) loads once: the latest version
-- (by the watermark) for merge and delete_insert, the first for append
CREATE TABLE ld_src.codes (id int PRIMARY KEY, code text, v int, at timestamptz NOT NULL);
INSERT INTO ld_src.codes VALUES
    (1, 'a', 1, '2024-01-01 00:01'), (2, 'b', 1, '2024-01-01 00:02'),
    (3, NULL, 1, '2024-01-01 00:03'), (4, 'a', 2, '2024-01-01 00:04'),
    (5, 'a', 3, '2024-01-01 00:05'), (6, 'b', 2, '2024-01-01 00:06');
CREATE TABLE ld_dw.codes (code text, v int, src_id int);
CREATE UNIQUE INDEX ON ld_dw.codes (code);
SELECT etl_create_pipeline('ld_codes', 'ld_src.codes', 'ld_dw.codes', watermark_column => 'at',
    key => ARRAY['code'], overlap => '10 years', error_threshold => 50,
    transform => 'SELECT code, v, id AS src_id FROM etl_delta') > 0 AS created;
-- three runs, each re-reading every row (overlap)
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('ld_codes');
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('ld_codes');
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('ld_codes');
SELECT code, v, src_id FROM ld_dw.codes ORDER BY code NULLS FIRST;
SELECT record->>'id' AS id, stage, sqlstate, error_message FROM etl.dead_letters
 WHERE pipeline = 'ld_codes' ORDER BY run_id;
-- a newer version arriving later updates the row as usual
INSERT INTO ld_src.codes VALUES (7, 'b', 3, '2024-01-01 00:07'), (8, 'b', 4, '2024-01-01 00:08');
SELECT status, rows_extracted, rows_updated, rows_unchanged, rows_rejected FROM etl_run('ld_codes');
SELECT code, v, src_id FROM ld_dw.codes ORDER BY code;
-- append keeps the first version; delete_insert the latest
CREATE TABLE ld_dw.codes_first (code text PRIMARY KEY, v int, src_id int);
SELECT etl_create_pipeline('ld_codes_first', 'ld_src.codes', 'ld_dw.codes_first',
    watermark_column => 'at', load => 'append', error_threshold => 50,
    transform => 'SELECT code, v, id AS src_id FROM etl_delta') > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ld_codes_first');
SELECT code, v, src_id FROM ld_dw.codes_first ORDER BY code;
CREATE TABLE ld_dw.codes_di (code text PRIMARY KEY, v int, src_id int);
INSERT INTO ld_dw.codes_di VALUES ('a', 0, 0);
SELECT etl_create_pipeline('ld_codes_di', 'ld_src.codes', 'ld_dw.codes_di',
    watermark_column => 'at', load => 'delete_insert', error_threshold => 50,
    transform => 'SELECT code, v, id AS src_id FROM etl_delta') > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged, rows_rejected FROM etl_run('ld_codes_di');
SELECT code, v, src_id FROM ld_dw.codes_di ORDER BY code;
-- no latest version when the transform is not row-local, or when one
-- source row yields a key twice: the run fails, saying so
TRUNCATE ld_dw.codes_di;
SELECT etl_reset_watermark('ld_codes_di') IS NULL AS reset;
SELECT etl_alter_pipeline('ld_codes_di',
    transform => 'SELECT DISTINCT code, v, 0 AS src_id FROM etl_delta WHERE code IS NOT NULL') > 0 AS altered;
SELECT code, message, hint FROM regress.run_failing('ld_codes_di');
SELECT etl_alter_pipeline('ld_codes_di',
    transform => $$SELECT d.code, m.v, d.id AS src_id FROM etl_delta d
                   CROSS JOIN (VALUES (1), (2)) AS m(v) WHERE d.code IS NOT NULL$$) > 0 AS altered;
SELECT code, message, hint FROM regress.run_failing('ld_codes_di');
SELECT count(*) AS loaded FROM ld_dw.codes_di;

-- etl.work_mem is -1 (the session's work_mem) or at least 64 kB, as
-- work_mem itself: a smaller value is refused when set, not by every run
SET etl.work_mem = 10;
\echo sqlstate :LAST_ERROR_SQLSTATE
SET etl.work_mem = 0;
\echo sqlstate :LAST_ERROR_SQLSTATE
SHOW etl.work_mem;
SELECT etl_reset_watermark('ld_merge') IS NULL AS reset;
SELECT status, rows_extracted, rows_updated FROM etl_run('ld_merge');
SET etl.work_mem = 64;
SELECT etl_reset_watermark('ld_merge') IS NULL AS reset;
SELECT status, rows_extracted, rows_updated FROM etl_run('ld_merge');
SET etl.work_mem = -1;
SELECT etl_reset_watermark('ld_merge') IS NULL AS reset;
SELECT status, rows_extracted, rows_updated FROM etl_run('ld_merge');
RESET etl.work_mem;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'ld\_%' ORDER BY name;
DROP SCHEMA ld_src, ld_dw CASCADE;
