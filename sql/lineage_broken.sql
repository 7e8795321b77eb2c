-- lineage_broken: a pipeline whose definition no longer analyses (a column
-- its transform reads was dropped from the source, a table it joins was
-- dropped) is left out of etl_lineage(), etl_lineage_upstream() and
-- etl_lineage_dot() with a WARNING naming it and its error; the others
-- answer as before.  etl_openlineage() of its runs answers without the
-- lineage facets.  (In a database of its own: what the calls over all
-- pipelines say does not depend on the other tests' pipelines.)
\set regress_db :DBNAME
CREATE DATABASE regress_etl_lineage_broken;
\c regress_etl_lineage_broken
CREATE EXTENSION etl_ext;

CREATE SCHEMA lb;
CREATE TABLE lb.orders (id int PRIMARY KEY, customer int, amount numeric, note text,
                        at timestamptz NOT NULL);
INSERT INTO lb.orders SELECT g, g % 2 + 1, g * 10, 'n' || g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 4) g;
CREATE TABLE lb.customers (id int PRIMARY KEY, segment text);
INSERT INTO lb.customers VALUES (1, 'gold'), (2, 'silver');
CREATE TABLE lb.regions (customer int PRIMARY KEY, region text);
INSERT INTO lb.regions VALUES (1, 'eu'), (2, 'us');
CREATE TABLE lb.fact (id int PRIMARY KEY, amount numeric, segment text);
CREATE TABLE lb.notes (id int PRIMARY KEY, note text);
CREATE TABLE lb.by_region (id int PRIMARY KEY, region text);
CREATE TABLE lb.summary (id int PRIMARY KEY, amount numeric);
-- a good pipeline with a join, a pipeline downstream of it, and two that
-- will break: one reads a column that is dropped, one joins a table that is
-- dropped
SELECT etl_create_pipeline('lb_good', 'lb.orders', 'lb.fact', watermark_column => 'at',
    transform => $$SELECT o.id, o.amount, c.segment
                     FROM etl_delta o JOIN lb.customers c ON c.id = o.customer$$) > 0 AS created;
SELECT etl_create_pipeline('lb_down', 'lb.fact', 'lb.summary', mode => 'full',
    transform => 'SELECT id, amount * 2 AS amount FROM etl_delta') > 0 AS created;
SELECT etl_create_pipeline('lb_note', 'lb.orders', 'lb.notes', watermark_column => 'at',
    transform => 'SELECT id, upper(note) AS note FROM etl_delta') > 0 AS created;
SELECT etl_create_pipeline('lb_region', 'lb.orders', 'lb.by_region', watermark_column => 'at',
    transform => $$SELECT o.id, r.region FROM etl_delta o JOIN lb.regions r USING (customer)$$) > 0 AS created;
SELECT status, rows_inserted FROM etl_run('lb_good');
SELECT status, rows_inserted FROM etl_run('lb_down');
SELECT status, rows_inserted FROM etl_run('lb_note');
SELECT status, rows_inserted FROM etl_run('lb_region');
SELECT run_id AS note_run FROM etl.runs WHERE pipeline = 'lb_note' \gset
SELECT run_id AS region_run FROM etl.runs WHERE pipeline = 'lb_region' \gset
SELECT run_id AS good_run FROM etl.runs WHERE pipeline = 'lb_good' \gset

-- all four analyse
SELECT pipeline, target_column, source_columns, transformation
  FROM etl_lineage() ORDER BY pipeline, target_column;

-- then the source loses the column lb_note reads, and lb_region's
-- dimension is dropped
ALTER TABLE lb.orders DROP COLUMN note;
DROP TABLE lb.regions;

-- etl_lineage: the two broken pipelines are left out, each with a WARNING
-- naming it and its error; the others' rows are all there
SELECT pipeline, target_column, source_columns, transformation
  FROM etl_lineage() ORDER BY pipeline, target_column;
-- filtered by a relation only the good pipelines touch: no warning
SELECT DISTINCT pipeline FROM etl_lineage('lb.summary') ORDER BY 1;
SELECT DISTINCT pipeline FROM etl_lineage('lb.orders') ORDER BY 1;

-- upstream and the graph: each broken pipeline keeps its edge from source
-- to target (from the catalog) but not the relations it joins
SELECT * FROM etl_lineage_upstream('lb.summary');
SELECT * FROM etl_lineage_upstream('lb.by_region');
SELECT line FROM regexp_split_to_table(etl_lineage_dot(), E'\n') AS line
 WHERE line LIKE '%lb%' ORDER BY 1;

-- OpenLineage: a broken pipeline's run still has its event, with its
-- source and target and without the lineage facets, and a WARNING; a good
-- pipeline's event is complete
SELECT e->>'eventType' AS event,
       jsonb_array_length(e->'inputs') AS inputs,
       e->'inputs'->0->>'name' AS input,
       e->'outputs'->0->>'name' AS output,
       e->'outputs'->0->'facets' ? 'columnLineage' AS has_column_lineage,
       e->'outputs'->0->'facets' ? 'schema' AS has_schema,
       e->'outputs'->0->'outputFacets'->'outputStatistics'->>'rowCount' AS row_count
  FROM (VALUES (:note_run), (:region_run), (:good_run)) AS v(run_id),
       LATERAL etl_openlineage(v.run_id) AS e
 ORDER BY v.run_id;
SELECT jsonb_object_keys(etl_openlineage(:good_run)->'outputs'->0->'facets'->'columnLineage'->'fields') AS good_fields
 ORDER BY 1;

-- repaired, every pipeline answers again, without warnings
SELECT etl_alter_pipeline('lb_note', transform => 'SELECT id, NULL::text AS note FROM etl_delta') > 0 AS altered;
CREATE TABLE lb.regions (customer int PRIMARY KEY, region text);
SELECT pipeline, target_column, source_columns, transformation
  FROM etl_lineage() WHERE pipeline IN ('lb_note', 'lb_region') ORDER BY pipeline, target_column;
SELECT count(*) AS join_edges FROM regexp_split_to_table(etl_lineage_dot(), E'\n') AS line
 WHERE line LIKE '%style=dashed%' AND line LIKE '%lb.%';

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'lb\_%' ORDER BY name;
\c :regress_db
DROP DATABASE regress_etl_lineage_broken;
