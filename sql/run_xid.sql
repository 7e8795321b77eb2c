-- run_xid: mode xid, exact change tracking through _etl_xid

CREATE SCHEMA xs;
CREATE TABLE xs.orders (id int PRIMARY KEY, v text, qty int);
INSERT INTO xs.orders SELECT g, 'v' || g, g FROM generate_series(1, 5) g;
CREATE TABLE xs.dst (id int PRIMARY KEY, v text, qty int);

-- the source must track its changes first
SELECT etl_create_pipeline('xid1', 'xs.orders', 'xs.dst', mode => 'xid');

-- only the owner may track a table's changes
CALL regress.create_role('xid_other');
GRANT USAGE ON SCHEMA xs TO xid_other;
SET ROLE xid_other;
SELECT etl_track_changes('xs.orders');
SELECT etl_rebase_xid('xs.orders');
RESET ROLE;
-- neither takes NULL, a relation that is gone or a table without the column
SELECT etl_track_changes(NULL);
SELECT etl_rebase_xid(NULL);
SELECT etl_rebase_xid(0::regclass);
SELECT etl_rebase_xid('xs.dst');

-- column, trigger and index, each once
SELECT etl_track_changes('xs.orders');
SELECT etl_track_changes('xs.orders');
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS "default"
  FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = 'xs.orders'::regclass AND a.attname = '_etl_xid';
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'xs.orders'::regclass;
SELECT indexdef FROM pg_indexes WHERE schemaname = 'xs' AND tablename = 'orders' ORDER BY 1;
-- not for views, nor a column of another type
CREATE VIEW xs.v AS SELECT * FROM xs.orders;
SELECT etl_track_changes('xs.v');
SELECT etl_rebase_xid('xs.v');
CREATE TABLE xs.wrong (id int, _etl_xid bigint);
SELECT etl_track_changes('xs.wrong');

-- definitions: no other watermark column, no batch_size, no views
SELECT etl_create_pipeline('xid1', 'xs.orders', 'xs.dst', mode => 'xid',
                           watermark_column => 'qty');
SELECT etl_create_pipeline('xid1', 'xs.orders', 'xs.dst', mode => 'xid', batch_size => 10);
SELECT etl_create_pipeline('xid1', 'xs.v', 'xs.dst', mode => 'xid');
SELECT etl_create_pipeline('xid1', 'xs.orders', 'xs.dst', mode => 'xid') > 0 AS created;
SELECT mode, watermark_column FROM etl.pipelines WHERE name = 'xid1';

-- the first run takes everything; the watermark is this cluster's snapshot
SELECT status, rows_extracted, rows_inserted, watermark_from,
       watermark_to ~ '^[0-9]+/[0-9]+:[0-9]+:[0-9,]*$' AS snapshot_watermark,
       split_part(watermark_to, '/', 1) = (SELECT system_identifier::text FROM pg_control_system()) AS this_cluster
  FROM etl_run('xid1');
SELECT * FROM xs.dst ORDER BY id;

-- nothing new: nothing extracted, the watermark moves on to this run's snapshot
SELECT status, rows_extracted, rows_inserted, rows_updated,
       watermark_to <> watermark_from AS moved
  FROM etl_run('xid1');

-- updates (the trigger refreshes _etl_xid) and inserts are taken, nothing else
UPDATE xs.orders SET qty = qty * 10 WHERE id IN (2, 4);
INSERT INTO xs.orders (id, v, qty) VALUES (6, 'v6', 6);
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('xid1');
SELECT * FROM xs.dst ORDER BY id;

-- rows a rolled-back subtransaction wrote are never loaded; the rest of
-- its transaction is
BEGIN;
INSERT INTO xs.orders (id, v, qty) VALUES (7, 'v7', 7);
SAVEPOINT s;
INSERT INTO xs.orders (id, v, qty) VALUES (8, 'v8', 8);
UPDATE xs.orders SET v = 'lost' WHERE id = 1;
ROLLBACK TO SAVEPOINT s;
UPDATE xs.orders SET v = 'kept' WHERE id = 3;
COMMIT;
SELECT status, rows_extracted, rows_inserted, rows_updated FROM etl_run('xid1');
SELECT * FROM xs.dst ORDER BY id;

