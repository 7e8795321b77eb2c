-- load_swap_refused: load partition_swap refuses a target that a swap
-- would break: one a foreign key references (the swap would drop the rows
-- it references), one with a partition that is partitioned itself (and one
-- a publication reaches: load_swap_published).  Refused when the pipeline
-- is defined or altered and by a run that finds it added since: the run
-- fails (0A000) and nothing changes

CALL regress.create_role('regress_swr_owner');
CREATE SCHEMA swr_src;
CREATE SCHEMA swr AUTHORIZATION regress_swr_owner;
GRANT USAGE ON SCHEMA swr_src TO regress_swr_owner;
CREATE TABLE swr_src.sales (id int PRIMARY KEY, sold_on date NOT NULL, region text NOT NULL,
                            amount numeric(10,2), at timestamptz NOT NULL);
GRANT SELECT ON swr_src.sales TO regress_swr_owner;
-- 40 sales in January and February 2024, in two regions
INSERT INTO swr_src.sales
SELECT g, date '2024-01-01' + (g * 7 % 60), (ARRAY['emea', 'apac'])[g % 2 + 1],
       g, '2024-04-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 40) g;
SET ROLE regress_swr_owner;

-- 1. A foreign key referencing the target: a swap drops the partitions it
-- rebuilds, and PostgreSQL refuses to drop referenced rows.  Refused when
-- the pipeline is defined or altered, and by a run when added since
CREATE TABLE swr.sales (id int, sold_on date NOT NULL, amount numeric(10,2),
                        PRIMARY KEY (id, sold_on)) PARTITION BY RANGE (sold_on);
SELECT etl_create_pipeline('swr_sales', 'swr_src.sales', 'swr.sales', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, amount FROM etl_delta',
                           options => '{"partition_interval": "1 month"}') > 0 AS created;
SELECT status, rows_inserted FROM etl_run('swr_sales');
CREATE TABLE swr.returns (id int, sold_on date, FOREIGN KEY (id, sold_on) REFERENCES swr.sales);
SELECT etl_create_pipeline('swr_bad', 'swr_src.sales', 'swr.sales', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, amount FROM etl_delta');
SELECT etl_alter_pipeline('swr_sales', batch_size => 1000);
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;
UPDATE swr_src.sales SET amount = amount + 1, at = '2024-05-04' WHERE id = 8;
SET ROLE regress_swr_owner;
CREATE TEMP TABLE swr_sales_before AS SELECT * FROM swr.sales;
SELECT * FROM regress.run_failing('swr_sales') \gx
DROP TABLE swr.returns;
-- or one of its partitions
CREATE TABLE swr.returns (id int, sold_on date,
                          FOREIGN KEY (id, sold_on) REFERENCES swr.sales_p20240101);
SELECT * FROM regress.run_failing('swr_sales') \gx
SELECT (SELECT count(*) FROM (SELECT * FROM swr.sales EXCEPT SELECT * FROM swr_sales_before) c)
       AS rows_changed,
       (SELECT watermark FROM etl.pipelines WHERE name = 'swr_sales') AS watermark,
       (SELECT count(*) FROM etl.runs WHERE pipeline = 'swr_sales' AND status = 'failed'
           AND sqlstate = '0A000') AS refused_runs;
DROP TABLE swr.returns;
-- without it the run goes through
SELECT status, rows_updated FROM etl_run('swr_sales');

-- 2. Sub-partitions.  A partition that is partitioned itself cannot be
-- rebuilt as one table: refused at definition, and by a run when one
-- appears since
CREATE TABLE swr.by_region (id int, sold_on date NOT NULL, region text NOT NULL,
                            amount numeric(10,2), PRIMARY KEY (id, region, sold_on))
    PARTITION BY LIST (region);
CREATE TABLE swr.by_region_apac PARTITION OF swr.by_region FOR VALUES IN ('apac');
CREATE TABLE swr.by_region_emea PARTITION OF swr.by_region FOR VALUES IN ('emea')
    PARTITION BY RANGE (sold_on);
CREATE TABLE swr.by_region_emea_jan PARTITION OF swr.by_region_emea
    FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
SELECT etl_create_pipeline('swr_bad', 'swr_src.sales', 'swr.by_region', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, region, amount FROM etl_delta');
\echo sqlstate :LAST_ERROR_SQLSTATE
CREATE TABLE swr.by_region2 (id int, sold_on date NOT NULL, region text NOT NULL,
                             amount numeric(10,2), PRIMARY KEY (id, region, sold_on))
    PARTITION BY LIST (region);
SELECT etl_create_pipeline('swr_regions', 'swr_src.sales', 'swr.by_region2', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, region, amount FROM etl_delta')
       > 0 AS created;
SELECT status, rows_inserted FROM etl_run('swr_regions');
-- the emea partition is replaced by a sub-partitioned one
CREATE TABLE swr.by_region2_emea_sub (LIKE swr.by_region2) PARTITION BY RANGE (sold_on);
CREATE TABLE swr.by_region2_emea_sub_q1 PARTITION OF swr.by_region2_emea_sub
    FOR VALUES FROM ('2024-01-01') TO ('2024-04-01');
INSERT INTO swr.by_region2_emea_sub SELECT * FROM swr.by_region2_emea;
DROP TABLE swr.by_region2_emea;
ALTER TABLE swr.by_region2 ATTACH PARTITION swr.by_region2_emea_sub FOR VALUES IN ('emea');
RESET ROLE;
UPDATE swr_src.sales SET region = 'apac', at = '2024-05-06' WHERE id = 12;
SET ROLE regress_swr_owner;
SELECT * FROM regress.run_failing('swr_regions') \gx
SELECT count(*) FILTER (WHERE region = 'emea') AS emea, count(*) FILTER (WHERE region = 'apac') AS apac
  FROM swr.by_region2;

RESET ROLE;
DROP TABLE swr_sales_before;
SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'swr\_%' ORDER BY name;
DROP SCHEMA swr_src, swr CASCADE;
CALL regress.drop_role('regress_swr_owner');
