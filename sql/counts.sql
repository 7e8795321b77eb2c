-- counts: every run accounts for every row it extracted.
--
--   rows_extracted = rows_inserted + rows_updated + rows_deleted
--                    + rows_unchanged + rows_rejected
--
-- except in modes snapshot and full, whose rows_deleted counts target rows
-- whose key left the source -- rows no run extracted: there
--
--   rows_extracted = rows_inserted + rows_updated + rows_unchanged + rows_rejected
--
-- Every mode x load runs a first load and then an increment with inserts,
-- updates, unchanged rows, deletes, rows that fail their transform or the
-- target's CHECK, a row a quarantine check sets aside, and in mode cdc
-- changes superseded within the batch and a delete of a key the target does
-- not have.  Each increment's counts are checked against the rule above and
-- against what they must be, and the target row for row against the
-- source's rows as that mode and load load them.

CREATE SCHEMA cn;
CREATE SEQUENCE cn.clock CACHE 1;  -- watermark values: timestamps, serial numbers, positions

-- the logical source of each pipeline (what its rows are now), from which
-- the expected target is computed
CREATE TABLE cn.truth (pipeline text, id int, n int, t text, PRIMARY KEY (pipeline, id));

-- cn.write applies one change (c, u, d) to a pipeline's source as its mode
-- sees changes, and to its logical source
CREATE FUNCTION cn.write(pipeline text, mode text, op text, k int, nv int, tv text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    src text := format('cn.%I', pipeline || '_src');
    tick bigint := nextval('cn.clock');
BEGIN
    IF mode = 'cdc' THEN
        EXECUTE format('INSERT INTO %s VALUES ($1, $2, $3, $4, $5)', src)
            USING k, nv, tv, tick, op;
    ELSIF op = 'c' THEN
        EXECUTE format('INSERT INTO %s VALUES ($1, $2, $3, $4, $5)', src)
            USING k, nv, tv, '2024-01-01'::timestamptz + tick * interval '1 second', tick;
    ELSIF op = 'u' THEN
        EXECUTE format('UPDATE %s SET n = $2, t = $3, at = $4, seq = $5 WHERE id = $1', src)
            USING k, nv, tv, '2024-01-01'::timestamptz + tick * interval '1 second', tick;
    ELSE
        EXECUTE format('DELETE FROM %s WHERE id = $1', src) USING k;
    END IF;
    IF op = 'd' THEN
        DELETE FROM cn.truth t WHERE t.pipeline = write.pipeline AND t.id = k;
    ELSE
        INSERT INTO cn.truth VALUES (write.pipeline, k, nv, tv)
        ON CONFLICT ON CONSTRAINT truth_pkey DO UPDATE SET n = EXCLUDED.n, t = EXCLUDED.t;
    END IF;
END $$;

-- cn.prepare creates a pipeline's source and target, its pipeline (and its
-- quarantine check) and writes rows 1 .. 10 (a later statement loads them:
-- mode xid takes rows committed before its run)
CREATE FUNCTION cn.prepare(mode text, load text, soft boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p text := mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load;
    src text := format('cn.%I', p || '_src');
    dst text := format('cn.%I', p || '_dst');
BEGIN
    IF mode = 'cdc' THEN
        EXECUTE format('CREATE TABLE %s (id int, n int, t text, _cdc_lsn bigint, _cdc_operation text)', src);
    ELSE
        EXECUTE format('CREATE TABLE %s (id int PRIMARY KEY, n int, t text, at timestamptz, seq bigint)', src);
    END IF;
    IF mode = 'xid' THEN
        PERFORM etl_track_changes(src);
    END IF;
    IF load = 'partition_swap' THEN
        EXECUTE format('CREATE TABLE %s (id int PRIMARY KEY, n int CHECK (n >= 0), m int,'
                       ' _deleted_at timestamptz) PARTITION BY RANGE (id)', dst);
        EXECUTE format('CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (0) TO (10)',
                       format('cn.%I', p || '_dst_low'), dst);
        EXECUTE format('CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (10) TO (100)',
                       format('cn.%I', p || '_dst_high'), dst);
    ELSE
        EXECUTE format('CREATE TABLE %s (id int PRIMARY KEY, n int CHECK (n >= 0), m int,'
                       ' _deleted_at timestamptz)', dst);
    END IF;
    PERFORM etl_create_pipeline(p, src, dst, mode => mode, load => load,
        watermark_column => CASE mode WHEN 'timestamp' THEN 'at' WHEN 'serial' THEN 'seq'
                                      WHEN 'cdc' THEN '_cdc_lsn' END,
        key => ARRAY['id'], error_threshold => 50,
        transform => 'SELECT id, n, t::int AS m FROM etl_delta',
        options => CASE WHEN soft THEN '{"delete_mode": "soft"}' ELSE '{}' END::jsonb);
    PERFORM etl_add_check(p, 'range', column_name => 'm', params => '{"max": 10000}',
                          severity => 'quarantine');
    FOR k IN 1 .. 10 LOOP
        PERFORM cn.write(p, mode, 'c', k, k, k::text);
    END LOOP;
    RETURN p;
END $$;

-- cn.expected is the target a pipeline must have now, given its target
-- before the run (cn.before): each key's latest good source row; a key
-- whose source row is bad keeps its old row; append keeps the rows it had;
-- a key gone from the source stays unless the mode deletes; with soft
-- deletes its row stays, stamped while the key is gone
CREATE TABLE cn.before (pipeline text, id int, n int, m int, deleted boolean);
CREATE FUNCTION cn.expected(p text, mode text, load text, soft boolean)
RETURNS TABLE (id int, n int, m int, deleted boolean) LANGUAGE sql AS $$
    WITH src AS (
        SELECT t.id, t.n, t.t, t.n >= 0 AND t.t ~ '^[0-9]+$' AND t.t::int <= 10000 AS good
          FROM cn.truth t WHERE t.pipeline = p),
    old AS (SELECT b.id, b.n, b.m, b.deleted FROM cn.before b WHERE b.pipeline = p)
    SELECT s.id, s.n, s.t::int, false FROM src s
     WHERE s.good AND NOT (load = 'append' AND s.id IN (SELECT old.id FROM old))
    UNION ALL
    SELECT o.id, o.n, o.m, soft AND o.id NOT IN (SELECT src.id FROM src)
      FROM old o
     WHERE o.id IN (SELECT s.id FROM src s WHERE NOT s.good OR load = 'append')
        OR (o.id NOT IN (SELECT src.id FROM src)
            AND (soft OR mode NOT IN ('cdc', 'snapshot', 'full')))
$$;

-- cn.check runs the pipeline and reports its counts, whether they add up
-- and how many target rows differ from the expected ones
CREATE FUNCTION cn.check(p text, mode text, load text, soft boolean DEFAULT false)
RETURNS TABLE (pipeline text, extracted bigint, inserted bigint, updated bigint,
               deleted bigint, unchanged bigint, rejected bigint, adds_up boolean,
               differences bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dst text := format('cn.%I', p || '_dst');
    diff bigint;
BEGIN
    DELETE FROM cn.before b WHERE b.pipeline = p;
    EXECUTE format('INSERT INTO cn.before SELECT $1, id, n, m, _deleted_at IS NOT NULL FROM %s', dst)
        USING p;
    SELECT * INTO r FROM etl_run(p);
    EXECUTE format('SELECT count(*) FROM ((SELECT * FROM cn.expected($1, $2, $3, $4)
                      EXCEPT SELECT id, n, m, _deleted_at IS NOT NULL FROM %1$s)
                     UNION ALL (SELECT id, n, m, _deleted_at IS NOT NULL FROM %1$s
                      EXCEPT SELECT * FROM cn.expected($1, $2, $3, $4))) d', dst)
        INTO diff USING p, mode, load, soft;
    RETURN QUERY SELECT p, r.rows_extracted, r.rows_inserted, r.rows_updated,
        r.rows_deleted, r.rows_unchanged, r.rows_rejected,
        r.rows_extracted = r.rows_inserted + r.rows_updated + r.rows_unchanged
                           + r.rows_rejected
                           + CASE WHEN mode IN ('snapshot', 'full') THEN 0 ELSE r.rows_deleted END,
        diff;
END $$;

-- the increment of every mode x load: rows 1, 2 updated, 3, 4 rewritten
-- unchanged, 5 updated to a value the target's CHECK refuses, 6 to one the
-- quarantine check sets aside, 7 deleted, 11 and 12 new, 13 new with a
-- value its transform cannot cast (in mode snapshot, which runs the
-- transform over the whole source to compare it, such a row fails the run:
-- there 13 is refused by the CHECK instead); mode cdc also creates 12 in two
-- changes (the first superseded) and creates and deletes 14 (a delete of a
-- key the target does not have)
CREATE FUNCTION cn.increment(p text, mode text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cn.write(p, mode, 'u', 1, 101, '1');
    PERFORM cn.write(p, mode, 'u', 2, 102, '2');
    PERFORM cn.write(p, mode, 'u', 3, 3, '3');
    PERFORM cn.write(p, mode, 'u', 4, 4, '4');
    PERFORM cn.write(p, mode, 'u', 5, -1, '5');
    PERFORM cn.write(p, mode, 'u', 6, 6, '99999');
    PERFORM cn.write(p, mode, 'd', 7, NULL, NULL);
    PERFORM cn.write(p, mode, 'c', 11, 11, '11');
    IF mode = 'cdc' THEN
        PERFORM cn.write(p, mode, 'c', 12, 0, '0');
        PERFORM cn.write(p, mode, 'c', 14, 14, '14');
        PERFORM cn.write(p, mode, 'd', 14, NULL, NULL);
    END IF;
    PERFORM cn.write(p, mode, CASE WHEN mode = 'cdc' THEN 'u' ELSE 'c' END, 12, 12, '12');
    PERFORM cn.write(p, mode, 'c', 13, CASE mode WHEN 'snapshot' THEN -13 ELSE 13 END,
                     CASE mode WHEN 'snapshot' THEN '13' ELSE 'x' END);
END $$;

CREATE TABLE cn.combos AS
SELECT mode, load, false AS soft, row_number() OVER () AS ord
  FROM unnest(ARRAY['timestamp', 'serial', 'xid', 'cdc', 'snapshot', 'full']) WITH ORDINALITY AS m(mode, mo),
       unnest(ARRAY['merge', 'append', 'delete_insert', 'partition_swap']) WITH ORDINALITY AS l(load, lo)
 ORDER BY mo, lo;
INSERT INTO cn.combos
SELECT 'snapshot', load, true, 100 + lo
  FROM unnest(ARRAY['merge', 'append', 'delete_insert', 'partition_swap']) WITH ORDINALITY AS l(load, lo);

SET client_min_messages = warning;
SELECT count(cn.prepare(mode, load, soft)) AS pipelines FROM cn.combos;
SELECT count(etl_run(mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load))
       AS first_loads FROM cn.combos;
-- each first load: rows 1 .. 10, 10 extracted and inserted
CREATE FUNCTION cn.first_load_differs(p text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((SELECT g, g, g, NULL::timestamptz FROM generate_series(1, 10) g
                      EXCEPT SELECT id, n, m, _deleted_at FROM %1$s)
                     UNION ALL (SELECT id, n, m, _deleted_at FROM %1$s
                      EXCEPT SELECT g, g, g, NULL FROM generate_series(1, 10) g)) d',
                   format('cn.%I', p || '_dst')) INTO n;
    RETURN n;
END $$;
WITH p AS (SELECT mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load AS name
             FROM cn.combos)
SELECT count(*) AS runs,
       count(*) FILTER (WHERE r.status = 'succeeded' AND r.rows_extracted = 10
                        AND r.rows_inserted = 10 AND r.rows_updated + r.rows_deleted
                            + r.rows_unchanged + r.rows_rejected = 0
                        AND cn.first_load_differs(p.name) = 0) AS right
  FROM p JOIN etl.runs r ON r.pipeline = p.name;
SELECT count(cn.increment(mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load, mode))
       AS increments FROM cn.combos;
RESET client_min_messages;

SELECT c.* FROM cn.combos o,
       LATERAL cn.check(mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load,
                        mode, load, soft) c
 ORDER BY o.ord;

-- the dead letters of the increments: the same three rows everywhere but
-- in append, which skips row 5 (its key is in the target) without trying it
SELECT stage, sqlstate, record->>'id' AS id, count(*) AS pipelines
  FROM etl.dead_letters d JOIN cn.combos o
    ON d.pipeline = mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load
 GROUP BY 1, 2, 3 ORDER BY 3, 1;

-- mode snapshot, soft deletes: row 7 comes back (a revived key is an
-- updated row), row 8 leaves (stamped: counted as deleted); rows 5, 6 and
-- 13, still bad, are pending dead letters already: read again, they count
-- as unchanged
SET client_min_messages = warning;
SELECT count(cn.write(mode || '_soft_' || load, mode, 'c', 7, 7, '7')) +
       count(cn.write(mode || '_soft_' || load, mode, 'd', 8, NULL, NULL)) AS changes
  FROM cn.combos WHERE soft;
RESET client_min_messages;
SELECT c.* FROM cn.combos o, LATERAL cn.check(mode || '_soft_' || load, mode, load, soft) c
 WHERE soft ORDER BY o.ord;

-- versions superseded within a batch: a source that keeps every version of
-- a key (no unique key) brings key 1 twice and the new key 6 twice; merge,
-- delete_insert and partition_swap load each key's latest version, append
-- the first of a new key and nothing of a known one; the versions not
-- loaded count as unchanged
CREATE TABLE cn.versions (id int, n int, at timestamptz NOT NULL);
INSERT INTO cn.versions SELECT g, g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 5) g;
CREATE TABLE cn.versions_merge (id int PRIMARY KEY, n int);
CREATE TABLE cn.versions_append (id int PRIMARY KEY, n int);
CREATE TABLE cn.versions_delete_insert (id int PRIMARY KEY, n int);
CREATE TABLE cn.versions_partition_swap (id int PRIMARY KEY, n int) PARTITION BY RANGE (id);
CREATE TABLE cn.versions_partition_swap_all PARTITION OF cn.versions_partition_swap
    FOR VALUES FROM (0) TO (100);
SELECT count(etl_create_pipeline('versions_' || load, 'cn.versions', 'cn.versions_' || load,
                                 watermark_column => 'at', load => load)) AS pipelines
  FROM unnest(ARRAY['merge', 'append', 'delete_insert', 'partition_swap']) AS load;
SELECT count(etl_run('versions_' || load)) AS first_loads
  FROM unnest(ARRAY['merge', 'append', 'delete_insert', 'partition_swap']) AS load;
INSERT INTO cn.versions VALUES (1, 101, '2024-02-01 00:01'), (1, 201, '2024-02-01 00:02'),
                               (6, 6, '2024-02-01 00:03'), (6, 16, '2024-02-01 00:04');
SELECT 'versions_' || load AS pipeline, r.rows_extracted AS extracted, r.rows_inserted AS inserted,
       r.rows_updated AS updated, r.rows_deleted AS deleted, r.rows_unchanged AS unchanged,
       r.rows_rejected AS rejected
  FROM unnest(ARRAY['merge', 'append', 'delete_insert', 'partition_swap']) AS load,
       LATERAL etl_run('versions_' || load) r;
SELECT * FROM (
    SELECT 'merge' AS load, * FROM cn.versions_merge
    UNION ALL SELECT 'append', * FROM cn.versions_append
    UNION ALL SELECT 'delete_insert', * FROM cn.versions_delete_insert
    UNION ALL SELECT 'partition_swap', * FROM cn.versions_partition_swap) v
 WHERE id IN (1, 6) ORDER BY 1, 2;

-- a catch-up in steps of 4 over 10 rows, one of them (key 3) changed
-- between two steps: each step accounts for its rows too
CREATE TABLE cn.steps (id int PRIMARY KEY, n int, at timestamptz NOT NULL);
CREATE TABLE cn.steps_dst (id int PRIMARY KEY, n int CHECK (n >= 0));
INSERT INTO cn.steps SELECT g, CASE WHEN g = 9 THEN -9 ELSE g END,
       '2024-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('steps', 'cn.steps', 'cn.steps_dst', watermark_column => 'at',
                           batch_size => 4, error_threshold => 50) > 0 AS created;
