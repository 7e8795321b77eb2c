-- schema_drift: a source that gains, loses or retypes columns (on_schema_change)

CREATE SCHEMA sd;
CREATE TABLE sd.src (id int PRIMARY KEY, name text, qty int, seq int NOT NULL);
INSERT INTO sd.src SELECT g, 'n' || g, g, g FROM generate_series(1, 3) g;
CREATE TABLE sd.dst (id int PRIMARY KEY, name text, qty bigint);
SELECT etl_create_pipeline('drift', 'sd.src', 'sd.dst', mode => 'serial', watermark_column => 'seq') > 0 AS created;
SELECT source_columns FROM etl.pipelines WHERE name = 'drift';
SELECT rows_inserted FROM etl_run('drift');

-- fail (the default): the run fails naming what changed, nothing loads
ALTER TABLE sd.src ADD COLUMN region text, DROP COLUMN name, ALTER COLUMN qty TYPE bigint;
INSERT INTO sd.src VALUES (4, 4, 4, 'eu');
SELECT * FROM regress.run_failing('drift');
SELECT count(*) FROM sd.dst;
-- accepting the new shape: etl_alter_pipeline validates again
SELECT etl_alter_pipeline('drift') > 0 AS altered;
SELECT rows_extracted, rows_inserted FROM etl_run('drift');
SELECT * FROM sd.dst ORDER BY id;

-- ignore: a notice, and what still maps loads
SELECT etl_alter_pipeline('drift', on_schema_change => 'ignore') > 0 AS altered;
ALTER TABLE sd.src ADD COLUMN name text;
INSERT INTO sd.src VALUES (5, 5, 5, 'us', 'n5');
SELECT rows_extracted, rows_inserted FROM etl_run('drift');
SELECT * FROM sd.dst ORDER BY id;
-- the new shape is remembered: no notice the second time
INSERT INTO sd.src VALUES (6, 6, 6, 'us', 'n6');
SELECT rows_extracted, rows_inserted FROM etl_run('drift');

-- append_new_columns: the target gains the source's new columns
SELECT etl_alter_pipeline('drift', on_schema_change => 'append_new_columns') > 0 AS altered;
ALTER TABLE sd.src ADD COLUMN price numeric(10,2), ADD COLUMN "Note" text;
INSERT INTO sd.src VALUES (7, 7, 7, 'eu', 'n7', 9.99, 'seven');
SELECT rows_extracted, rows_inserted FROM etl_run('drift');
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
 WHERE a.attrelid = 'sd.dst'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT * FROM sd.dst ORDER BY id;

-- a dropped watermark or key column fails clearly whatever the policy
ALTER TABLE sd.src DROP COLUMN seq;
SELECT code, message, detail FROM regress.run_failing('drift');
ALTER TABLE sd.src ADD COLUMN seq int;
SELECT etl_alter_pipeline('drift', watermark_column => 'seq') > 0 AS altered;
ALTER TABLE sd.src DROP COLUMN id CASCADE;
SELECT code, message, detail FROM regress.run_failing('drift');
