-- no_equality: columns of types without a btree or hash equality (point,
-- box, circle, json, xml, point[]) in every mode and load, the target
-- without _etl_row_hash (so changed rows are found by comparing columns).
-- Changed rows are loaded once, also when the change keeps box's and
-- circle's "=" (which compares areas) or the value's text under
-- extra_float_digits = 0; unchanged rows that a run reads again are not
-- rewritten; an array of points no longer fails the run.

CREATE SCHEMA ne;
-- the rows of every source: rows 1 to 7 change (one column each), 8 is read
-- again unchanged, 9 is left alone
CREATE TABLE ne.base (id int PRIMARY KEY, p point, j json, x xml, b box, c circle, pa point[]);
INSERT INTO ne.base
SELECT g, point(g, g / 4.0), json_build_object('a', g), xmlelement(name a, g),
       box(point(0, 0), point(2, g)), circle(point(g, 0), g), ARRAY[point(g, 0), point(0, g)]
  FROM generate_series(1, 9) g;
CREATE FUNCTION ne.changed(t ne.base) RETURNS ne.base LANGUAGE sql AS $fn$
SELECT t.id,
       CASE t.id WHEN 1 THEN point(-1, -1)
                 WHEN 7 THEN point(t.p[0], t.p[1] + 2e-16 * t.p[1]) ELSE t.p END,
       CASE t.id WHEN 2 THEN '{"b": 2}'::json ELSE t.j END,
       CASE t.id WHEN 3 THEN '<b>3</b>'::xml ELSE t.x END,
       CASE t.id WHEN 4 THEN box(point(1, 1), point(3, 1 + t.id)) ELSE t.b END,
       CASE t.id WHEN 5 THEN circle(point(-5, 0), 5) ELSE t.c END,
       CASE t.id WHEN 6 THEN ARRAY[point(6, 0), point(0, -6)] ELSE t.pa END
$fn$;
-- the changes keep box = box, circle = circle and the text of row 7's point
-- under extra_float_digits = 0
SET extra_float_digits = 0;
SELECT t.id, t.b = c.b AS same_box_area, t.c = c.c AS same_circle_area, t.p::text = c.p::text AS same_text
  FROM ne.base t, LATERAL ne.changed(t) c WHERE t.id IN (4, 5, 7) ORDER BY 1;
RESET extra_float_digits;

-- sources: timestamp (at), serial (seq, versions of a row appended), xid
-- (tracked), cdc (change rows), and one table for snapshot and full
CREATE TABLE ne.ts (LIKE ne.base, at timestamptz NOT NULL);
INSERT INTO ne.ts SELECT *, '2024-01-01' FROM ne.base;
CREATE TABLE ne.ser (seq bigint GENERATED ALWAYS AS IDENTITY, LIKE ne.base);
INSERT INTO ne.ser (id, p, j, x, b, c, pa) SELECT * FROM ne.base ORDER BY id;
CREATE TABLE ne.xt (LIKE ne.base INCLUDING INDEXES);
SELECT etl_track_changes('ne.xt') IS NOT NULL AS tracked;
INSERT INTO ne.xt SELECT * FROM ne.base;
CREATE TABLE ne.cdc (_cdc_lsn bigint NOT NULL, _cdc_operation text NOT NULL, LIKE ne.base);
INSERT INTO ne.cdc SELECT id, 'c', * FROM ne.base;
CREATE TABLE ne.whole (LIKE ne.base INCLUDING INDEXES);
INSERT INTO ne.whole SELECT * FROM ne.base;

-- a pipeline per mode and load, each into a target of its own
DO $$
DECLARE
    m text;
    l text;
BEGIN
    FOREACH m IN ARRAY ARRAY['timestamp', 'serial', 'xid', 'cdc', 'snapshot', 'full'] LOOP
        FOREACH l IN ARRAY ARRAY['merge', 'append', 'delete_insert', 'partition_swap'] LOOP
            IF l = 'partition_swap' THEN
                EXECUTE format('CREATE TABLE ne.%I (LIKE ne.base, PRIMARY KEY (id)) PARTITION BY RANGE (id)',
                               m || '_' || l);
            ELSE
                EXECUTE format('CREATE TABLE ne.%I (LIKE ne.base INCLUDING INDEXES)', m || '_' || l);
            END IF;
            PERFORM etl_create_pipeline(m || '_' || l,
                CASE m WHEN 'timestamp' THEN 'ne.ts' WHEN 'serial' THEN 'ne.ser' WHEN 'xid' THEN 'ne.xt'
                       WHEN 'cdc' THEN 'ne.cdc' ELSE 'ne.whole' END,
                'ne.' || m || '_' || l, mode => m, load => l,
                watermark_column => CASE m WHEN 'timestamp' THEN 'at' WHEN 'serial' THEN 'seq' END,
                transform => CASE WHEN m IN ('timestamp', 'serial')
                                  THEN 'SELECT id, p, j, x, b, c, pa FROM etl_delta' END,
                options => CASE WHEN l = 'partition_swap' THEN '{"partition_interval": "3"}'
                                ELSE '{}' END::jsonb);
        END LOOP;
    END LOOP;
END
$$;