SELECT status, rows_extracted FROM etl_internal.etl_run_step('steps', 'catch_up', NULL, NULL,
                                                etl_internal.etl_batch_start('steps', 'catch_up'));
UPDATE cn.steps SET n = 33, at = '2024-01-01 00:07:30' WHERE id = 3;
SET client_min_messages = warning;  -- progress notices carry timings
CALL etl_catch_up('steps');
RESET client_min_messages;
SELECT rows_extracted AS extracted, rows_inserted AS inserted, rows_updated AS updated,
       rows_deleted AS deleted, rows_unchanged AS unchanged, rows_rejected AS rejected
  FROM etl.runs WHERE pipeline = 'steps' ORDER BY run_id;
SELECT count(*) AS differences FROM (
    (SELECT id, n FROM cn.steps WHERE n >= 0 EXCEPT SELECT id, n FROM cn.steps_dst)
    UNION ALL (SELECT id, n FROM cn.steps_dst EXCEPT SELECT id, n FROM cn.steps)) d;

-- mode snapshot over an unchanged source, with a quarantine check added
-- since the last run that two of its rows fail: nothing loads, the two rows
-- are dead letters counted as rejected, the others unchanged
CREATE TABLE cn.quiet (id int PRIMARY KEY, n int);
CREATE TABLE cn.quiet_dst (id int PRIMARY KEY, n int);
INSERT INTO cn.quiet SELECT g, g FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('quiet', 'cn.quiet', 'cn.quiet_dst', mode => 'snapshot',
                           error_threshold => 50) > 0 AS created;
