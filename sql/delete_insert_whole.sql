-- delete_insert_whole: load delete_insert in modes snapshot and full, whose
-- batch is the whole source, replaces only the rows that changed and
-- inserts the new keys; the rows that did not change are not rewritten
-- (same xmin, same ctid, a column the load does not write kept) and count
-- as unchanged

CREATE SCHEMA dw;
CREATE TABLE dw.src (id int PRIMARY KEY, v text, n numeric);
INSERT INTO dw.src SELECT g, 'v' || g, g * 1.5 FROM generate_series(1, 10) g;
-- targets: note is not loaded (its default comes with every inserted row),
-- one target compares columns, the other stored row hashes
CREATE TABLE dw.snap (id int PRIMARY KEY, v text, n numeric(8,2), note text DEFAULT 'loaded');
CREATE TABLE dw.snap_hash (id int PRIMARY KEY, v text, n numeric(8,2), note text DEFAULT 'loaded',
                           _etl_row_hash bytea);
CREATE TABLE dw.full (id int PRIMARY KEY, v text, n numeric(8,2), note text DEFAULT 'loaded');
SELECT etl_create_pipeline('dw_snap', 'dw.src', 'dw.snap', mode => 'snapshot',
                           load => 'delete_insert') > 0 AS created;
SELECT etl_create_pipeline('dw_snap_hash', 'dw.src', 'dw.snap_hash', mode => 'snapshot',
                           load => 'delete_insert') > 0 AS created;
SELECT etl_create_pipeline('dw_full', 'dw.src', 'dw.full', mode => 'full',
                           load => 'delete_insert') > 0 AS created;
SELECT name, (etl_run(name)).rows_inserted FROM etl.pipelines WHERE name LIKE 'dw\_%' ORDER BY name;

-- each target row as it is now: its version (xmin, ctid), marked by hand
CREATE TABLE dw.before AS
SELECT 'snap' AS t, id, xmin::text AS x, ctid::text AS c FROM dw.snap
UNION ALL SELECT 'snap_hash', id, xmin::text, ctid::text FROM dw.snap_hash
UNION ALL SELECT 'full', id, xmin::text, ctid::text FROM dw.full;
UPDATE dw.snap SET note = 'kept' WHERE id IN (2, 3);
UPDATE dw.snap_hash SET note = 'kept' WHERE id IN (2, 3);
UPDATE dw.full SET note = 'kept' WHERE id IN (2, 3);
UPDATE dw.before b SET x = t.xmin::text, c = t.ctid::text FROM dw.snap t
 WHERE b.t = 'snap' AND b.id = t.id;
UPDATE dw.before b SET x = t.xmin::text, c = t.ctid::text FROM dw.snap_hash t
 WHERE b.t = 'snap_hash' AND b.id = t.id;
UPDATE dw.before b SET x = t.xmin::text, c = t.ctid::text FROM dw.full t
 WHERE b.t = 'full' AND b.id = t.id;

-- one row changed, one new, one gone; one changed only below the target's
-- scale (1.5 -> 1.501 stores 1.50 again): unchanged where columns are
-- compared, changed where the stored row hash (of the batch row) is, as in
-- load merge
UPDATE dw.src SET v = 'changed' WHERE id = 3;
UPDATE dw.src SET n = 1.501 WHERE id = 1;
INSERT INTO dw.src VALUES (11, 'new', 16.5);
DELETE FROM dw.src WHERE id = 5;
SELECT name, r.rows_extracted, r.rows_inserted, r.rows_updated, r.rows_unchanged, r.rows_deleted
  FROM etl.pipelines, etl_run(name) r WHERE name LIKE 'dw\_%' ORDER BY name;

-- which target rows were rewritten: only 3 (changed), 11 (new) and, with
-- row hashes, 1; 2 kept its note, 3 got the default with its new version
CREATE VIEW dw.now AS
SELECT 'snap' AS t, id, xmin::text AS x, ctid::text AS c, note FROM dw.snap
UNION ALL SELECT 'snap_hash', id, xmin::text, ctid::text, note FROM dw.snap_hash
UNION ALL SELECT 'full', id, xmin::text, ctid::text, note FROM dw.full;
SELECT n.t, n.id, b.id IS NULL AS new, n.x <> b.x OR n.c <> b.c AS rewritten, n.note
  FROM dw.now n LEFT JOIN dw.before b USING (t, id)
 WHERE b.id IS NULL OR n.x <> b.x OR n.c <> b.c OR n.note <> 'loaded'
 ORDER BY n.t, n.id;
SELECT t, count(*) AS rows_not_rewritten FROM dw.now n JOIN dw.before b USING (t, id, x, c)
 GROUP BY t ORDER BY t;

-- each target equals the source row for row (n at the target's scale)
CREATE FUNCTION dw.differences(dst regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM (
        (SELECT id, v, n::numeric(8,2) FROM dw.src EXCEPT ALL SELECT id, v, n FROM %1$s)
        UNION ALL
        (SELECT id, v, n FROM %1$s EXCEPT ALL SELECT id, v, n::numeric(8,2) FROM dw.src)) d',
        dst) INTO n;
    RETURN n;
END $$;
SELECT dw.differences('dw.snap') AS snap, dw.differences('dw.snap_hash') AS snap_hash,
       dw.differences('dw.full') AS "full";

-- a run over an unchanged source writes nothing
CREATE TABLE dw.mid AS SELECT * FROM dw.now;
SELECT name, r.rows_extracted, r.rows_inserted, r.rows_updated, r.rows_unchanged, r.rows_deleted
  FROM etl.pipelines, etl_run(name) r WHERE name LIKE 'dw\_%' ORDER BY name;
SELECT count(*) AS rows, count(*) FILTER (WHERE m.id IS NULL) AS rewritten
  FROM dw.now n LEFT JOIN dw.mid m USING (t, id, x, c);
-- and the runs say what they did
SELECT pipeline, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_deleted
  FROM etl.runs WHERE pipeline LIKE 'dw\_%' ORDER BY pipeline, run_id;
-- etl_explain shows the load statement such a run uses: the batch
-- classified against the target, not the INSERT of an incremental batch
CREATE TABLE dw.src_ts (id int PRIMARY KEY, v text, n numeric, t timestamptz DEFAULT now());
SELECT etl_create_pipeline('dw_ts', 'dw.src_ts', 'dw.full', watermark_column => 't',
                           load => 'delete_insert') > 0 AS created;
SELECT name, e AS load_line
  FROM etl.pipelines, etl_explain(name) e
 WHERE name LIKE 'dw\_%' AND e LIKE '-- load:%' ORDER BY name;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'dw\_%' ORDER BY name;
DROP SCHEMA dw CASCADE;