-- a run inside a transaction that writes the source before and after it:
-- the row written before is loaded now, the one written after by the next
-- run (which takes the first once more, unchanged)
BEGIN;
INSERT INTO xs.orders (id, v, qty) VALUES (9, 'before', 9);
SELECT rows_extracted, rows_inserted FROM etl_run('xid1');
INSERT INTO xs.orders (id, v, qty) VALUES (10, 'after', 10);
COMMIT;
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('xid1');
SELECT rows_extracted FROM etl_run('xid1');
SELECT count(*) AS target_rows, (SELECT count(*) FROM xs.orders) AS source_rows FROM xs.dst;

-- the lag: transaction ids assigned since the last run's snapshot
SELECT lag::numeric >= 0 AS lag_known FROM etl.status WHERE pipeline = 'xid1';

-- a watermark from another cluster (a restore) is refused, with a way out
SELECT '1/' || split_part(watermark, '/', 2) AS foreign_watermark FROM etl.pipelines WHERE name = 'xid1' \gset
CALL regress.store_watermark('xid1', :'foreign_watermark');
SELECT code, message, regexp_replace(detail, 'this one is [0-9]+', 'this one is <this>') AS detail
  FROM regress.run_failing('xid1');
\set VERBOSITY terse
SELECT etl_reset_watermark('xid1', '1/100:100:');
\set VERBOSITY default
SELECT etl_reset_watermark('xid1', 'nonsense');
SELECT etl_reset_watermark('xid1', '100:100:') ~ '^[0-9]+/100:100:$' AS reset_to_snapshot;
SELECT etl_reset_watermark('xid1', NULL);
SELECT rows_extracted, rows_inserted, rows_unchanged FROM etl_run('xid1');

-- a partitioned source: tracked through its parent, updates in any partition
CREATE TABLE xs.events (id int, region text, v int, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE xs.events_eu PARTITION OF xs.events FOR VALUES IN ('eu');
CREATE TABLE xs.events_us PARTITION OF xs.events FOR VALUES IN ('us');
INSERT INTO xs.events SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 6) g;
SELECT etl_track_changes('xs.events');
CREATE TABLE xs.events_dst (id int, region text, v int, PRIMARY KEY (id, region));
SELECT etl_create_pipeline('xid_part', 'xs.events', 'xs.events_dst', mode => 'xid') > 0 AS created;
SELECT rows_extracted, rows_inserted FROM etl_run('xid_part');
UPDATE xs.events SET v = v + 100 WHERE id IN (1, 2);
SELECT rows_extracted, rows_updated FROM etl_run('xid_part');
SELECT * FROM xs.events_dst ORDER BY id;

-- switching a pipeline to mode xid needs no watermark column, and resets it
CREATE TABLE xs.ts_src (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
INSERT INTO xs.ts_src (id) SELECT generate_series(1, 3);
CREATE TABLE xs.ts_dst (id int PRIMARY KEY, at timestamptz);
SELECT etl_create_pipeline('xid_switch', 'xs.ts_src', 'xs.ts_dst', watermark_column => 'at') > 0 AS created;
SELECT rows_extracted FROM etl_run('xid_switch');
SELECT etl_track_changes('xs.ts_src') IS NOT NULL AS tracked;
SELECT etl_alter_pipeline('xid_switch', mode => 'xid') > 0 AS altered;
SELECT mode, watermark_column, watermark FROM etl.pipelines WHERE name = 'xid_switch';
SELECT rows_extracted, rows_unchanged FROM etl_run('xid_switch');

REVOKE USAGE ON SCHEMA xs FROM xid_other;
CALL regress.drop_role('xid_other');