SELECT rows_extracted, rows_inserted FROM etl_run('quiet');
SELECT etl_add_check('quiet', 'range', column_name => 'n', params => '{"max": 8}',
                     severity => 'quarantine');
SELECT rows_extracted AS extracted, rows_inserted AS inserted, rows_updated AS updated,
       rows_deleted AS deleted, rows_unchanged AS unchanged, rows_rejected AS rejected
  FROM etl_run('quiet');
SELECT record->>'id' AS id, stage FROM etl.dead_letters WHERE pipeline = 'quiet' ORDER BY 1;

-- a replay of dead letters is a run that counts the same way: the
-- increment's dead letters of two pipelines, replayed once their transform
-- tolerates the bad cast and the quarantine check is gone; row 5 still
-- fails the target's CHECK
SELECT count(etl_alter_pipeline(p, transform =>
           'SELECT id, n, CASE WHEN t ~ ''^[0-9]+$'' THEN t::int END AS m FROM etl_delta'))
       + count(etl_drop_check(p, p || '_m_range')) AS changed
  FROM unnest(ARRAY['timestamp_merge', 'cdc_delete_insert']) AS p;
SELECT p AS pipeline, r.* FROM unnest(ARRAY['timestamp_merge', 'cdc_delete_insert']) AS p,
       LATERAL etl_retry_dead_letters(p) r;
