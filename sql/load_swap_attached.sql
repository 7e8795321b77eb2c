-- load_swap_attached: load partition_swap keeps what users attach to its
-- target.  Identity columns get their values; a foreign key to another
-- table keeps working and locks that table only in modes that let its
-- readers go on; a target that is itself a partition works
-- (load_swap_refused: what a swap would break is refused)

CALL regress.create_role('regress_swa_owner');
CREATE SCHEMA swa_src;
CREATE SCHEMA swa AUTHORIZATION regress_swa_owner;
GRANT USAGE ON SCHEMA swa_src TO regress_swa_owner;
CREATE TABLE swa_src.sales (id int PRIMARY KEY, sold_on date NOT NULL, store int,
                            region text NOT NULL, amount numeric(10,2), at timestamptz NOT NULL);
GRANT SELECT ON swa_src.sales TO regress_swa_owner;
-- 40 sales in January and February 2024, in five stores and two regions
INSERT INTO swa_src.sales
SELECT g, date '2024-01-01' + (g * 7 % 60), g % 5 + 1, (ARRAY['emea', 'apac'])[g % 2 + 1],
       g, '2024-04-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 40) g;
SET ROLE regress_swa_owner;

-- 1. Identity columns.  A staging table has no identity (it takes the rows
-- of the partition it replaces as they are): a new row gets the next value
-- of the target's sequence, as an INSERT into the target gives it, and a
-- row kept, changed or moved keeps its value
CREATE TABLE swa.ident (sk bigint GENERATED ALWAYS AS IDENTITY, id int, sold_on date NOT NULL,
                        amount numeric(10,2), PRIMARY KEY (id, sold_on)) PARTITION BY RANGE (sold_on);
SELECT etl_create_pipeline('swa_ident', 'swa_src.sales', 'swa.ident', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, amount FROM etl_delta',
                           options => '{"partition_interval": "1 month"}') > 0 AS created;
SELECT status, rows_inserted FROM etl_run('swa_ident');
-- every row has its own value, drawn from the target's sequence
SELECT count(*) AS rows, count(DISTINCT sk) AS distinct_values, min(sk), max(sk),
       (SELECT last_value FROM pg_sequences
         WHERE schemaname = 'swa' AND sequencename = 'ident_sk_seq') AS sequence_at
  FROM swa.ident;
CREATE TEMP TABLE swa_ident_before AS SELECT * FROM swa.ident;
-- a changed sale, a sale that moves from January to February, a new one
RESET ROLE;
UPDATE swa_src.sales SET amount = amount + 100, at = '2024-05-01' WHERE id = 3;
UPDATE swa_src.sales SET sold_on = '2024-02-15', at = '2024-05-01' WHERE id = 4;
INSERT INTO swa_src.sales VALUES (41, '2024-01-20', 1, 'emea', 41, '2024-05-01');
SET ROLE regress_swa_owner;
SELECT status, rows_inserted, rows_updated FROM etl_run('swa_ident');
SELECT i.id, i.sold_on, i.amount, i.tableoid::regclass AS partition,
       i.sk = b.sk AS kept_its_value, i.sk
  FROM swa.ident i LEFT JOIN swa_ident_before b USING (id)
 WHERE i.id IN (3, 4, 41) ORDER BY i.id;
SELECT count(*) AS other_values_changed
  FROM (SELECT id, sk FROM swa.ident WHERE id NOT IN (3, 4, 41)
        EXCEPT SELECT id, sk FROM swa_ident_before) c;
DROP TABLE swa_ident_before;

