-- keyless_append: a pipeline that appends without a key inserts every row it
-- reads, so nothing may make it read rows it loaded again: an overlap is
-- refused when it is defined or altered, and a change of mode or watermark
-- column (which resets the watermark) once it has loaded rows, unless
-- forced

CREATE SCHEMA ka;
CREATE TABLE ka.events (id int, v text, at timestamptz NOT NULL, at2 timestamptz NOT NULL,
                        seq int NOT NULL);
INSERT INTO ka.events
SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 minute',
       '2024-01-01'::timestamptz + g * interval '1 minute', g
  FROM generate_series(1, 20) g;
CREATE TABLE ka.log (id int, v text);
CREATE TABLE ka.log2 (id int, v text);
CREATE TABLE ka.keyed (id int PRIMARY KEY, v text);
CREATE TABLE ka.by_id (id int, v text);
CREATE UNIQUE INDEX ON ka.by_id (id);

-- an overlap for an append without a key: refused when defined, nothing stored
SELECT etl_create_pipeline('ka_log', 'ka.events', 'ka.log', watermark_column => 'at',
                           load => 'append', overlap => '1 hour');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT count(*) AS stored FROM etl.pipelines WHERE name = 'ka_log';
-- with a key, the target's primary key or one named, the re-read rows are
-- skipped: accepted
SELECT etl_create_pipeline('ka_keyed', 'ka.events', 'ka.keyed', watermark_column => 'at',
                           load => 'append', overlap => '1 hour') > 0 AS created;
SELECT etl_create_pipeline('ka_by_id', 'ka.events', 'ka.by_id', key => ARRAY['id'],
                           watermark_column => 'at', load => 'append', overlap => '1 hour') > 0 AS created;
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('ka_keyed');
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('ka_keyed');
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('ka_by_id');
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('ka_by_id');
SELECT (SELECT count(*) FROM ka.keyed) AS keyed_rows, (SELECT count(*) FROM ka.by_id) AS by_id_rows;
-- without an overlap the keyless pipeline is accepted
SELECT etl_create_pipeline('ka_log', 'ka.events', 'ka.log', watermark_column => 'at',
                           load => 'append') > 0 AS created;

-- altered: an overlap added to it is refused, and so is a new target without
-- a key for a pipeline with an overlap; nothing changes
SELECT etl_alter_pipeline('ka_log', overlap => '5 minutes');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_alter_pipeline('ka_keyed', target => 'ka.log2');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT name, target, key, overlap FROM etl.pipelines WHERE name IN ('ka_log', 'ka_keyed') ORDER BY name;

-- a change of mode or watermark column resets the watermark: refused once
-- the pipeline has loaded rows
SELECT rows_inserted FROM etl_run('ka_log');
SELECT etl_alter_pipeline('ka_log', mode => 'serial', watermark_column => 'seq');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_alter_pipeline('ka_log', watermark_column => 'at2');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- with force => false too
SELECT etl_alter_pipeline('ka_log', watermark_column => 'at2', force => false);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT mode, watermark_column, watermark FROM etl.pipelines WHERE name = 'ka_log';
-- other changes reset nothing and are accepted
SELECT etl_alter_pipeline('ka_log', error_threshold => 20) > 0 AS altered;
-- no row was loaded twice
SELECT rows_extracted, rows_inserted FROM etl_run('ka_log');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM ka.log;

-- forced: the caller deleted the rows first; the next run loads them once
DELETE FROM ka.log;
SELECT etl_alter_pipeline('ka_log', mode => 'serial', watermark_column => 'seq', force => true) > 0 AS altered;
SELECT mode, watermark_column, watermark FROM etl.pipelines WHERE name = 'ka_log';
SELECT rows_extracted, rows_inserted FROM etl_run('ka_log');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM ka.log;
-- the plain function keeps its signature; the forced one is a second
SELECT pg_catalog.pg_get_function_identity_arguments(p.oid) AS alter_functions
  FROM pg_proc p WHERE p.proname = 'etl_alter_pipeline' ORDER BY 1;

-- never refused: a pipeline with a key (it skips the keys it has), one that
-- has loaded nothing yet, one that moves to another target at the same time
-- (its rows are in the old one), and mode full (which replaces the rows)
SELECT etl_alter_pipeline('ka_keyed', overlap => '0', mode => 'serial', watermark_column => 'seq') > 0 AS altered;
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('ka_keyed');
SELECT etl_create_pipeline('ka_fresh', 'ka.events', 'ka.log2', watermark_column => 'at',
                           load => 'append') > 0 AS created;
SELECT etl_alter_pipeline('ka_fresh', watermark_column => 'at2') > 0 AS altered;
SELECT rows_inserted FROM etl_run('ka_fresh');
DELETE FROM ka.log2;
SELECT etl_alter_pipeline('ka_log', target => 'ka.log2', mode => 'timestamp', watermark_column => 'at') > 0 AS altered;
SELECT rows_inserted FROM etl_run('ka_log');
SELECT etl_alter_pipeline('ka_log', mode => 'full', watermark_column => NULL) > 0 AS altered;
SELECT rows_inserted, rows_deleted FROM etl_run('ka_log');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM ka.log2;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'ka\_%' ORDER BY name;
DROP SCHEMA ka CASCADE;