SELECT pipeline, rows_extracted AS extracted, rows_inserted AS inserted, rows_updated AS updated,
       rows_deleted AS deleted, rows_unchanged AS unchanged, rows_rejected AS rejected
  FROM etl.runs WHERE triggered_by = 'replay'
   AND pipeline IN ('timestamp_merge', 'cdc_delete_insert') ORDER BY run_id;
SELECT id, n, m FROM cn.timestamp_merge_dst WHERE id IN (5, 6, 13) ORDER BY id;

-- every run of this file, first loads included, as etl.runs recorded it
SELECT count(*) AS runs,
       count(*) FILTER (WHERE rows_extracted <> rows_inserted + rows_updated + rows_unchanged
                               + rows_rejected
                               + CASE WHEN p.mode IN ('snapshot', 'full') THEN 0 ELSE rows_deleted END)
           AS not_adding_up
  FROM etl.runs r JOIN etl.pipelines p ON p.pipeline_id = r.pipeline_id
 WHERE r.status = 'succeeded'
   AND (r.pipeline IN (SELECT mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load FROM cn.combos)
        OR r.pipeline LIKE 'versions\_%' OR r.pipeline IN ('steps', 'quiet'));

SELECT count(etl_drop_pipeline(mode || CASE WHEN soft THEN '_soft' ELSE '' END || '_' || load))
       AS dropped FROM cn.combos;
SELECT count(etl_drop_pipeline(name)) AS dropped FROM etl.pipelines
 WHERE name LIKE 'versions\_%' OR name IN ('steps', 'quiet');
DROP SCHEMA cn CASCADE;
