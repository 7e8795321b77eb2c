-- run_serial: increments by an increasing id
CREATE SCHEMA se_src;
CREATE SCHEMA se_dw;
CREATE TABLE se_src.events (id bigserial PRIMARY KEY, kind text, amount int);
CREATE TABLE se_dw.events (id bigint PRIMARY KEY, kind text, amount int, _etl_run_id bigint);
INSERT INTO se_src.events (kind, amount) SELECT 'k' || g % 3, g FROM generate_series(1, 50) g;

SELECT etl_create_pipeline('se_events', 'se_src.events', 'se_dw.events',
                           mode => 'serial', watermark_column => 'id',
                           transform => 'SELECT id, upper(kind) AS kind, amount * 10 AS amount FROM etl_delta') > 0 AS created;

CREATE VIEW se_src.diff AS
(SELECT id, upper(kind) AS kind, amount * 10 AS amount FROM se_src.events
 EXCEPT SELECT id, kind, amount FROM se_dw.events)
UNION ALL
(SELECT id, kind, amount FROM se_dw.events
 EXCEPT SELECT id, upper(kind), amount * 10 FROM se_src.events);

SELECT status, rows_extracted, rows_inserted, rows_updated, watermark_from, watermark_to
  FROM etl_run('se_events');
SELECT count(*) AS differences FROM se_src.diff;

-- new ids only; an update of an already loaded id is not seen in this mode
INSERT INTO se_src.events (kind, amount) SELECT 'new', g FROM generate_series(1, 5) g;
UPDATE se_src.events SET amount = -1 WHERE id = 1;
SELECT status, rows_extracted, rows_inserted, rows_updated, watermark_from, watermark_to
  FROM etl_run('se_events');
SELECT amount FROM se_dw.events WHERE id = 1;

-- batch_size: the smallest ids first, in steps
SELECT etl_alter_pipeline('se_events', batch_size => 20) > 0 AS altered;
INSERT INTO se_src.events (kind, amount) SELECT 'more', g FROM generate_series(1, 45) g;
SELECT rows_extracted, rows_inserted, watermark_from, watermark_to FROM etl_run('se_events');
SELECT rows_extracted, rows_inserted, watermark_from, watermark_to FROM etl_run('se_events');
SELECT rows_extracted, rows_inserted, watermark_from, watermark_to FROM etl_run('se_events');
SELECT rows_extracted, rows_inserted, watermark_from, watermark_to FROM etl_run('se_events');
-- only the unseen update of id 1 differs (both directions); undo it
SELECT count(*) AS differences FROM se_src.diff;
UPDATE se_src.events SET amount = 1 WHERE id = 1;
SELECT count(*) AS differences FROM se_src.diff;

-- an empty source extracts nothing and keeps no watermark
CREATE TABLE se_src.empty (id bigserial PRIMARY KEY, kind text);
CREATE TABLE se_dw.empty (id bigint PRIMARY KEY, kind text);
SELECT etl_create_pipeline('se_empty', 'se_src.empty', 'se_dw.empty',
                           mode => 'serial', watermark_column => 'id') > 0 AS created;
SELECT status, rows_extracted, watermark_to FROM etl_run('se_empty');

-- lag is a number of ids
INSERT INTO se_src.empty (kind) VALUES ('a'), ('b');
SELECT rows_extracted, watermark_to FROM etl_run('se_empty');
INSERT INTO se_src.empty (kind) VALUES ('c'), ('d'), ('e');
SELECT pipeline, watermark, lag FROM etl.status WHERE pipeline = 'se_empty';

SELECT etl_drop_pipeline('se_events'), etl_drop_pipeline('se_empty');
DROP SCHEMA se_src, se_dw CASCADE;
