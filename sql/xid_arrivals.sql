-- xid_arrivals: in mode xid every row is loaded exactly once, whatever
-- _etl_xid it arrives with: the tracking trigger stamps every
-- INSERT and UPDATE (INSERT ... SELECT * from a copy, an explicit value,
-- COPY with the column, a replica session); a table attached as a partition
-- or made a child by INHERIT must carry the attaching transaction's id;
-- a run refuses a source with a table that does not track its changes

CREATE SCHEMA xa;
CREATE TABLE xa.orders (id int PRIMARY KEY, v text, qty int);
INSERT INTO xa.orders SELECT g, 'v' || g, g FROM generate_series(1, 3) g;
SELECT etl_track_changes('xa.orders');
CREATE TABLE xa.dst (id int PRIMARY KEY, v text, qty2 int);
SELECT etl_create_pipeline('xa', 'xa.orders', 'xa.dst', mode => 'xid',
    transform => 'SELECT id, upper(v) AS v, qty * 2 AS qty2 FROM etl_delta') > 0 AS created;
-- the target, row for row, against the transformed source
CREATE VIEW xa.differences AS
SELECT count(*) AS differences FROM (
    (SELECT id, upper(v) AS v, qty * 2 AS qty2 FROM xa.orders
     EXCEPT SELECT id, v, qty2 FROM xa.dst)
    UNION ALL
    (SELECT id, v, qty2 FROM xa.dst
     EXCEPT SELECT id, upper(v) AS v, qty * 2 AS qty2 FROM xa.orders)) d;
SELECT rows_extracted, rows_inserted FROM etl_run('xa');
SELECT * FROM xa.differences;

-- a copy made LIKE ... INCLUDING DEFAULTS keeps the old _etl_xid values;
-- INSERT ... SELECT * brings them back: stamped on the way in, loaded once
CREATE TABLE xa.orders_copy (LIKE xa.orders INCLUDING DEFAULTS);
INSERT INTO xa.orders_copy SELECT * FROM xa.orders;
UPDATE xa.orders_copy SET id = id + 100, v = 'copied ' || v;
SELECT count(*) AS copies_with_old_ids
  FROM xa.orders_copy c JOIN xa.orders o ON o.id = c.id - 100 AND o._etl_xid = c._etl_xid;
INSERT INTO xa.orders SELECT * FROM xa.orders_copy;
SELECT count(*) AS stamped_by_their_insert FROM xa.orders o JOIN xa.orders_copy c USING (id)
 WHERE o._etl_xid <> c._etl_xid;
SELECT rows_extracted, rows_inserted FROM etl_run('xa');
SELECT rows_extracted FROM etl_run('xa');
SELECT * FROM xa.differences;

-- an explicit value, old or far in the future
INSERT INTO xa.orders (id, v, qty, _etl_xid) VALUES (200, 'explicit old', 1, '3'),
                                                    (201, 'explicit future', 1, '99999999999');
SELECT count(*) AS kept_explicit_value FROM xa.orders WHERE _etl_xid IN ('3', '99999999999');
SELECT rows_extracted, rows_inserted FROM etl_run('xa');
SELECT rows_extracted FROM etl_run('xa');
-- an update that sets the column does not keep its value either
UPDATE xa.orders SET v = 'updated', _etl_xid = '3' WHERE id = 1;
SELECT rows_extracted, rows_updated FROM etl_run('xa');
SELECT rows_extracted FROM etl_run('xa');
SELECT * FROM xa.differences;

-- COPY with the column
COPY xa.orders (id, v, qty, _etl_xid) FROM stdin;
300	copied in	3	3
301	copied in too	3	4
\.
SELECT rows_extracted, rows_inserted FROM etl_run('xa');
SELECT rows_extracted FROM etl_run('xa');