-- target_matches(pipeline): the target holds each source row as loaded
-- (compared by row hash: the columns have no equality)
CREATE FUNCTION ne.target_matches(pipeline text, OUT rows bigint, OUT differences bigint)
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($q$
        SELECT (SELECT count(*) FROM ne.%I),
               (SELECT count(*) FROM ne.%I t FULL JOIN ne.base s USING (id)
                 WHERE etl_row_hash(t.p, t.j, t.x, t.b, t.c, t.pa)
                       IS DISTINCT FROM etl_row_hash(s.p, s.j, s.x, s.b, s.c, s.pa))$q$,
        pipeline, pipeline) INTO rows, differences;
END
$fn$;

-- run(pipeline): one run, or the detail of its error (which names no run id)
CREATE FUNCTION ne.run(pipeline text, OUT status text, OUT rows_extracted bigint,
                       OUT rows_inserted bigint, OUT rows_updated bigint,
                       OUT rows_unchanged bigint, OUT rows_rejected bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    detail text;
BEGIN
    SELECT r.status, r.rows_extracted, r.rows_inserted, r.rows_updated, r.rows_unchanged,
           r.rows_rejected
      INTO status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
      FROM etl_run(pipeline) r;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    status := 'failed: ' || detail;
END
$fn$;

-- the first runs load every row
CREATE TABLE ne.first AS
SELECT p.name, r.status, r.rows_inserted
  FROM etl.pipelines p, LATERAL ne.run(p.name) r WHERE p.target LIKE 'ne.%';
SELECT status, count(*) AS pipelines, sum(rows_inserted) AS rows_inserted FROM ne.first GROUP BY 1;
SELECT count(*) AS pipelines, sum(m.rows) AS rows, sum(m.differences) AS differences
  FROM ne.first f, LATERAL ne.target_matches(f.name) m;

-- the change: rows 1 to 7 change in every source, row 8 is read again
-- unchanged (a newer watermark value, a new version, an update to the same
-- values, a change row)
UPDATE ne.base b SET p = c.p, j = c.j, x = c.x, b = c.b, c = c.c, pa = c.pa
  FROM ne.base t, LATERAL ne.changed(t) c WHERE b.id = t.id;
UPDATE ne.ts t SET p = b.p, j = b.j, x = b.x, b = b.b, c = b.c, pa = b.pa, at = '2024-01-02'
  FROM ne.base b WHERE t.id = b.id AND b.id <= 8;
INSERT INTO ne.ser (id, p, j, x, b, c, pa) SELECT * FROM ne.base WHERE id <= 8 ORDER BY id;
UPDATE ne.xt t SET p = b.p, j = b.j, x = b.x, b = b.b, c = b.c, pa = b.pa
  FROM ne.base b WHERE t.id = b.id AND b.id <= 8;
INSERT INTO ne.cdc SELECT 100 + id, 'u', * FROM ne.base WHERE id <= 8;
UPDATE ne.whole t SET p = b.p, j = b.j, x = b.x, b = b.b, c = b.c, pa = b.pa
  FROM ne.base b WHERE t.id = b.id AND b.id <= 7;

-- the target rows before the second runs, by pipeline and key
CREATE TABLE ne.before (name text, id int, version text);
DO $$
DECLARE
    n text;
BEGIN
    FOR n IN SELECT name FROM etl.pipelines WHERE target LIKE 'ne.%' LOOP
        EXECUTE format('INSERT INTO ne.before SELECT %L, id, xmin::text FROM ne.%I', n, n);
    END LOOP;
END
$$;

-- the second runs, from a session whose float output loses precision:
-- merge and partition_swap update the seven changed rows, once; append
-- keeps the keys it has; delete_insert replaces the rows it reads (in modes
-- snapshot and full, whose batch is the whole source, the changed ones)
SET extra_float_digits = 0;
CREATE TABLE ne.second AS
SELECT p.name, r.* FROM etl.pipelines p, LATERAL ne.run(p.name) r WHERE p.target LIKE 'ne.%';
RESET extra_float_digits;
SELECT * FROM ne.second ORDER BY name;

-- merge, partition_swap and delete_insert hold the source row for row;
-- append holds the first versions of rows 1 to 7
SELECT s.name, m.rows, m.differences
  FROM ne.second s, LATERAL ne.target_matches(s.name) m ORDER BY 1;

-- merge rewrote the changed rows only: rows 8 and 9 kept their versions
CREATE FUNCTION ne.rewritten(pipeline text) RETURNS int[]
LANGUAGE plpgsql AS $fn$
DECLARE
    ids int[];
BEGIN
    EXECUTE format($q$
        SELECT array_agg(b.id ORDER BY b.id) FROM ne.before b JOIN ne.%I t USING (id)
         WHERE b.name = %L AND t.xmin::text <> b.version$q$, pipeline, pipeline) INTO ids;
    RETURN ids;
END
$fn$;
SELECT name, ne.rewritten(name) AS rewritten FROM ne.second WHERE name LIKE '%merge' ORDER BY 1;

-- third runs change nothing
SELECT p.name, r.status, r.rows_inserted + r.rows_updated AS written, r.rows_unchanged
  FROM etl.pipelines p, LATERAL ne.run(p.name) r
 WHERE p.target LIKE 'ne.%' AND p.load IN ('merge', 'partition_swap') ORDER BY 1;

SET client_min_messages = warning;
SELECT count(etl_drop_pipeline(name)) AS dropped FROM etl.pipelines WHERE target LIKE 'ne.%';
DROP SCHEMA ne CASCADE;
RESET client_min_messages;
