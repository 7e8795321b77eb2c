-- positions_exact: NaN, infinities and NULL where a run expects a
-- position; modes cdc and serial refuse such a row (naming it, the
-- watermark stays), mode timestamp never lets one stop the later rows

CREATE SCHEMA px;

-- mode cdc over a numeric position
CREATE TABLE px.changes (pos numeric, op text, id int, v text);
CREATE TABLE px.current (id int PRIMARY KEY, v text);
INSERT INTO px.changes VALUES (1, 'c', 1, 'a'), (2, 'c', 2, 'b');
SELECT etl_create_pipeline('px_cdc', 'px.changes', 'px.current', mode => 'cdc',
                           watermark_column => 'pos', key => ARRAY['id'],
                           options => '{"op_column": "op"}') > 0 AS created;
SELECT status, rows_extracted, rows_inserted, watermark_to FROM etl_run('px_cdc');
-- a change at NaN would become the watermark, past every later change:
-- refused, naming the row; nothing loads and the watermark stays
INSERT INTO px.changes VALUES ('NaN', 'u', 1, 'late'), (3, 'u', 2, 'b3');
SELECT * FROM regress.run_failing('px_cdc') \gx
SELECT watermark FROM etl.pipelines WHERE name = 'px_cdc';
SELECT * FROM px.current ORDER BY id;
UPDATE px.changes SET pos = 'Infinity' WHERE pos = 'NaN';
SELECT code, detail FROM regress.run_failing('px_cdc');
UPDATE px.changes SET pos = '-Infinity' WHERE pos = 'Infinity';
SELECT code, detail FROM regress.run_failing('px_cdc');
-- a change without a position would be skipped for good
UPDATE px.changes SET pos = NULL WHERE pos = '-Infinity';
SELECT * FROM regress.run_failing('px_cdc') \gx
SELECT watermark FROM etl.pipelines WHERE name = 'px_cdc';
-- given a position, it loads with the changes after it
UPDATE px.changes SET pos = 4 WHERE pos IS NULL;
INSERT INTO px.changes VALUES (5, 'c', 3, 'c');
SELECT status, rows_extracted, rows_inserted, rows_updated, watermark_to FROM etl_run('px_cdc');
SELECT * FROM px.current ORDER BY id;
SELECT status, rows_extracted FROM etl_run('px_cdc');

-- mode cdc over a timestamp position: infinity is refused the same way
CREATE TABLE px.ts_changes (at timestamptz, op text, id int, v text);
CREATE TABLE px.ts_current (id int PRIMARY KEY, v text);
INSERT INTO px.ts_changes VALUES ('2024-01-01', 'c', 1, 'a'), ('infinity', 'u', 1, 'b');
SELECT etl_create_pipeline('px_cdc_ts', 'px.ts_changes', 'px.ts_current', mode => 'cdc',
                           watermark_column => 'at', key => ARRAY['id'],
                           options => '{"op_column": "op"}') > 0 AS created;
SELECT code, message FROM regress.run_failing('px_cdc_ts');
SELECT watermark, (SELECT count(*) FROM px.ts_current) AS loaded
  FROM etl.pipelines WHERE name = 'px_cdc_ts';

-- mode serial: an id without a value is refused too
CREATE TABLE px.items (id bigint, v text);
CREATE TABLE px.items_copy (id bigint PRIMARY KEY, v text);
INSERT INTO px.items VALUES (1, 'a'), (NULL, 'no id'), (2, 'b');
SELECT etl_create_pipeline('px_serial', 'px.items', 'px.items_copy', mode => 'serial',
                           watermark_column => 'id', key => ARRAY['id']) > 0 AS created;
SELECT code, message, detail FROM regress.run_failing('px_serial');
DELETE FROM px.items WHERE id IS NULL;
SELECT status, rows_inserted, watermark_to FROM etl_run('px_serial');

-- a stored watermark that is no position (an older version, a hand edit)
-- is refused by the run, with a hint to reset it
CALL regress.store_watermark('px_cdc', 'NaN');
SELECT * FROM regress.run_failing('px_cdc') \gx
SELECT etl_reset_watermark('px_cdc', 'NaN');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('px_cdc', '5') AS reset;
SELECT status, rows_extracted FROM etl_run('px_cdc');

-- mode timestamp: rows at NULL, infinity and -infinity never stop the
-- later rows; -infinity is loaded by a run that starts from no watermark,
-- NULL and infinity by none, and no run stores a watermark that is not
-- finite (one that took only rows at -infinity keeps none)
CREATE TABLE px.events (id int PRIMARY KEY, v text, at timestamptz);
INSERT INTO px.events VALUES (1, 'minus', '-infinity'), (2, 'minus too', '-infinity'),
    (3, 'plus', 'infinity'), (4, 'none', NULL);
CREATE TABLE px.events_copy (id int PRIMARY KEY, v text, at timestamptz);
SELECT etl_create_pipeline('px_ts', 'px.events', 'px.events_copy', watermark_column => 'at',
                           batch_size => 1) > 0 AS created;
SELECT status, rows_extracted, rows_inserted, watermark_to FROM etl_run('px_ts');
SELECT status, rows_extracted, rows_inserted, rows_unchanged, watermark_to FROM etl_run('px_ts');
INSERT INTO px.events VALUES (5, 'a', '2024-01-01'), (6, 'b', '2024-01-02'), (7, 'c', '2024-01-03');
-- batch_size 1 counts rows past -infinity: one each, never stuck
SELECT status, rows_extracted, rows_inserted, watermark_to FROM etl_run('px_ts');
SELECT status, rows_extracted, rows_inserted, watermark_to FROM etl_run('px_ts');
SET client_min_messages = warning;
CALL etl_catch_up('px_ts');
RESET client_min_messages;
SELECT id, v, at FROM px.events_copy ORDER BY id;
SELECT watermark FROM etl.pipelines WHERE name = 'px_ts';
-- a catch-up from the beginning over them ends too
SELECT etl_reset_watermark('px_ts') IS NULL AS reset;
SET statement_timeout = '60s';
SET client_min_messages = warning;
CALL etl_catch_up('px_ts');
RESET client_min_messages;
RESET statement_timeout;
SELECT watermark FROM etl.pipelines WHERE name = 'px_ts';

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'px\_%' ORDER BY name;
DROP SCHEMA px CASCADE;
