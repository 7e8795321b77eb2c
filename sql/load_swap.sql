-- load_swap: load partition_swap rebuilds each partition a batch touches in
-- a staging table and swaps it in (DROP / ATTACH) in the run's
-- transaction; partitions it does not touch keep their OID

CALL regress.create_role('regress_swap_owner');
CALL regress.create_role('regress_swap_reader');
CALL regress.create_role('regress_swap_auditor');
CREATE SCHEMA sw_src;
CREATE SCHEMA sw_dw AUTHORIZATION regress_swap_owner;
GRANT USAGE ON SCHEMA sw_src TO regress_swap_owner;
CREATE TABLE sw_src.sales (id int PRIMARY KEY, sold_on date, region text,
                           amount numeric(10,2), at timestamptz NOT NULL);
GRANT SELECT ON sw_src.sales TO regress_swap_owner;
-- 300 sales from January to March 2024
INSERT INTO sw_src.sales
SELECT g, date '2024-01-01' + (g * 7 % 91), (ARRAY['emea', 'apac', 'amer'])[g % 3 + 1],
       g * 1.25, '2024-04-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 300) g;

SET ROLE regress_swap_owner;
-- the target: partitioned by month, with a primary key, an index, a CHECK
-- constraint, a column the pipeline does not load, and a grant
CREATE TABLE sw_dw.sales (
    id int, sold_on date NOT NULL, region text,
    amount numeric(10,2) CHECK (amount >= 0),
    remark text DEFAULT 'loaded', _etl_run_id bigint,
    PRIMARY KEY (id, sold_on)) PARTITION BY RANGE (sold_on);
CREATE INDEX sales_region ON sw_dw.sales (region, amount);
GRANT SELECT ON sw_dw.sales TO regress_swap_reader;

-- refused at definition: a target that is not partitioned, hash partitions,
-- a key of several columns or an expression, an interval the key cannot use
CREATE TABLE sw_dw.flat (id int PRIMARY KEY, sold_on date, region text, amount numeric(10,2));
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.flat', watermark_column => 'at',
                           load => 'partition_swap');
\echo sqlstate :LAST_ERROR_SQLSTATE
CREATE TABLE sw_dw.hashed (id int PRIMARY KEY, sold_on date, region text, amount numeric(10,2))
    PARTITION BY HASH (id);
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.hashed', watermark_column => 'at',
                           load => 'partition_swap');
