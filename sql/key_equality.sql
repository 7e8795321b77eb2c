-- key_equality: generated SQL compares keys with the equality of the
-- target key type's default operator class, written schema-qualified, not
-- with whatever "=" resolves to under the pinned search_path.  A citext
-- key (in a schema off the search_path): "=" would be text's, through
-- citext's implicit cast, case-sensitive where the target's unique index
-- is not.  A source key 'BOB' updates target row 'bob' in modes timestamp
-- (merge, delete_insert) and full, with no dead letter; mode snapshot keeps
-- a row whose key only changed case; mode cdc deletes and updates the row
-- of a key spelt otherwise; a domain over citext compares alike; a dead
-- letter whose key has a later version spelt otherwise is superseded;
-- loads append and partition_swap find the key too.

CREATE SCHEMA ke;
CREATE EXTENSION citext SCHEMA ke;
CREATE TABLE ke.src (k ke.citext, v int, at timestamptz);
CREATE TABLE ke.merge_dst (k ke.citext PRIMARY KEY, v int);
CREATE TABLE ke.di_dst (k ke.citext PRIMARY KEY, v int);
CREATE TABLE ke.full_dst (k ke.citext PRIMARY KEY, v int);
CREATE DOMAIN ke.name_d AS ke.citext;
CREATE TABLE ke.dom_dst (k ke.name_d PRIMARY KEY, v int);
SELECT etl_create_pipeline('ke_merge', 'ke.src', 'ke.merge_dst',
    transform => 'SELECT k, v FROM etl_delta',
    watermark_column => 'at') > 0 AS created;
SELECT etl_create_pipeline('ke_di', 'ke.src', 'ke.di_dst',
    transform => 'SELECT k, v FROM etl_delta',
    watermark_column => 'at', load => 'delete_insert') > 0 AS created;
SELECT etl_create_pipeline('ke_full', 'ke.src', 'ke.full_dst', mode => 'full',
    transform => 'SELECT k, v FROM etl_delta') > 0 AS created;
SELECT etl_create_pipeline('ke_dom', 'ke.src', 'ke.dom_dst',
    transform => 'SELECT k::ke.name_d AS k, v FROM etl_delta',
    watermark_column => 'at') > 0 AS created;

