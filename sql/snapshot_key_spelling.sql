-- snapshot_key_spelling: mode snapshot keeps a target row whose key is
-- still in the source under another spelling that the target's equality
-- finds equal (numeric 1.0 and 1.00, text under a case-insensitive
-- collation: two key hashes, one key), with hard and soft deletes; a key
-- that really leaves the source is still deleted or stamped.

CREATE SCHEMA ks;
CREATE TABLE ks.src (k numeric PRIMARY KEY, v int);
CREATE TABLE ks.hard_dst (k numeric PRIMARY KEY, v int);
CREATE TABLE ks.soft_dst (k numeric PRIMARY KEY, v int, _deleted_at timestamptz);
SELECT etl_create_pipeline('ks_hard', 'ks.src', 'ks.hard_dst', mode => 'snapshot') > 0 AS created;
SELECT etl_create_pipeline('ks_soft', 'ks.src', 'ks.soft_dst', mode => 'snapshot',
                           options => '{"delete_mode": "soft"}') > 0 AS created;

-- ks.run(p) runs pipeline p: its status and counts, and its target as
-- text (k:v, (d) for a row stamped deleted), ordered by key
CREATE FUNCTION ks.run(p text)
RETURNS TABLE (status text, extracted bigint, inserted bigint, updated bigint,
               deleted bigint, unchanged bigint, rejected bigint, target text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    t text;
BEGIN
    SELECT * INTO r FROM etl_run(p);
    EXECUTE format('SELECT string_agg(k::text || '':'' || v || CASE WHEN %s THEN ''(d)'''
                   ' ELSE '''' END, '' '' ORDER BY k) FROM ks.%I',
                   CASE WHEN p = 'ks_soft' THEN '_deleted_at IS NOT NULL' ELSE 'false' END,
                   substr(p, 4) || '_dst') INTO t;
    RETURN QUERY SELECT r.status, r.rows_extracted, r.rows_inserted, r.rows_updated,
        r.rows_deleted, r.rows_unchanged, r.rows_rejected, t;
END $$;

INSERT INTO ks.src VALUES (1.0, 1), (2, 2);
SELECT * FROM ks.run('ks_hard');
SELECT * FROM ks.run('ks_soft');

-- key 1.0 is spelt 1.00 now: its signature's key hash leaves the source,
-- but the target still finds the key there, so its row stays (not deleted,
-- not stamped), and so it does in the next run
UPDATE ks.src SET k = 1.00 WHERE k = 1;
SELECT * FROM ks.run('ks_hard');
SELECT * FROM ks.run('ks_soft');
SELECT * FROM ks.run('ks_hard');
SELECT * FROM ks.run('ks_soft');
SELECT p.name, s.key FROM etl.snapshot_signatures s JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name LIKE 'ks\_%' ORDER BY p.name, s.key::text;

-- the key leaves the source: deleted, or stamped
DELETE FROM ks.src WHERE k = 1;
SELECT * FROM ks.run('ks_hard');
SELECT * FROM ks.run('ks_soft');

-- a text key whose target column has a case-insensitive collation: 'bob'
-- spelt 'BOB' keeps its row too
CREATE COLLATION ks.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE ks.names (k text PRIMARY KEY, v int);
CREATE TABLE ks.names_dst (k text COLLATE ks.ci PRIMARY KEY, v int);
INSERT INTO ks.names VALUES ('bob', 1), ('ann', 2);
SELECT etl_create_pipeline('ks_names', 'ks.names', 'ks.names_dst', mode => 'snapshot') > 0 AS created;
SELECT status, rows_inserted FROM etl_run('ks_names');
UPDATE ks.names SET k = 'BOB' WHERE k = 'bob';
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged
  FROM etl_run('ks_names');
SELECT k, v FROM ks.names_dst ORDER BY v;
DELETE FROM ks.names WHERE k = 'BOB';
SELECT status, rows_extracted, rows_deleted, rows_unchanged FROM etl_run('ks_names');
SELECT k, v FROM ks.names_dst ORDER BY v;

-- the delete of the vanished keys is planned without nested loops: the
-- caller's enable_nestloop is as it was after a run that deletes, and
-- after one that fails in the delete (a trigger of the target refuses it,
-- seeing the setting the run gave the statement)
SET enable_nestloop = on;
DELETE FROM ks.names WHERE k = 'ann';
INSERT INTO ks.names VALUES ('cy', 3), ('di', 4);
SELECT status, rows_inserted, rows_deleted FROM etl_run('ks_names');
SHOW enable_nestloop;
CREATE FUNCTION ks.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'deleting % refused', OLD.k
        USING ERRCODE = '23514', DETAIL = 'enable_nestloop: ' || current_setting('enable_nestloop');
END $$;
CREATE TRIGGER refuse BEFORE DELETE ON ks.names_dst FOR EACH ROW EXECUTE FUNCTION ks.refuse();
DELETE FROM ks.names WHERE k = 'cy';
DO $$
DECLARE
    d text;
BEGIN
    PERFORM etl_run('ks_names');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'run failed: %, %', SQLSTATE, d;
END $$;
SHOW enable_nestloop;
SELECT k, v FROM ks.names_dst ORDER BY v;
RESET enable_nestloop;

SET client_min_messages = warning;
SELECT etl_drop_pipeline('ks_hard'), etl_drop_pipeline('ks_soft'), etl_drop_pipeline('ks_names');
DROP SCHEMA ks CASCADE;
RESET client_min_messages;
