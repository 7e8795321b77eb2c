-- serial_sources: which serial-mode sources a run can make safe (it waits
-- for the writers of the table and for the transactions that drew from the
-- column's sequences), and the NOTICE for those it cannot

CREATE SCHEMA ss;
CREATE TABLE ss.dst (id bigint PRIMARY KEY, v text);

-- safe: bigserial, identity, a default that calls nextval on a named
-- sequence, a partitioned table whose partitions share the parent's default
CREATE TABLE ss.serial_src (id bigserial PRIMARY KEY, v text);
CREATE TABLE ss.identity_src (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE SEQUENCE ss.shared_seq START 100;
CREATE TABLE ss.named_src (id bigint PRIMARY KEY DEFAULT nextval('ss.shared_seq'), v text);
CREATE TABLE ss.parted_src (id bigserial, region text, v text) PARTITION BY LIST (region);
CREATE TABLE ss.parted_eu PARTITION OF ss.parted_src FOR VALUES IN ('eu');
SELECT etl_create_pipeline('ss_serial', 'ss.serial_src', 'ss.dst', mode => 'serial', watermark_column => 'id') > 0 AS created;
SELECT etl_create_pipeline('ss_identity', 'ss.identity_src', 'ss.dst', mode => 'serial', watermark_column => 'id') > 0 AS created;
SELECT etl_create_pipeline('ss_named', 'ss.named_src', 'ss.dst', mode => 'serial', watermark_column => 'id') > 0 AS created;
SELECT etl_create_pipeline('ss_parted', 'ss.parted_src', 'ss.dst', mode => 'serial', watermark_column => 'id',
                           transform => 'SELECT id, v FROM etl_delta') > 0 AS created;

-- not safe, accepted with a NOTICE pointing to mode xid: ids set by the
-- client, a default drawing from a sequence named at run time, a view
CREATE TABLE ss.client_ids (id bigint PRIMARY KEY, v text);
SELECT etl_create_pipeline('ss_client', 'ss.client_ids', 'ss.dst', mode => 'serial', watermark_column => 'id') > 0 AS created;
CREATE TABLE ss.dynamic_src (id bigint PRIMARY KEY DEFAULT nextval(('ss.' || 'shared_seq')::regclass), v text);
SELECT etl_create_pipeline('ss_dynamic', 'ss.dynamic_src', 'ss.dst', mode => 'serial', watermark_column => 'id') > 0 AS created;
CREATE VIEW ss.serial_view AS SELECT id, v FROM ss.serial_src;
SELECT etl_create_pipeline('ss_view', 'ss.serial_view', 'ss.dst', mode => 'serial', watermark_column => 'id') > 0 AS created;
-- altering says so again when the source, mode or watermark column change
SELECT etl_alter_pipeline('ss_client', batch_size => 10) > 0 AS altered;
SELECT etl_alter_pipeline('ss_serial', source => 'ss.client_ids') > 0 AS altered;
SELECT etl_alter_pipeline('ss_serial', source => 'ss.serial_src') > 0 AS altered;
-- a cached sequence is still refused (a partition's own one too)
CREATE SEQUENCE ss.cached_seq CACHE 10;
CREATE TABLE ss.parted_cached (id bigint DEFAULT nextval('ss.shared_seq'), region text, v text) PARTITION BY LIST (region);
CREATE TABLE ss.parted_cached_us PARTITION OF ss.parted_cached (id DEFAULT nextval('ss.cached_seq')) FOR VALUES IN ('us');
SELECT etl_create_pipeline('ss_cached', 'ss.parted_cached', 'ss.dst', mode => 'serial', watermark_column => 'id',
                           transform => 'SELECT id, v FROM etl_delta');

-- the runs of the safe ones load what they must
INSERT INTO ss.serial_src (v) VALUES ('a'), ('b');
SELECT rows_extracted, rows_inserted, watermark_to FROM etl_run('ss_serial');
INSERT INTO ss.named_src (v) VALUES ('c');
SELECT rows_extracted, rows_inserted, watermark_to FROM etl_run('ss_named');
SELECT id, v FROM ss.dst ORDER BY id;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'ss\_%' ORDER BY name;
\set VERBOSITY terse
DROP SCHEMA ss CASCADE;
\set VERBOSITY default