-- 2. A foreign key to another table (a dimension).  The staging tables get
-- none: ATTACH clones the target's and validates it.  The dimension is
-- locked only in modes its readers do not wait for (SHARE ROW EXCLUSIVE
-- stops its writers until the run's transaction ends), when partitions are
-- created as when they are rebuilt: no ACCESS EXCLUSIVE
CREATE TABLE swa.stores (store int PRIMARY KEY, name text);
INSERT INTO swa.stores SELECT g, 'store ' || g FROM generate_series(1, 5) g;
CREATE TABLE swa.by_store (id int, sold_on date NOT NULL, store int REFERENCES swa.stores,
                           amount numeric(10,2), PRIMARY KEY (id, sold_on))
    PARTITION BY RANGE (sold_on);
SELECT etl_create_pipeline('swa_store', 'swa_src.sales', 'swa.by_store', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, store, amount FROM etl_delta',
                           options => '{"partition_interval": "1 month"}') > 0 AS created;
BEGIN;
SELECT status, rows_inserted FROM etl_run('swa_store');
SELECT mode FROM pg_locks
 WHERE relation = 'swa.stores'::regclass AND pid = pg_backend_pid() ORDER BY mode;
COMMIT;
RESET ROLE;
UPDATE swa_src.sales SET amount = amount + 1, store = 5, at = '2024-05-02' WHERE id IN (5, 6);
SET ROLE regress_swa_owner;
BEGIN;
SELECT status, rows_updated FROM etl_run('swa_store');
SELECT mode FROM pg_locks
 WHERE relation = 'swa.stores'::regclass AND pid = pg_backend_pid() ORDER BY mode;
COMMIT;
-- each partition has the foreign key, inherited from the target and
-- validated; the dimension's triggers are the target's only
SELECT c.relname, k.conname, k.conparentid <> 0 AS inherited, k.convalidated
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE k.contype = 'f' AND c.relnamespace = 'swa'::regnamespace ORDER BY 1;
SELECT count(*) AS dimension_triggers,
       count(*) FILTER (WHERE k.conrelid = 'swa.by_store'::regclass) AS of_the_target
  FROM pg_trigger t JOIN pg_constraint k ON k.oid = t.tgconstraint
 WHERE t.tgrelid = 'swa.stores'::regclass;
-- a sale of a store the dimension does not have fails the run (23503),
-- found as ATTACH validates the foreign key: nothing changes
RESET ROLE;
UPDATE swa_src.sales SET store = 99, at = '2024-05-03' WHERE id = 7;
SET ROLE regress_swa_owner;
CREATE TEMP TABLE swa_store_before AS SELECT * FROM swa.by_store;
SELECT * FROM regress.run_failing('swa_store') \gx
SELECT (SELECT count(*) FROM (SELECT * FROM swa.by_store EXCEPT SELECT * FROM swa_store_before) c)
       AS rows_changed,
       watermark FROM etl.pipelines WHERE name = 'swa_store';
RESET ROLE;
UPDATE swa_src.sales SET store = 4, at = '2024-05-03' WHERE id = 7;
SET ROLE regress_swa_owner;
SELECT status, rows_updated FROM etl_run('swa_store');
DROP TABLE swa_store_before;

-- 3. A target that is a partition itself (emea, sub-partitioned by month,
-- of a table partitioned by region) works: rows outside its own partition
-- constraint are bad rows (dead letters), as an INSERT into it would make
-- them; new partitions get its constraint with their bound, so ATTACH
-- does not scan them
CREATE TABLE swa.by_region (id int, sold_on date NOT NULL, region text NOT NULL,
                            amount numeric(10,2), PRIMARY KEY (id, region, sold_on))
    PARTITION BY LIST (region);
CREATE TABLE swa.by_region_apac PARTITION OF swa.by_region FOR VALUES IN ('apac');
CREATE TABLE swa.by_region_emea PARTITION OF swa.by_region FOR VALUES IN ('emea')
    PARTITION BY RANGE (sold_on);
CREATE TABLE swa.by_region_emea_jan PARTITION OF swa.by_region_emea
    FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
SELECT etl_create_pipeline('swa_emea', 'swa_src.sales', 'swa.by_region_emea', key => ARRAY['id'],
                           watermark_column => 'at', load => 'partition_swap',
                           transform => 'SELECT id, sold_on, region, amount FROM etl_delta
                                          WHERE region = ''emea'' OR id = 1',
                           error_threshold => 50,
                           options => '{"partition_interval": "1 month"}') > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('swa_emea');
-- the new February partition was scanned once, to build its index
SELECT pg_stat_force_next_flush();
SELECT s.relname, s.seq_scan, (SELECT count(*) FROM pg_index x WHERE x.indrelid = s.relid) AS indexes
  FROM pg_stat_user_tables s WHERE s.schemaname = 'swa' AND s.relname = 'by_region_emea_p20240201';
SELECT stage, sqlstate,
       regexp_replace(split_part(error_message, E'\n', 1), 'etl_batch_[0-9]+', 'etl_batch_<run>') AS error,
       record->>'id' AS id
  FROM etl.dead_letters WHERE pipeline = 'swa_emea';
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound,
       (SELECT count(*) FROM swa.by_region_emea s WHERE s.tableoid = c.oid) AS rows
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'swa.by_region_emea'::regclass ORDER BY 1;
-- the target holds the emea sales exactly
SELECT (SELECT count(*) FROM (SELECT id, sold_on, region, amount FROM swa_src.sales WHERE region = 'emea'
                              EXCEPT SELECT id, sold_on, region, amount FROM swa.by_region_emea) a) AS missing,
       (SELECT count(*) FROM (SELECT id, sold_on, region, amount FROM swa.by_region_emea
                              EXCEPT SELECT id, sold_on, region, amount FROM swa_src.sales) b) AS extra;

RESET ROLE;
SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'swa\_%' ORDER BY name;
DROP SCHEMA swa_src, swa CASCADE;
CALL regress.drop_role('regress_swa_owner');