\echo sqlstate :LAST_ERROR_SQLSTATE
CREATE TABLE sw_dw.by_two (id int, sold_on date, region text, amount numeric(10,2))
    PARTITION BY RANGE (sold_on, id);
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.by_two', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap');
\echo sqlstate :LAST_ERROR_SQLSTATE
CREATE TABLE sw_dw.by_year (id int, sold_on date, region text, amount numeric(10,2))
    PARTITION BY RANGE (date_part('year', sold_on));
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.by_year', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.sales', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           options => '{"partition_interval": "1 month 2 days"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.sales', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           options => '{"partition_interval": "12 hours"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.sales', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           options => '{"partition_interval": "monthly"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
CREATE TABLE sw_dw.by_text (id int, sold_on date, region text, amount numeric(10,2))
    PARTITION BY RANGE (region);
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.by_text', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           options => '{"partition_interval": "1 month"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- the partition key must be loaded
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.sales', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, region, amount FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;
-- the pipeline owner must own the target: detaching, attaching and dropping
-- partitions is for the owner only
CREATE TABLE sw_dw.foreign_owned (id int, sold_on date, region text, amount numeric(10,2),
                                  PRIMARY KEY (id, sold_on)) PARTITION BY RANGE (sold_on);
GRANT CREATE ON SCHEMA sw_dw TO regress_swap_reader;   -- for a role owning a table there
ALTER TABLE sw_dw.foreign_owned OWNER TO regress_swap_reader;
GRANT SELECT, INSERT, UPDATE ON sw_dw.foreign_owned TO regress_swap_owner;
SET ROLE regress_swap_owner;
SELECT etl_create_pipeline('sw_bad', 'sw_src.sales', 'sw_dw.foreign_owned', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap');
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP TABLE sw_dw.foreign_owned;
SET ROLE regress_swap_owner;
DROP TABLE sw_dw.flat, sw_dw.hashed, sw_dw.by_two, sw_dw.by_year, sw_dw.by_text;
SELECT count(*) AS nothing_stored FROM etl.pipelines WHERE name = 'sw_bad';

-- the pipeline: key id (a sale keeps its id when its date changes),
-- monthly partitions created as needed
SELECT etl_create_pipeline('sw_sales', 'sw_src.sales', 'sw_dw.sales', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           options => '{"partition_interval": "1 month"}') > 0 AS created;

-- what the schema holds, to compare after each run
CREATE TEMP VIEW sw_parts AS
SELECT c.relname AS partition, pg_get_expr(c.relpartbound, c.oid) AS bound,
       pg_get_userbyid(c.relowner) AS owner, c.relacl,
       (SELECT count(*) FROM sw_dw.sales s WHERE s.tableoid = c.oid) AS rows
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'sw_dw.sales'::regclass;
CREATE TEMP VIEW sw_relations AS
SELECT c.oid, c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'sw_dw'::regnamespace;
-- a partition's indexes, constraints, privileges, comment and storage
-- parameters, by its name
CREATE TEMP VIEW sw_shape AS
SELECT c.relname AS partition,
       (SELECT string_agg(x.indexname || ': ' || regexp_replace(x.indexdef, ' ON \S+', ' ON <p>'),
                          E'\n' ORDER BY x.indexname)
          FROM pg_indexes x WHERE x.schemaname = 'sw_dw' AND x.tablename = c.relname) AS indexes,
       (SELECT string_agg(k.conname || ' ' || k.contype::text || ' local=' || k.conislocal
                          || ' inherited=' || k.coninhcount || ' ' || pg_get_constraintdef(k.oid),
                          E'\n' ORDER BY k.conname)
          FROM pg_constraint k WHERE k.conrelid = c.oid) AS constraints,
       pg_get_userbyid(c.relowner) AS owner, c.relacl::text, c.reloptions::text,
       obj_description(c.oid, 'pg_class') AS comment
  FROM pg_class c WHERE c.relnamespace = 'sw_dw'::regnamespace AND c.relispartition
   AND c.relkind = 'r';

-- first load into an empty target: the three months are created, with the
-- target's owner, grants, indexes and constraints
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_deleted
  FROM etl_run('sw_sales');
-- the ATTACH did not scan the new partitions (a CHECK constraint equal to
-- the bound proved their rows fit): each was scanned only to build its
-- two indexes
SELECT pg_stat_force_next_flush();
SELECT s.relname, s.seq_scan, (SELECT count(*) FROM pg_index x WHERE x.indrelid = s.relid) AS indexes
  FROM pg_stat_user_tables s WHERE s.schemaname = 'sw_dw' AND s.relname LIKE 'sales_p%'
 ORDER BY s.relname;
SELECT * FROM sw_parts ORDER BY partition;
SELECT relname, relkind FROM sw_relations ORDER BY relname;
-- (a table attached without such a constraint is scanned once more)
RESET ROLE;
CREATE TABLE sw_dw.scanned (LIKE sw_dw.sales INCLUDING ALL);
ALTER TABLE sw_dw.scanned OWNER TO regress_swap_owner;
SET ROLE regress_swap_owner;
ALTER TABLE sw_dw.sales ATTACH PARTITION sw_dw.scanned FOR VALUES FROM ('2030-01-01') TO ('2030-02-01');
SELECT pg_stat_force_next_flush();
SELECT s.seq_scan, (SELECT count(*) FROM pg_index x WHERE x.indrelid = s.relid) AS indexes
  FROM pg_stat_user_tables s WHERE s.schemaname = 'sw_dw' AND s.relname = 'scanned';
DROP TABLE sw_dw.scanned;
SELECT * FROM sw_shape WHERE partition = 'sales_p20240201';

-- January gets an index, a constraint, a grant, a comment and a storage
-- parameter of its own; a row gets a remark the pipeline does not load
CREATE INDEX january_amount ON sw_dw.sales_p20240101 (amount);
ALTER TABLE sw_dw.sales_p20240101 ADD CONSTRAINT january_positive_id CHECK (id > 0);
GRANT SELECT, UPDATE ON sw_dw.sales_p20240101 TO regress_swap_auditor;
COMMENT ON TABLE sw_dw.sales_p20240101 IS 'January';
ALTER TABLE sw_dw.sales_p20240101 SET (fillfactor = 90);
UPDATE sw_dw.sales SET remark = 'checked' WHERE id = 13;
CREATE TEMP TABLE sw_before AS SELECT * FROM sw_relations;
CREATE TEMP TABLE sw_shape_before AS SELECT * FROM sw_shape;

-- an increment that touches January only: two changed sales, one new
RESET ROLE;
UPDATE sw_src.sales SET amount = amount + 100, at = '2024-05-01' WHERE id IN (13, 26);
INSERT INTO sw_src.sales VALUES (301, '2024-01-20', 'emea', 10, '2024-05-01');
SET ROLE regress_swap_owner;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_deleted
  FROM etl_run('sw_sales');
-- January has a new OID; February and March keep theirs
SELECT b.relname, c.oid = b.oid AS same_oid
  FROM sw_before b LEFT JOIN sw_relations c USING (relname)
 WHERE b.relkind = 'r' ORDER BY b.relname;
-- and January is what it was: same indexes, constraints, owner, grants,
-- comment and storage parameters (no staging table or CHECK of its bound
-- left behind)
SELECT partition FROM (SELECT * FROM sw_shape EXCEPT SELECT * FROM sw_shape_before) changed;
SELECT * FROM sw_shape WHERE partition = 'sales_p20240101';
SELECT relname, relkind FROM sw_relations
 WHERE relname NOT IN (SELECT relname FROM sw_before) OR oid NOT IN (SELECT oid FROM sw_before)
 ORDER BY relname;
-- the changed rows keep the column the pipeline does not load; the new row
-- gets its default
SELECT id, sold_on, amount, remark FROM sw_dw.sales WHERE id IN (13, 26, 301) ORDER BY id;

-- a re-run over the same rows: all unchanged, nothing swapped
DROP TABLE sw_before;
CREATE TEMP TABLE sw_before AS SELECT * FROM sw_relations;
SELECT etl_reset_watermark('sw_sales', '2024-04-30') IS NOT NULL AS reset;
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('sw_sales');
SELECT count(*) AS relations_changed
  FROM (SELECT oid, relname FROM sw_relations EXCEPT SELECT oid, relname FROM sw_before) c;

-- a sale moves from February to March: both are rebuilt, January is not
RESET ROLE;
UPDATE sw_src.sales SET sold_on = '2024-03-15', at = '2024-05-02'
 WHERE id = (SELECT min(id) FROM sw_src.sales WHERE sold_on >= '2024-02-01' AND sold_on < '2024-03-01');
SET ROLE regress_swap_owner;
DROP TABLE sw_before;
CREATE TEMP TABLE sw_before AS SELECT * FROM sw_relations;
SELECT rows_extracted, rows_inserted, rows_updated FROM etl_run('sw_sales');
SELECT b.relname, c.oid = b.oid AS same_oid
  FROM sw_before b LEFT JOIN sw_relations c USING (relname)
 WHERE b.relkind = 'r' ORDER BY b.relname;
SELECT s.id, s.sold_on, s.tableoid::regclass AS partition
  FROM sw_dw.sales s JOIN sw_src.sales USING (id) WHERE sw_src.sales.at = '2024-05-02';

-- a sale in May: a partition is created for it, nothing else is rebuilt
RESET ROLE;
INSERT INTO sw_src.sales VALUES (302, '2024-05-31', 'apac', 5, '2024-05-03');
SET ROLE regress_swap_owner;
DROP TABLE sw_before;
CREATE TEMP TABLE sw_before AS SELECT * FROM sw_relations;
SELECT rows_extracted, rows_inserted FROM etl_run('sw_sales');
SELECT * FROM sw_parts ORDER BY partition;
SELECT count(*) AS rebuilt FROM sw_before b JOIN sw_relations c USING (relname)
 WHERE b.relkind = 'r' AND b.oid <> c.oid;

-- a failure in the middle of the swap (a view depends on January, whose
-- DROP fails, the swap's first step): everything is rolled back, no
-- staging table is left, the watermark stays
CREATE VIEW sw_dw.january AS SELECT * FROM sw_dw.sales_p20240101;
RESET ROLE;
UPDATE sw_src.sales SET amount = 1, at = '2024-05-04' WHERE id = 52;
SET ROLE regress_swap_owner;
DROP TABLE sw_before;
CREATE TEMP TABLE sw_before AS SELECT * FROM sw_relations;
CREATE TEMP TABLE sw_rows_before AS SELECT * FROM sw_dw.sales;
SELECT watermark AS watermark_before FROM etl.pipelines WHERE name = 'sw_sales';
SELECT * FROM regress.run_failing('sw_sales') \gx
SELECT watermark AS watermark_after FROM etl.pipelines WHERE name = 'sw_sales';
SELECT (SELECT count(*) FROM (SELECT oid, relname, relkind FROM sw_relations
                              EXCEPT SELECT oid, relname, relkind FROM sw_before) a) AS added,
       (SELECT count(*) FROM (SELECT oid, relname, relkind FROM sw_before
                              EXCEPT SELECT oid, relname, relkind FROM sw_relations) r) AS removed,
       (SELECT count(*) FROM (SELECT * FROM sw_dw.sales EXCEPT SELECT * FROM sw_rows_before) d) AS rows_changed;
DROP VIEW sw_dw.january;
SELECT rows_extracted, rows_updated FROM etl_run('sw_sales');

-- the target holds exactly the source
SELECT (SELECT count(*) FROM (SELECT id, sold_on, region, amount FROM sw_src.sales
                              EXCEPT SELECT id, sold_on, region, amount FROM sw_dw.sales) a) AS missing,
       (SELECT count(*) FROM (SELECT id, sold_on, region, amount FROM sw_dw.sales
                              EXCEPT SELECT id, sold_on, region, amount FROM sw_src.sales) b) AS extra,
       (SELECT count(*) FROM sw_dw.sales) AS rows;

-- rows no partition takes: a clear error, nothing changed
CREATE TABLE sw_dw.days (id int, day date, amount numeric(10,2)) PARTITION BY RANGE (day);
CREATE TABLE sw_dw.days_q1 PARTITION OF sw_dw.days FOR VALUES FROM ('2024-01-01') TO ('2024-04-01');
RESET ROLE;
CREATE TABLE sw_src.days (id int PRIMARY KEY, day date, amount numeric(10,2), at timestamptz NOT NULL);
GRANT SELECT ON sw_src.days TO regress_swap_owner;
INSERT INTO sw_src.days VALUES (1, '2024-01-05', 1, '2024-01-01'), (2, '2024-07-01', 2, '2024-01-02');
SET ROLE regress_swap_owner;
SELECT etl_create_pipeline('sw_days', 'sw_src.days', 'sw_dw.days', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           error_threshold => 0) > 0 AS created;
DROP TABLE sw_before;
CREATE TEMP TABLE sw_before AS SELECT * FROM sw_relations;
SELECT * FROM regress.run_failing('sw_days') \gx
-- a NULL key: range partitions never hold it
RESET ROLE;
UPDATE sw_src.days SET day = NULL, at = '2024-01-03' WHERE id = 2;
SET ROLE regress_swap_owner;
SELECT * FROM regress.run_failing('sw_days') \gx
SELECT (SELECT count(*) FROM sw_dw.days) AS rows, watermark,
       (SELECT count(*) FROM (SELECT oid, relname FROM sw_relations
                              EXCEPT SELECT oid, relname FROM sw_before) c) AS relations_changed
  FROM etl.pipelines WHERE name = 'sw_days';
-- within the error threshold the row is a dead letter and the rest loads
-- (the dead letters of the failed runs are set aside first)
SELECT count(etl_resolve_dead_letter(id, 'ignored', 'failed run')) AS set_aside
  FROM etl.dead_letters WHERE pipeline = 'sw_days';
SELECT etl_alter_pipeline('sw_days', error_threshold => 50) > 0 AS altered;
SELECT rows_extracted, rows_inserted, rows_rejected FROM etl_run('sw_days');
SELECT stage, sqlstate, error_message, record->>'id' AS id FROM etl.dead_letters
 WHERE pipeline = 'sw_days' AND status = 'pending';
SELECT id, day, tableoid::regclass AS partition FROM sw_dw.days;
-- with a DEFAULT partition, rows no other partition takes go there (and
-- nothing is created); the DEFAULT partition is rebuilt too
CREATE TABLE sw_dw.days_other PARTITION OF sw_dw.days DEFAULT;
SELECT * FROM etl_retry_dead_letters('sw_days');
SELECT id, day, tableoid::regclass AS partition FROM sw_dw.days ORDER BY id;

-- list partitions: a partition per new value, FOR VALUES IN (the value)
CREATE TABLE sw_dw.by_region (id int, sold_on date, region text, amount numeric(10,2),
                              PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE sw_dw.by_region_europe PARTITION OF sw_dw.by_region FOR VALUES IN ('emea', 'uk');
SELECT etl_create_pipeline('sw_regions', 'sw_src.sales', 'sw_dw.by_region',
                           watermark_column => 'at', load => 'partition_swap',
                           options => '{"partition_interval": "1 month"}');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('sw_regions', 'sw_src.sales', 'sw_dw.by_region',
                           watermark_column => 'at', load => 'partition_swap') > 0 AS created;
SELECT rows_extracted, rows_inserted FROM etl_run('sw_regions');
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound,
       (SELECT count(*) FROM sw_dw.by_region s WHERE s.tableoid = c.oid) AS rows
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'sw_dw.by_region'::regclass ORDER BY 1;
RESET ROLE;
UPDATE sw_src.sales SET region = 'New York', at = '2024-05-05' WHERE id = 3;
SET ROLE regress_swap_owner;
DROP TABLE sw_before;
CREATE TEMP TABLE sw_before AS SELECT * FROM sw_relations;
SELECT rows_extracted, rows_inserted, rows_updated FROM etl_run('sw_regions');
-- with key (id, region), the sale is a new row in its new region
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound,
       (SELECT count(*) FROM sw_dw.by_region s WHERE s.tableoid = c.oid) AS rows,
       c.oid IN (SELECT oid FROM sw_before) AS same_oid
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'sw_dw.by_region'::regclass ORDER BY 1;

-- nothing of the runs is left in the schema: partitions, their indexes
-- and the tables of this test only
SELECT relname, relkind FROM sw_relations
 WHERE relname LIKE '%etl%' OR relname LIKE '%swap%' OR relname LIKE '%stag%';

DROP VIEW sw_parts, sw_relations, sw_shape;
DROP TABLE sw_before, sw_shape_before, sw_rows_before;
RESET ROLE;
SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'sw\_%' ORDER BY name;
DROP SCHEMA sw_src, sw_dw CASCADE;
CALL regress.drop_role('regress_swap_owner');
CALL regress.drop_role('regress_swap_reader');
CALL regress.drop_role('regress_swap_auditor');
