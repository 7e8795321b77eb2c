-- load_swap_published: load partition_swap refuses a target that a
-- publication reaches (its subscribers would drift or stop), when the
-- pipeline is defined and by a run that finds the publication added since:
-- the run fails (0A000) and nothing changes.  Publications FOR TABLES IN
-- SCHEMA and FOR ALL TABLES are made by a superuser: this file does not run
-- in the owner pass (load_swap_refused: the other refusals)

CALL regress.create_role('regress_swp_owner');
CREATE SCHEMA swp_src;
CREATE SCHEMA swp AUTHORIZATION regress_swp_owner;
GRANT USAGE ON SCHEMA swp_src TO regress_swp_owner;
CREATE TABLE swp_src.sales (id int PRIMARY KEY, sold_on date NOT NULL, region text NOT NULL,
                            amount numeric(10,2), at timestamptz NOT NULL);
GRANT SELECT ON swp_src.sales TO regress_swp_owner;
-- 40 sales in January and February 2024, in two regions
INSERT INTO swp_src.sales
SELECT g, date '2024-01-01' + (g * 7 % 60), (ARRAY['emea', 'apac'])[g % 2 + 1],
       g, '2024-04-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 40) g;
SET ROLE regress_swp_owner;

-- A swap's rows go into a staging table that is not yet a partition: a
-- publication of the target or of a partition carries none of them (its
-- subscribers drift silently), FOR TABLES IN SCHEMA and FOR ALL TABLES
-- carry them as inserts into a table the subscribers do not have (they
-- stop).  Refused, at definition and at run time; load merge replicates.
-- (test/t/006_swap_replication.pl runs a subscriber.)
CREATE TABLE swp.published (id int, sold_on date NOT NULL, amount numeric(10,2),
                            PRIMARY KEY (id, sold_on)) PARTITION BY RANGE (sold_on);
CREATE TABLE swp.published_jan PARTITION OF swp.published
    FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE swp.published_feb PARTITION OF swp.published
    FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
SELECT etl_create_pipeline('swp_pub', 'swp_src.sales', 'swp.published', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, amount FROM etl_delta') > 0 AS created;
SELECT status, rows_inserted FROM etl_run('swp_pub');
-- (CREATE PUBLICATION warns when wal_level is not logical)
RESET ROLE;
SET client_min_messages = error;
CREATE PUBLICATION swp_root FOR TABLE swp.published WITH (publish_via_partition_root = true);
RESET client_min_messages;
SET ROLE regress_swp_owner;
SELECT etl_create_pipeline('swp_bad', 'swp_src.sales', 'swp.published', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, amount FROM etl_delta');
-- load merge replicates: it is accepted
SELECT etl_create_pipeline('swp_pub_merge', 'swp_src.sales', 'swp.published',
                           key => ARRAY['id', 'sold_on'],
                           watermark_column => 'at', load => 'merge',
                           transform => 'SELECT id, sold_on, amount FROM etl_delta') > 0 AS created;
SELECT etl_drop_pipeline('swp_pub_merge');
-- a run of the pipeline defined before the publication is refused
RESET ROLE;
UPDATE swp_src.sales SET amount = amount + 1, at = '2024-05-05' WHERE id = 9;
SET ROLE regress_swp_owner;
CREATE TEMP TABLE swp_pub_before AS SELECT * FROM swp.published;
SELECT * FROM regress.run_failing('swp_pub') \gx
-- every other kind of publication of changes, each refused by the run
RESET ROLE;
DROP PUBLICATION swp_root;
SET client_min_messages = error;
CREATE PUBLICATION swp_leaf FOR TABLE swp.published;
RESET client_min_messages;
SELECT code, message FROM regress.run_failing('swp_pub');
DROP PUBLICATION swp_leaf;
SET client_min_messages = error;
CREATE PUBLICATION swp_part FOR TABLE swp.published_feb WITH (publish = 'delete');
RESET client_min_messages;
SELECT code, message FROM regress.run_failing('swp_pub');
DROP PUBLICATION swp_part;
SET client_min_messages = error;
CREATE PUBLICATION swp_schema FOR TABLES IN SCHEMA swp;
RESET client_min_messages;
SELECT code, message FROM regress.run_failing('swp_pub');
DROP PUBLICATION swp_schema;
SET client_min_messages = error;
CREATE PUBLICATION swp_all FOR ALL TABLES;
RESET client_min_messages;
SELECT code, message, detail FROM regress.run_failing('swp_pub') \gx
-- refused at definition too
SET ROLE regress_swp_owner;
SELECT etl_create_pipeline('swp_bad', 'swp_src.sales', 'swp.published', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, amount FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP PUBLICATION swp_all;
-- nothing of the refused runs reached the target or the watermark
SELECT (SELECT count(*) FROM (SELECT * FROM swp.published EXCEPT SELECT * FROM swp_pub_before) c)
       AS rows_changed,
       (SELECT watermark FROM etl.pipelines WHERE name = 'swp_pub') AS watermark,
       (SELECT count(*) FROM etl.runs WHERE pipeline = 'swp_pub' AND status = 'failed'
           AND sqlstate = '0A000') AS refused_runs;
-- a publication of truncates only carries nothing a swap writes: accepted
SET client_min_messages = error;
CREATE PUBLICATION swp_truncates FOR ALL TABLES WITH (publish = 'truncate');
RESET client_min_messages;
SET ROLE regress_swp_owner;
SELECT status, rows_updated FROM etl_run('swp_pub');
RESET ROLE;
DROP PUBLICATION swp_truncates;

DROP TABLE swp_pub_before;
SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'swp\_%' ORDER BY name;
DROP SCHEMA swp_src, swp CASCADE;
CALL regress.drop_role('regress_swp_owner');