-- ke.run(p) runs pipeline p: its status, counts and dead letters, and its
-- target as text (k:v), ordered by v
CREATE FUNCTION ke.run(p text)
RETURNS TABLE (status text, extracted bigint, inserted bigint, updated bigint,
               deleted bigint, rejected bigint, dead_letters bigint, target text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    t text;
BEGIN
    SELECT * INTO r FROM etl_run(p);
    EXECUTE format('SELECT string_agg(k::text || '':'' || v, '' '' ORDER BY v) FROM ke.%I',
                   substr(p, 4) || '_dst') INTO t;
    RETURN QUERY SELECT r.status, r.rows_extracted, r.rows_inserted, r.rows_updated,
        r.rows_deleted, r.rows_rejected,
        (SELECT count(*) FROM etl.dead_letters d JOIN etl.pipelines q USING (pipeline_id)
          WHERE q.name = p), t;
END $$;

-- the targets hold 'bob' (and 'ann'); the source spells it 'BOB'
INSERT INTO ke.merge_dst VALUES ('bob', 1), ('ann', 2);
INSERT INTO ke.di_dst VALUES ('bob', 1), ('ann', 2);
INSERT INTO ke.full_dst VALUES ('bob', 1), ('ann', 2);
INSERT INTO ke.dom_dst VALUES ('bob', 1), ('ann', 2);
INSERT INTO ke.src VALUES ('BOB', 10, now()), ('ann', 20, now()), ('Cy', 30, now());

-- merge updates 'bob' in place (its key stays as stored), delete_insert
-- replaces it with 'BOB'; full loads the whole source the same way
SELECT * FROM ke.run('ke_merge');
SELECT * FROM ke.run('ke_di');
SELECT * FROM ke.run('ke_full');
SELECT * FROM ke.run('ke_dom');

-- a later version of 'cy', spelt 'CY', updates the row 'Cy'
INSERT INTO ke.src VALUES ('CY', 31, now());
DELETE FROM ke.src WHERE k OPERATOR(ke.=) 'cy' AND v = 30;
SELECT * FROM ke.run('ke_merge');
SELECT * FROM ke.run('ke_di');
SELECT * FROM ke.run('ke_full');
SELECT * FROM ke.run('ke_dom');

-- mode snapshot: 'bob' spelt 'BOB' in the source keeps its target row,
-- updated, neither deleted nor rejected, in that run and the next; a key
-- that leaves the source is deleted
CREATE TABLE ke.snap (k ke.citext PRIMARY KEY, v int);
CREATE TABLE ke.snap_dst (k ke.citext PRIMARY KEY, v int);
SELECT etl_create_pipeline('ke_snap', 'ke.snap', 'ke.snap_dst', mode => 'snapshot') > 0 AS created;
INSERT INTO ke.snap VALUES ('bob', 1), ('ann', 2);
SELECT * FROM ke.run('ke_snap');
UPDATE ke.snap SET k = 'BOB', v = 3 WHERE k OPERATOR(ke.=) 'bob';
SELECT * FROM ke.run('ke_snap');
SELECT * FROM ke.run('ke_snap');
DELETE FROM ke.snap WHERE k OPERATOR(ke.=) 'ann';
SELECT * FROM ke.run('ke_snap');

-- load append skips 'BOB', whose key the target has as 'bob'; load
-- partition_swap rebuilds the partition with 'bob' updated
CREATE TABLE ke.app_dst (k ke.citext PRIMARY KEY, v int);
INSERT INTO ke.app_dst VALUES ('bob', 1);
SELECT etl_create_pipeline('ke_app', 'ke.snap', 'ke.app_dst', mode => 'snapshot',
    load => 'append') > 0 AS created;
SELECT * FROM ke.run('ke_app');
CREATE TABLE ke.sales (k ke.citext, d date, v int, at timestamptz);
CREATE TABLE ke.swap_dst (k ke.citext, d date, v int, PRIMARY KEY (k, d))
    PARTITION BY RANGE (d);
CREATE TABLE ke.swap_dst_2024_01 PARTITION OF ke.swap_dst
    FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
INSERT INTO ke.swap_dst VALUES ('bob', '2024-01-05', 1), ('ann', '2024-01-06', 2);
INSERT INTO ke.sales VALUES ('BOB', '2024-01-05', 10, now()), ('Cy', '2024-01-07', 30, now());
SELECT etl_create_pipeline('ke_swap', 'ke.sales', 'ke.swap_dst', watermark_column => 'at',
    load => 'partition_swap', transform => 'SELECT k, d, v FROM etl_delta') > 0 AS created;
SELECT * FROM ke.run('ke_swap');

-- mode cdc: a delete of 'BOB' deletes the row 'bob', an update of 'ANN'
-- updates the row 'ann'
CREATE TABLE ke.changes (lsn pg_lsn, _cdc_operation text, k ke.citext, v int);
CREATE TABLE ke.cdc_dst (k ke.citext PRIMARY KEY, v int);
SELECT etl_create_pipeline('ke_cdc', 'ke.changes', 'ke.cdc_dst', mode => 'cdc',
    watermark_column => 'lsn') > 0 AS created;
INSERT INTO ke.cdc_dst VALUES ('bob', 1), ('ann', 2);
INSERT INTO ke.changes VALUES ('0/10', 'd', 'BOB', NULL), ('0/20', 'u', 'ANN', 20);
SELECT * FROM ke.run('ke_cdc');

-- a dead letter of 'bob' whose source row is now 'BOB', a later version,
-- is superseded, not replayed over the row that version loaded
CREATE TABLE ke.items (k ke.citext PRIMARY KEY, qty text, at timestamptz NOT NULL);
CREATE TABLE ke.items_dst (k ke.citext PRIMARY KEY, qty int);
INSERT INTO ke.items VALUES ('bob', 'x1', '2024-01-01');
SELECT etl_create_pipeline('ke_items', 'ke.items', 'ke.items_dst', watermark_column => 'at',
    error_threshold => 100, transform => 'SELECT k, qty::int AS qty FROM etl_delta') > 0 AS created;
SELECT status, rows_inserted, rows_rejected FROM etl_run('ke_items');
UPDATE ke.items SET k = 'BOB', qty = '5', at = '2024-01-02';
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('ke_items');
SELECT etl_alter_pipeline('ke_items', transform =>
    $$SELECT k, ltrim(qty, 'x')::int AS qty FROM etl_delta$$) > 0 AS altered;
SELECT * FROM etl_retry_dead_letters('ke_items');
SELECT k, qty FROM ke.items_dst;
SELECT record->>'k' AS k, status, resolution FROM etl.dead_letters WHERE pipeline = 'ke_items';

SET client_min_messages = warning;
SELECT etl_drop_pipeline('ke_merge'), etl_drop_pipeline('ke_di'), etl_drop_pipeline('ke_full'),
       etl_drop_pipeline('ke_dom'), etl_drop_pipeline('ke_snap'), etl_drop_pipeline('ke_cdc'),
       etl_drop_pipeline('ke_items'), etl_drop_pipeline('ke_app'), etl_drop_pipeline('ke_swap');
DROP SCHEMA ke CASCADE;
RESET client_min_messages;
