-- replay_snapshot: in modes snapshot and full (no watermark column), a dead
-- letter is superseded, not replayed, when no source row of its key is the
-- record any more (the fixed or changed version was loaded by a later run,
-- or is due to be) or when the source no longer has its key; a record equal
-- to the source row is replayed and loads, also when the replay runs under
-- another TimeZone than the run that made it; a record with a NULL key part
-- is never superseded.

CREATE SCHEMA rs;
-- rs.prepare creates source, target and pipeline p of mode m: columns id,
-- v, at; the target refuses v >= 100 (CHECK small)
CREATE FUNCTION rs.prepare(p text, m text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE rs.%I (id int PRIMARY KEY, v int, at timestamptz)', p || '_src');
    EXECUTE format('CREATE TABLE rs.%I (id int PRIMARY KEY, v int, at timestamptz,'
                   ' CONSTRAINT small CHECK (v < 100))', p || '_dst');
    PERFORM etl_create_pipeline(p, format('rs.%I', p || '_src'), format('rs.%I', p || '_dst'),
        mode => m, error_threshold => 100,
        transform => 'SELECT id, v, at FROM etl_delta');
END $$;
-- rs.target(p) is the target of pipeline p as text, id:v@at (at in UTC),
-- ordered by id
CREATE FUNCTION rs.target(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    EXECUTE format('SELECT coalesce(string_agg(id || '':'' || v || ''@'''
                   ' || pg_catalog.to_char(at AT TIME ZONE ''UTC'', ''HH24:MI''), '' '' ORDER BY id), '''')'
                   ' FROM rs.%I', p || '_dst') INTO t;
    RETURN t;
END $$;
-- rs.letters(p) lists the dead letters of pipeline p: id:v of the record,
-- status, resolution, retries, in the order they were made
CREATE FUNCTION rs.letters(p text)
RETURNS TABLE (key text, v text, status text, resolution text, retry_count int)
LANGUAGE sql AS $$
    SELECT d.record->>'id', d.record->>'v', d.status, d.resolution, d.retry_count
      FROM etl.dead_letters d WHERE d.pipeline = p ORDER BY d.id
$$;

SET TimeZone = 'UTC';
SELECT rs.prepare('rs_snapshot', 'snapshot'), rs.prepare('rs_full', 'full');
-- 1 loads; 2, 3, 4 and 5 break the CHECK and become dead letters
INSERT INTO rs.rs_snapshot_src VALUES (1, 1, '2024-01-01 01:00'), (2, 200, '2024-01-01 02:00'),
    (3, 300, '2024-01-01 03:00'), (4, 400, '2024-01-01 04:00'), (5, 500, '2024-01-01 05:00');
INSERT INTO rs.rs_full_src SELECT * FROM rs.rs_snapshot_src;
SELECT p, r.status, r.rows_inserted, r.rows_rejected, rs.target(p)
  FROM unnest(ARRAY['rs_snapshot', 'rs_full']) AS p, etl_run(p) AS r;

-- 2 is fixed in the source, 3 deleted from it, 5 changed to another bad
-- value; 4 stays as it is.  The next run loads 2's fixed version and makes
-- a dead letter of 5's new one.
UPDATE rs.rs_snapshot_src SET v = 20 WHERE id = 2;
UPDATE rs.rs_full_src SET v = 20 WHERE id = 2;
DELETE FROM rs.rs_snapshot_src WHERE id = 3;
DELETE FROM rs.rs_full_src WHERE id = 3;
UPDATE rs.rs_snapshot_src SET v = 550 WHERE id = 5;
UPDATE rs.rs_full_src SET v = 550 WHERE id = 5;
SELECT p, r.status, r.rows_extracted, r.rows_inserted, r.rows_updated, r.rows_deleted,
       r.rows_unchanged, r.rows_rejected, rs.target(p)
  FROM unnest(ARRAY['rs_snapshot', 'rs_full']) AS p, etl_run(p) AS r;

-- the target accepts the old versions now; the replay runs under another
-- TimeZone than the runs that made the dead letters
ALTER TABLE rs.rs_snapshot_dst DROP CONSTRAINT small, ADD CONSTRAINT small CHECK (v < 1000);
ALTER TABLE rs.rs_full_dst DROP CONSTRAINT small, ADD CONSTRAINT small CHECK (v < 1000);
SET TimeZone = 'Asia/Tokyo';
-- the letters of 2 (v 200) and of 5's first version (v 500) are superseded
-- by newer versions, that of 3 because its row is gone; 4 and 5's current
-- version (v 550) are replayed and load
SELECT * FROM etl_retry_dead_letters('rs_snapshot');
SELECT * FROM etl_retry_dead_letters('rs_full');
SELECT * FROM rs.letters('rs_snapshot');
SELECT * FROM rs.letters('rs_full');
-- both targets hold the source's rows, row for row: 2 keeps its fixed
-- version, 3 is not loaded back
SELECT p, rs.target(p), rs.target(p) = '1:1@01:00 2:20@02:00 4:400@04:00 5:550@05:00' AS as_expected
  FROM unnest(ARRAY['rs_snapshot', 'rs_full']) AS p;
SELECT p, (SELECT count(*) FROM (SELECT id, v, at FROM rs.rs_snapshot_src
                                 EXCEPT SELECT id, v, at FROM rs.rs_snapshot_dst) x) AS missing,
          (SELECT count(*) FROM (SELECT id, v, at FROM rs.rs_snapshot_dst
                                 EXCEPT SELECT id, v, at FROM rs.rs_snapshot_src) x) AS extra
  FROM (VALUES ('rs_snapshot')) AS v(p)
UNION ALL
SELECT p, (SELECT count(*) FROM (SELECT id, v, at FROM rs.rs_full_src
                                 EXCEPT SELECT id, v, at FROM rs.rs_full_dst) x),
          (SELECT count(*) FROM (SELECT id, v, at FROM rs.rs_full_dst
                                 EXCEPT SELECT id, v, at FROM rs.rs_full_src) x)
  FROM (VALUES ('rs_full')) AS v(p);
-- the replay is recorded as a run of the two rows it loaded
SELECT pipeline, triggered_by, rows_extracted, rows_inserted, rows_updated, rows_rejected
  FROM etl.runs WHERE pipeline IN ('rs_snapshot', 'rs_full') AND triggered_by = 'replay'
 ORDER BY pipeline;
-- the next runs find the target as the source: nothing written
SELECT p, r.status, r.rows_inserted, r.rows_updated, r.rows_deleted, r.rows_rejected, rs.target(p)
  FROM unnest(ARRAY['rs_snapshot', 'rs_full']) AS p, etl_run(p) AS r;
SELECT * FROM etl_retry_dead_letters('rs_snapshot');
RESET TimeZone;

-- a key with a NULL part: the source has no primary key, rows are found by
-- the pipeline's key (a, b); a dead letter with b NULL is not superseded
-- (no source row can be told to have its key), it is replayed and fails
-- again, while one whose key left the source is superseded as gone
CREATE TABLE rs.nk_src (a int, b int, v int);
CREATE TABLE rs.nk_dst (a int NOT NULL, b int, v int CHECK (v < 100), UNIQUE (a, b));
SELECT etl_create_pipeline('rs_nk', 'rs.nk_src', 'rs.nk_dst', mode => 'snapshot',
    key => ARRAY['a', 'b'], error_threshold => 100,
    transform => 'SELECT a, b, v FROM etl_delta') > 0 AS created;
INSERT INTO rs.nk_src VALUES (1, 1, 1), (2, NULL, 200), (3, 3, 300);
SELECT status, rows_inserted, rows_rejected FROM etl_run('rs_nk');
DELETE FROM rs.nk_src WHERE a = 3;
SELECT * FROM etl_retry_dead_letters('rs_nk');
SELECT d.record->>'a' AS a, d.record->>'b' AS b, d.status, d.resolution, d.retry_count, d.sqlstate
  FROM etl.dead_letters d WHERE d.pipeline = 'rs_nk' ORDER BY d.id;
SELECT a, b, v FROM rs.nk_dst ORDER BY a;

-- a key whose type has no "=" (a view's json column) is compared as jsonb:
-- the dead letter of the fixed row is superseded, the target keeps the
-- fixed version
CREATE TABLE rs.ne_t (id int PRIMARY KEY, v int);
CREATE VIEW rs.ne_v AS SELECT pg_catalog.to_json(id) AS id, v FROM rs.ne_t;
CREATE TABLE rs.ne_dst (id text PRIMARY KEY, v int CONSTRAINT small CHECK (v < 100));
SELECT etl_create_pipeline('rs_ne', 'rs.ne_v', 'rs.ne_dst', mode => 'snapshot',
    error_threshold => 100, transform => 'SELECT id::text AS id, v FROM etl_delta') > 0 AS created;
INSERT INTO rs.ne_t VALUES (1, 1), (2, 200);
SELECT status, rows_inserted, rows_rejected FROM etl_run('rs_ne');
UPDATE rs.ne_t SET v = 20 WHERE id = 2;
SELECT status, rows_inserted, rows_updated, rows_rejected FROM etl_run('rs_ne');
ALTER TABLE rs.ne_dst DROP CONSTRAINT small;
SELECT * FROM etl_retry_dead_letters('rs_ne');
SELECT d.record->>'id' AS id, d.record->>'v' AS v, d.status, d.resolution
  FROM etl.dead_letters d WHERE d.pipeline = 'rs_ne' ORDER BY d.id;
SELECT id, v FROM rs.ne_dst ORDER BY id;

-- columns the source lost or gained since the dead letters: the record is
-- compared as the replay stages it, a lost column ignored, a gained one
-- NULL.  2's row has NULL in the new column: replayed.  3's has a value
-- there, which a replay would not load: superseded, and the next run loads
-- the source's row.
CREATE TABLE rs.ac_src (id int PRIMARY KEY, v int, junk text);
CREATE TABLE rs.ac_dst (id int PRIMARY KEY, v int CONSTRAINT small CHECK (v < 100), note text);
SELECT etl_create_pipeline('rs_ac', 'rs.ac_src', 'rs.ac_dst', mode => 'snapshot', on_schema_change => 'ignore',
    error_threshold => 100, transform => 'SELECT id, v FROM etl_delta') > 0 AS created;
INSERT INTO rs.ac_src VALUES (1, 1, 'j'), (2, 200, 'j'), (3, 300, 'j');
SELECT status, rows_inserted, rows_rejected FROM etl_run('rs_ac');
ALTER TABLE rs.ac_src DROP COLUMN junk;
ALTER TABLE rs.ac_src ADD COLUMN note text;
UPDATE rs.ac_src SET note = 'n' WHERE id = 3;
ALTER TABLE rs.ac_dst DROP CONSTRAINT small;
SELECT * FROM etl_retry_dead_letters('rs_ac');
SELECT d.record->>'id' AS id, d.record->>'v' AS v, d.status, d.resolution
  FROM etl.dead_letters d WHERE d.pipeline = 'rs_ac' ORDER BY d.id;
SELECT id, v FROM rs.ac_dst ORDER BY id;
SELECT status, rows_inserted, rows_updated, rows_rejected FROM etl_run('rs_ac');
SELECT id, v FROM rs.ac_dst ORDER BY id;

-- source columns named like the query's aliases (etl_s, etl_r, etl_d): the
-- rows compared are whole rows, never one of those columns.  2 is fixed
-- (superseded), 3 unchanged (replayed).
CREATE TABLE rs.al_src (id int PRIMARY KEY, v int, etl_s int, etl_r int, etl_d int);
CREATE TABLE rs.al_dst (id int PRIMARY KEY, v int CONSTRAINT small CHECK (v < 100));
SELECT etl_create_pipeline('rs_al', 'rs.al_src', 'rs.al_dst', mode => 'snapshot',
    error_threshold => 100, transform => 'SELECT id, v FROM etl_delta') > 0 AS created;
INSERT INTO rs.al_src VALUES (1, 1, 7, 7, 7), (2, 200, 7, 7, 7), (3, 300, 7, 7, 7);
SELECT status, rows_inserted, rows_rejected FROM etl_run('rs_al');
UPDATE rs.al_src SET v = 2 WHERE id = 2;
SELECT status, rows_inserted, rows_rejected FROM etl_run('rs_al');
ALTER TABLE rs.al_dst DROP CONSTRAINT small;
SELECT * FROM etl_retry_dead_letters('rs_al');
SELECT d.record->>'id' AS id, d.record->>'v' AS v, d.status, d.resolution
  FROM etl.dead_letters d WHERE d.pipeline = 'rs_al' ORDER BY d.id;
SELECT id, v FROM rs.al_dst ORDER BY id;

SELECT etl_drop_pipeline('rs_snapshot'), etl_drop_pipeline('rs_full'), etl_drop_pipeline('rs_nk'),
       etl_drop_pipeline('rs_ne'), etl_drop_pipeline('rs_ac'), etl_drop_pipeline('rs_al');
DROP SCHEMA rs CASCADE;