-- a session replaying changes (session_replication_role = replica, as
-- logical replication's apply does): the trigger fires ALWAYS
CALL regress.insert_as_replica('xa.orders', '{"id": 400, "v": "replicated", "qty": 4, "_etl_xid": "3"}');
SELECT rows_extracted, rows_inserted FROM etl_run('xa');
SELECT * FROM xa.differences;

-- a table of the source that does not track its changes stops the run
-- (55000, naming it), with nothing loaded and the watermark kept:
-- a disabled trigger, a trigger of an older version firing on UPDATE only
ALTER TABLE xa.orders DISABLE TRIGGER etl_track_changes;
INSERT INTO xa.orders (id, v, qty) VALUES (500, 'while disabled', 5);
SELECT code, message, detail, hint FROM regress.run_failing('xa');
SELECT etl_track_changes('xa.orders');
SELECT tgname, tgtype, tgenabled FROM pg_trigger WHERE tgrelid = 'xa.orders'::regclass;
SELECT rows_extracted, rows_inserted FROM etl_run('xa');
DROP TRIGGER etl_track_changes ON xa.orders;
CREATE TRIGGER etl_track_changes BEFORE UPDATE ON xa.orders
    FOR EACH ROW EXECUTE FUNCTION etl_internal.etl_track_changes_trigger();
SELECT code, message, detail, hint FROM regress.run_failing('xa');
SELECT etl_track_changes('xa.orders');
SELECT tgname, tgtype, tgenabled FROM pg_trigger WHERE tgrelid = 'xa.orders'::regclass;
SELECT rows_extracted FROM etl_run('xa');
SELECT * FROM xa.differences;

-- a partitioned source: ATTACH PARTITION of a filled table is refused
-- unless its rows carry the attaching transaction's id
CREATE TABLE xa.events (id int, region text, v int, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE xa.events_eu PARTITION OF xa.events FOR VALUES IN ('eu');
INSERT INTO xa.events VALUES (1, 'eu', 1), (2, 'eu', 2);
SELECT etl_track_changes('xa.events');
CREATE TABLE xa.events_dst (id int, region text, v int, PRIMARY KEY (id, region));
SELECT etl_create_pipeline('xa_part', 'xa.events', 'xa.events_dst', mode => 'xid') > 0 AS created;
CREATE VIEW xa.events_differences AS
SELECT count(*) AS differences FROM (
    (SELECT id, region, v FROM xa.events EXCEPT SELECT * FROM xa.events_dst)
    UNION ALL
    (SELECT * FROM xa.events_dst EXCEPT SELECT id, region, v FROM xa.events)) d;
SELECT rows_extracted, rows_inserted FROM etl_run('xa_part');
CREATE TABLE xa.events_us (LIKE xa.events INCLUDING DEFAULTS);
INSERT INTO xa.events_us VALUES (3, 'us', 3, '3'), (4, 'us', 4, DEFAULT);
ALTER TABLE xa.events ATTACH PARTITION xa.events_us FOR VALUES IN ('us');
SELECT count(*) AS attached FROM pg_inherits WHERE inhrelid = 'xa.events_us'::regclass;
BEGIN;
UPDATE xa.events_us SET _etl_xid = pg_current_xact_id();
ALTER TABLE xa.events ATTACH PARTITION xa.events_us FOR VALUES IN ('us');
COMMIT;
SELECT rows_extracted, rows_inserted FROM etl_run('xa_part');
SELECT rows_extracted FROM etl_run('xa_part');
SELECT * FROM xa.events_differences;
-- the attached partition got the trigger (enabled ALWAYS) and the index
SELECT tgenabled, tgtype FROM pg_trigger WHERE tgrelid = 'xa.events_us'::regclass;
SELECT count(*) AS xid_indexes FROM pg_indexes WHERE tablename = 'events_us' AND indexdef LIKE '%(_etl_xid)%';
-- an empty table and a new partition attach freely; their rows come later
CREATE TABLE xa.events_ap (LIKE xa.events INCLUDING DEFAULTS);
ALTER TABLE xa.events ATTACH PARTITION xa.events_ap FOR VALUES IN ('ap');
CREATE TABLE xa.events_sa PARTITION OF xa.events FOR VALUES IN ('sa');
INSERT INTO xa.events VALUES (5, 'ap', 5, '3'), (6, 'sa', 6, '3');
SELECT rows_extracted, rows_inserted FROM etl_run('xa_part');
-- a partition whose trigger was disabled stops the run, naming it; the hint
-- names the source, whose etl_track_changes enables its partitions' triggers
ALTER TABLE xa.events_sa DISABLE TRIGGER etl_track_changes;
SELECT code, message, detail, hint FROM regress.run_failing('xa_part');
SELECT etl_track_changes('xa.events');
SELECT rows_extracted FROM etl_run('xa_part');
SELECT * FROM xa.events_differences;

-- INHERIT: a child brings rows the same way, and has no trigger of its own
-- (row triggers are not inherited): refused, then the run asks for it
CREATE TABLE xa.base (id int PRIMARY KEY, v text);
INSERT INTO xa.base VALUES (1, 'base');
SELECT etl_track_changes('xa.base');
CREATE TABLE xa.base_dst (id int PRIMARY KEY, v text);
SELECT etl_create_pipeline('xa_inh', 'xa.base', 'xa.base_dst', mode => 'xid') > 0 AS created;
SELECT rows_extracted FROM etl_run('xa_inh');
CREATE TABLE xa.child (LIKE xa.base INCLUDING DEFAULTS);
INSERT INTO xa.child VALUES (2, 'child', '3');
ALTER TABLE xa.child INHERIT xa.base;
BEGIN;
UPDATE xa.child SET _etl_xid = pg_current_xact_id();
ALTER TABLE xa.child INHERIT xa.base;
COMMIT;
SELECT code, message, detail, hint FROM regress.run_failing('xa_inh');
SELECT etl_track_changes('xa.child');
SELECT rows_extracted, rows_inserted FROM etl_run('xa_inh');
SELECT * FROM xa.base_dst ORDER BY id;

-- a table that tracks its changes takes no partition swap: the partitions
-- it attaches keep the stamps their rows were copied with (0A000 when the
-- pipeline is defined; a swap into a table tracked since is refused by the
-- event trigger, and the run changes nothing)
CREATE TABLE xa.sales_src (id int, sold_on date NOT NULL, amount int,
                           updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO xa.sales_src SELECT g, date '2024-01-01' + g, g FROM generate_series(1, 4) g;
CREATE TABLE xa.sales (id int, sold_on date NOT NULL, amount int, PRIMARY KEY (id, sold_on))
    PARTITION BY RANGE (sold_on);
CREATE TABLE xa.sales_jan PARTITION OF xa.sales FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
SELECT etl_create_pipeline('xa_swap', 'xa.sales_src', 'xa.sales', key => ARRAY['id'],
    watermark_column => 'updated_at', load => 'partition_swap',
    transform => 'SELECT id, sold_on, amount FROM etl_delta') > 0 AS created;
SELECT rows_inserted FROM etl_run('xa_swap');
SELECT etl_track_changes('xa.sales');
SELECT etl_alter_pipeline('xa_swap', batch_size => 100);
UPDATE xa.sales_src SET amount = amount + 10, updated_at = now() WHERE id = 2;
SELECT code, message, detail FROM regress.run_failing('xa_swap');
SELECT id, amount FROM xa.sales ORDER BY id;

-- a role without any privilege on etl_ext's internals is refused the same
-- way: the event trigger's function runs for whoever alters the table
CALL regress.create_role('xa_plain');
GRANT CREATE, USAGE ON SCHEMA xa TO xa_plain;
SET ROLE xa_plain;
CREATE TABLE xa.plain (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
SELECT etl_track_changes('xa.plain');
CREATE TABLE xa.plain_eu (LIKE xa.plain INCLUDING DEFAULTS);
INSERT INTO xa.plain_eu VALUES (1, 'eu', '3');
ALTER TABLE xa.plain ATTACH PARTITION xa.plain_eu FOR VALUES IN ('eu');
SELECT count(*) AS attached FROM pg_inherits WHERE inhrelid = 'xa.plain_eu'::regclass;
RESET ROLE;
DROP TABLE xa.plain, xa.plain_eu;
REVOKE ALL ON SCHEMA xa FROM xa_plain;
CALL regress.drop_role('xa_plain');

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'xa%' ORDER BY name;
\set VERBOSITY terse
DROP SCHEMA xa CASCADE;
\set VERBOSITY default
