-- snapshot_rejects: mode snapshot stores the signatures of every key of a
-- run but those of its rejected or pending rows, in every load it supports.
-- A key that vanishes from the source while another row stays rejected is
-- deleted from the target; keys loaded meanwhile are not loaded again; a
-- rejected key keeps its previous signature (or none), so it is compared
-- again and loads once fixed, on the source's side or on the target's; a
-- failed run stores nothing.

CREATE SCHEMA sr;
CREATE TABLE sr.loads (load text, ord int);
INSERT INTO sr.loads VALUES ('merge', 1), ('delete_insert', 2), ('partition_swap', 3), ('append', 4);

-- sr.target(p) is the target of pipeline p as text: id:v, then (d) for a
-- row stamped deleted, ordered by key
CREATE FUNCTION sr.target(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    EXECUTE format('SELECT coalesce(string_agg(concat_ws('','', a, b) || '':'' || v'
                   ' || CASE WHEN _deleted_at IS NOT NULL THEN ''(d)'' ELSE '''' END,'
                   ' '' '' ORDER BY a, b), '''') FROM sr.%I', p || '_dst') INTO t;
    RETURN t;
END $$;

-- sr.signed(p) lists the keys pipeline p has signatures of
CREATE FUNCTION sr.signed(p text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(concat_ws(',', s.key->>'a', s.key->>'b'), ' '
                               ORDER BY (s.key->>'a')::int, (s.key->>'b')::int), '')
      FROM etl.snapshot_signatures s JOIN etl.pipelines q USING (pipeline_id)
     WHERE q.name = p
$$;

-- sr.prepare creates source, target and pipeline p: columns a, b, v, keyed
-- by a (the source's primary key), or with keyed_by_two by a and b (the
-- source has no unique key); the target refuses v <= 0 and v >= 1000
-- (CHECK pos, small); with load partition_swap it is partitioned by a, and
-- keyed by a alone
CREATE FUNCTION sr.prepare(p text, load text, keyed_by_two boolean, options jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    two boolean := keyed_by_two AND load <> 'partition_swap';
BEGIN
    EXECUTE format('CREATE TABLE sr.%I (a int %s, b int, v int)', p || '_src',
                   CASE WHEN keyed_by_two THEN '' ELSE 'PRIMARY KEY' END);
    EXECUTE format('CREATE TABLE sr.%I (a int, b int, v int, _deleted_at timestamptz,'
                   ' CONSTRAINT pos CHECK (v > 0), CONSTRAINT small CHECK (v < 1000),'
                   ' PRIMARY KEY (%s)) %s', p || '_dst', CASE WHEN two THEN 'a, b' ELSE 'a' END,
                   CASE WHEN load = 'partition_swap' THEN 'PARTITION BY RANGE (a)' ELSE '' END);
    IF load = 'partition_swap' THEN
        EXECUTE format('CREATE TABLE sr.%I PARTITION OF sr.%I FOR VALUES FROM (0) TO (10)',
                       p || '_dst_low', p || '_dst');
        EXECUTE format('CREATE TABLE sr.%I PARTITION OF sr.%I FOR VALUES FROM (10) TO (100)',
                       p || '_dst_high', p || '_dst');
    END IF;
    PERFORM etl_create_pipeline(p, format('sr.%I', p || '_src'), format('sr.%I', p || '_dst'),
        mode => 'snapshot', load => load, error_threshold => 50,
        key => CASE WHEN two THEN ARRAY['a', 'b'] ELSE ARRAY['a'] END,
        transform => CASE WHEN two THEN 'SELECT a, b, v FROM etl_delta'
                          ELSE 'SELECT a, v FROM etl_delta' END,
        options => options);
END $$;

-- sr.before holds each target's rows (their xmin) and signatures before a run
CREATE TABLE sr.before (pipeline text, a int, b int, xmin_text text);
CREATE TABLE sr.signatures_before (pipeline text, key jsonb, row_hash bytea);

-- sr.check runs pipeline p and reports its status and counts, whether they
-- add up (extracted = inserted + updated + unchanged + rejected, deleted on
-- top), the target, whether it is the expected one, and how many target
-- rows that were there before the run were written by it (rewritten: rows
-- updated, stamped or revived; with partition_swap every row of a partition
-- it swaps)
CREATE FUNCTION sr.check(p text, expected text)
RETURNS TABLE (pipeline text, status text, extracted bigint, inserted bigint, updated bigint,
               deleted bigint, unchanged bigint, rejected bigint, adds_up boolean,
               target text, as_expected boolean, rewritten bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    t text;
    n bigint;
BEGIN
    DELETE FROM sr.before x WHERE x.pipeline = p;
    EXECUTE format('INSERT INTO sr.before SELECT $1, a, b, xmin::text FROM sr.%I', p || '_dst')
        USING p;
    DELETE FROM sr.signatures_before x WHERE x.pipeline = p;
    INSERT INTO sr.signatures_before
    SELECT p, s.key, s.row_hash FROM etl.snapshot_signatures s
      JOIN etl.pipelines q USING (pipeline_id) WHERE q.name = p;
    SELECT * INTO r FROM etl_run(p);
    t := sr.target(p);
    EXECUTE format('SELECT count(*) FROM sr.%I d JOIN sr.before x ON x.pipeline = $1'
                   ' AND x.a = d.a AND x.b IS NOT DISTINCT FROM d.b'
                   ' WHERE x.xmin_text <> d.xmin::text', p || '_dst') INTO n USING p;
    RETURN QUERY SELECT p, r.status, r.rows_extracted, r.rows_inserted, r.rows_updated,
        r.rows_deleted, r.rows_unchanged, r.rows_rejected,
        r.rows_extracted = r.rows_inserted + r.rows_updated + r.rows_unchanged + r.rows_rejected,
        t, t = expected, n;
END $$;

-- sr.check_failed runs pipeline p, which must fail: its error's SQLSTATE,
-- the status and rejected rows of the run recorded, the target, whether it
-- is the expected one, and how many of its rows the run wrote
CREATE FUNCTION sr.check_failed(p text, expected text)
RETURNS TABLE (pipeline text, sqlstate text, status text, rejected bigint, target text,
               as_expected boolean, rewritten bigint)
LANGUAGE plpgsql AS $$
DECLARE
    state text;
    t text;
    n bigint;
BEGIN
    DELETE FROM sr.before x WHERE x.pipeline = p;
    EXECUTE format('INSERT INTO sr.before SELECT $1, a, b, xmin::text FROM sr.%I', p || '_dst')
        USING p;
    DELETE FROM sr.signatures_before x WHERE x.pipeline = p;
    INSERT INTO sr.signatures_before
    SELECT p, s.key, s.row_hash FROM etl.snapshot_signatures s
      JOIN etl.pipelines q USING (pipeline_id) WHERE q.name = p;
    BEGIN
        PERFORM etl_run(p);
    EXCEPTION WHEN OTHERS THEN
        state := SQLSTATE;
    END;
    t := sr.target(p);
    EXECUTE format('SELECT count(*) FROM sr.%I d JOIN sr.before x ON x.pipeline = $1'
                   ' AND x.a = d.a AND x.b IS NOT DISTINCT FROM d.b'
                   ' WHERE x.xmin_text <> d.xmin::text', p || '_dst') INTO n USING p;
    RETURN QUERY SELECT p, state, r.status, r.rows_rejected, t, t = expected, n
      FROM etl.runs r WHERE r.pipeline = p ORDER BY r.run_id DESC LIMIT 1;
END $$;

-- sr.signature_kept(p, k) tells whether the signature of key a = k is
-- what it was before the last sr.check (both missing counts as kept)
CREATE FUNCTION sr.signature_kept(p text, k int) RETURNS boolean LANGUAGE sql AS $$
    SELECT (SELECT x.row_hash FROM sr.signatures_before x
             WHERE x.pipeline = p AND (x.key->>'a')::int = k)
           IS NOT DISTINCT FROM
           (SELECT s.row_hash FROM etl.snapshot_signatures s JOIN etl.pipelines q USING (pipeline_id)
             WHERE q.name = p AND (s.key->>'a')::int = k)
$$;

-- 1. The defect's case: a source whose row 3 the target's CHECK refuses, in
-- every load.  Each run's counts and target are checked, and the keys with
-- a signature.
SELECT count(sr.prepare('r_' || load, load, false, '{}')) AS pipelines FROM sr.loads;
INSERT INTO sr.r_merge_src (a, v) VALUES (1, 1), (2, 2), (3, -3);
INSERT INTO sr.r_delete_insert_src SELECT * FROM sr.r_merge_src;
INSERT INTO sr.r_partition_swap_src SELECT * FROM sr.r_merge_src;
INSERT INTO sr.r_append_src SELECT * FROM sr.r_merge_src;
CREATE FUNCTION sr.each(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(statement, 'r_merge_src');
    EXECUTE format(statement, 'r_delete_insert_src');
    EXECUTE format(statement, 'r_partition_swap_src');
    EXECUTE format(statement, 'r_append_src');
END $$;

-- the first run loads 1 and 2; 3 is a dead letter; 1 and 2 are signed
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('r_' || l.load, '1:1 2:2') c ORDER BY l.ord;

-- 1 leaves the source while 3 stays refused: 1 is deleted, 2 is not
-- written again, 3 is left out again (pending already: unchanged)
SELECT sr.each('DELETE FROM sr.%I WHERE a = 1');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('r_' || l.load, '2:2') c ORDER BY l.ord;

-- a new key 4 and a change of 2: loaded and signed (append keeps the row
-- of a key it has)
SELECT sr.each('INSERT INTO sr.%I (a, v) VALUES (4, 4)');
SELECT sr.each('UPDATE sr.%I SET v = 20 WHERE a = 2');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('r_' || l.load, CASE l.load WHEN 'append' THEN '2:2 4:4' ELSE '2:20 4:4' END) c
 ORDER BY l.ord;

-- nothing changed but 3 is still refused: no target row is written
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('r_' || l.load, CASE l.load WHEN 'append' THEN '2:2 4:4' ELSE '2:20 4:4' END) c
 ORDER BY l.ord;

-- a known key changes to a version the target refuses (CHECK small): the
-- target keeps its old row and the key its old signature, so the next runs
-- compare it again (append does not load a key it has: it signs the new
-- version)
SELECT sr.each('UPDATE sr.%I SET v = 5000 WHERE a = 4');
SELECT c.*, sr.signature_kept(c.pipeline, 4) AS signature_of_4_kept,
       sr.signature_kept(c.pipeline, 2) AS signature_of_2_kept
  FROM sr.loads l,
       LATERAL sr.check('r_' || l.load, CASE l.load WHEN 'append' THEN '2:2 4:4' ELSE '2:20 4:4' END) c
 ORDER BY l.ord;

-- 2 leaves the source while 3 and 4 are refused: 2 is deleted
SELECT sr.each('DELETE FROM sr.%I WHERE a = 2');
SELECT c.*, sr.signed(c.pipeline) AS signed, sr.signature_kept(c.pipeline, 4) AS signature_of_4_kept
  FROM sr.loads l, LATERAL sr.check('r_' || l.load, '4:4') c ORDER BY l.ord;

-- the target accepts 5000 now: the next run loads 4's new version (append
-- has its key); 3 is still refused
ALTER TABLE sr.r_merge_dst DROP CONSTRAINT small;
ALTER TABLE sr.r_delete_insert_dst DROP CONSTRAINT small;
ALTER TABLE sr.r_partition_swap_dst DROP CONSTRAINT small;
ALTER TABLE sr.r_append_dst DROP CONSTRAINT small;
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('r_' || l.load, CASE l.load WHEN 'append' THEN '4:4' ELSE '4:5000' END) c
 ORDER BY l.ord;

-- 3 is fixed in the source: it loads and is signed
SELECT sr.each('UPDATE sr.%I SET v = 3 WHERE a = 3');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('r_' || l.load, CASE l.load WHEN 'append' THEN '3:3 4:4' ELSE '3:3 4:5000' END) c
 ORDER BY l.ord;

-- every key signed: a run over the unchanged source loads and writes nothing
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('r_' || l.load, CASE l.load WHEN 'append' THEN '3:3 4:4' ELSE '3:3 4:5000' END) c
 ORDER BY l.ord;

-- a failed run (three new rows refused of five: above the threshold of
-- 50%) stores nothing: no signature changes, and 3 leaving the source is
-- not applied either
SELECT sr.each('INSERT INTO sr.%I (a, v) VALUES (5, -5), (6, -6), (7, -7)');
SELECT sr.each('DELETE FROM sr.%I WHERE a = 3');
SELECT c.*, sr.signed(c.pipeline) AS signed,
       sr.signature_kept(c.pipeline, 3) AND sr.signature_kept(c.pipeline, 4) AS signatures_kept
  FROM sr.loads l,
       LATERAL sr.check_failed('r_' || l.load, CASE l.load WHEN 'append' THEN '3:3 4:4' ELSE '3:3 4:5000' END) c
 ORDER BY l.ord;
SELECT sr.each('DELETE FROM sr.%I WHERE a > 4');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('r_' || l.load, CASE l.load WHEN 'append' THEN '4:4' ELSE '4:5000' END) c
 ORDER BY l.ord;

-- 2. A NULL key part and a repeated key: a source without a unique key
-- holds (NULL, 3), which the target's primary key refuses, and key (5, 5)
-- twice, of which the row stored last loads (append: the first) and the
-- other is a dead letter.  Keys (a, b); load partition_swap (which takes a
-- key of one column) is keyed by a.  Neither the NULL key nor the repeated
-- one is signed; the others are, and (1, 1) leaving the source is deleted.
SELECT count(sr.prepare('n_' || load, load, true, '{}')) AS pipelines FROM sr.loads;
CREATE FUNCTION sr.each_n(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(statement, 'n_merge_src');
    EXECUTE format(statement, 'n_delete_insert_src');
    EXECUTE format(statement, 'n_partition_swap_src');
    EXECUTE format(statement, 'n_append_src');
END $$;
SELECT sr.each_n('INSERT INTO sr.%I VALUES (1, 1, 1), (2, 2, 2), (NULL, 3, 3), (5, 5, 5), (5, 5, 6)');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('n_' || l.load, CASE l.load WHEN 'partition_swap' THEN '1:1 2:2 5:6'
                                                    WHEN 'append' THEN '1,1:1 2,2:2 5,5:5'
                                                    ELSE '1,1:1 2,2:2 5,5:6' END) c
 ORDER BY l.ord;
SELECT d.pipeline, d.stage, d.sqlstate, d.record->>'a' AS a, d.record->>'b' AS b, d.record->>'v' AS v
  FROM etl.dead_letters d WHERE d.pipeline LIKE 'n\_%' ORDER BY d.pipeline, d.record->>'v';

SELECT sr.each_n('DELETE FROM sr.%I WHERE a = 1');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('n_' || l.load, CASE l.load WHEN 'partition_swap' THEN '2:2 5:6'
                                                    WHEN 'append' THEN '2,2:2 5,5:5'
                                                    ELSE '2,2:2 5,5:6' END) c
 ORDER BY l.ord;

-- the key repeats no more, and the NULL is fixed: both load and are signed
SELECT sr.each_n('DELETE FROM sr.%I WHERE v = 6');
SELECT sr.each_n('UPDATE sr.%I SET a = 3 WHERE a IS NULL');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('n_' || l.load,
                        CASE WHEN l.load = 'partition_swap' THEN '2:2 3:3 5:5'
                             WHEN l.load = 'append' THEN '2,2:2 3,3:3 5,5:5'
                             ELSE '2,2:2 3,3:3 5,5:5' END) c
 ORDER BY l.ord;

-- 3. Soft deletes: a key that comes back with a version the target refuses
-- stays stamped (its row is not revived, nor counted); fixed, it is
-- revived with its new version, an updated row.  Append does not try the
-- row of a key it has: it revives the key, an updated row, and keeps its
-- old version
SELECT count(sr.prepare('s_' || load, load, false, '{"delete_mode": "soft"}')) AS pipelines
  FROM sr.loads;
CREATE FUNCTION sr.each_s(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(statement, 's_merge_src');
    EXECUTE format(statement, 's_delete_insert_src');
    EXECUTE format(statement, 's_partition_swap_src');
    EXECUTE format(statement, 's_append_src');
END $$;
SELECT sr.each_s('INSERT INTO sr.%I (a, v) VALUES (1, 1), (2, 2), (3, -3)');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('s_' || l.load, '1:1 2:2') c ORDER BY l.ord;
SELECT sr.each_s('DELETE FROM sr.%I WHERE a = 1');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('s_' || l.load, '1:1(d) 2:2') c ORDER BY l.ord;
SELECT sr.each_s('INSERT INTO sr.%I (a, v) VALUES (1, -1)');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('s_' || l.load, CASE l.load WHEN 'append' THEN '1:1 2:2' ELSE '1:1(d) 2:2' END) c
 ORDER BY l.ord;
SELECT sr.each_s('UPDATE sr.%I SET v = 11 WHERE a = 1');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('s_' || l.load, CASE l.load WHEN 'append' THEN '1:1 2:2' ELSE '1:11 2:2' END) c
 ORDER BY l.ord;

-- 4. A quarantine check's rows: set aside, not signed; the others are, and
-- a key leaving the source is deleted; once the check is gone the row loads
SELECT count(sr.prepare('q_' || load, load, false, '{}')) AS pipelines FROM sr.loads;
SELECT count(etl_add_check('q_' || load, 'range', column_name => 'v', params => '{"max": 10}',
                           severity => 'quarantine')) AS checks
  FROM sr.loads;
CREATE FUNCTION sr.each_q(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(statement, 'q_merge_src');
    EXECUTE format(statement, 'q_delete_insert_src');
    EXECUTE format(statement, 'q_partition_swap_src');
    EXECUTE format(statement, 'q_append_src');
END $$;
SELECT sr.each_q('INSERT INTO sr.%I (a, v) VALUES (1, 1), (2, 2), (3, 30)');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('q_' || l.load, '1:1 2:2') c ORDER BY l.ord;
SELECT sr.each_q('DELETE FROM sr.%I WHERE a = 1');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('q_' || l.load, '2:2') c ORDER BY l.ord;
SELECT count(etl_drop_check('q_' || load, 'q_' || load || '_v_range')) AS dropped FROM sr.loads;
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('q_' || l.load, '2:2 3:30') c ORDER BY l.ord;

-- 5. A key repeated in the source whose version stored last the target
-- refuses: the other version loads (append: the first, and the refused one
-- is left out as a repeat), and the key gets no signature while it repeats
SELECT count(sr.prepare('m_' || load, load, true, '{}')) AS pipelines FROM sr.loads;
CREATE FUNCTION sr.each_m(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(statement, 'm_merge_src');
    EXECUTE format(statement, 'm_delete_insert_src');
    EXECUTE format(statement, 'm_partition_swap_src');
    EXECUTE format(statement, 'm_append_src');
END $$;
SELECT sr.each_m('INSERT INTO sr.%I VALUES (1, 1, 1), (2, 2, 2), (2, 2, -2)');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('m_' || l.load, CASE l.load WHEN 'partition_swap' THEN '1:1 2:2'
                                                    ELSE '1,1:1 2,2:2' END) c
 ORDER BY l.ord;
SELECT d.pipeline, d.stage, d.sqlstate, d.record->>'v' AS v
  FROM etl.dead_letters d WHERE d.pipeline LIKE 'm\_%' ORDER BY d.pipeline;
SELECT sr.each_m('DELETE FROM sr.%I WHERE a = 1');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('m_' || l.load, CASE l.load WHEN 'partition_swap' THEN '2:2'
                                                    ELSE '2,2:2' END) c
 ORDER BY l.ord;
SELECT sr.each_m('DELETE FROM sr.%I WHERE v = -2');
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l,
       LATERAL sr.check('m_' || l.load, CASE l.load WHEN 'partition_swap' THEN '2:2'
                                                    ELSE '2,2:2' END) c
 ORDER BY l.ord;

-- 6. A row that fails alone but loads after the rest of its part (its
-- parent comes later in the batch): bad-row isolation holds it back, loads
-- the rest, then loads it; it is signed like the others, while the row the
-- target refuses is not, and a key leaving the source is deleted
CREATE TABLE sr.h_src (a int PRIMARY KEY, parent int, v int);
INSERT INTO sr.h_src VALUES (1, NULL, 1), (2, 3, 2), (3, NULL, 3), (4, NULL, -4);
CREATE FUNCTION sr.prepare_h(load text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE sr.%I (a int PRIMARY KEY, b int, parent int REFERENCES sr.%I,'
                   ' v int CHECK (v > 0), _deleted_at timestamptz)',
                   'h_' || load || '_dst', 'h_' || load || '_dst');
    PERFORM etl_create_pipeline('h_' || load, 'sr.h_src', format('sr.%I', 'h_' || load || '_dst'),
                                mode => 'snapshot', load => load, error_threshold => 50);
END $$;
SELECT count(sr.prepare_h(load)) AS pipelines FROM sr.loads WHERE load <> 'partition_swap';
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('h_' || l.load, '1:1 2:2 3:3') c
 WHERE l.load <> 'partition_swap' ORDER BY l.ord;
DELETE FROM sr.h_src WHERE a = 1;
SELECT c.*, sr.signed(c.pipeline) AS signed
  FROM sr.loads l, LATERAL sr.check('h_' || l.load, '2:2 3:3') c
 WHERE l.load <> 'partition_swap' ORDER BY l.ord;

-- 7. A row whose transform fails (a bad cast) cannot be a dead letter in
-- mode snapshot, whose comparison transforms the whole source: the run
-- fails with the cast's SQLSTATE, also with a quarantine check (which
-- isolates the row first), and stores nothing; once the row is fixed the
-- next run loads it and deletes the key that left meanwhile
CREATE TABLE sr.t_src (a int PRIMARY KEY, t text);
INSERT INTO sr.t_src VALUES (1, '1'), (2, '2');
CREATE TABLE sr.t_merge_dst (a int PRIMARY KEY, b int, v int, _deleted_at timestamptz);
SELECT etl_create_pipeline('t_merge', 'sr.t_src', 'sr.t_merge_dst', mode => 'snapshot',
                           error_threshold => 50,
                           transform => 'SELECT a, t::int AS v FROM etl_delta') > 0 AS created;
SELECT etl_add_check('t_merge', 'range', column_name => 'v', params => '{"max": 100}',
                     severity => 'quarantine');
SELECT * FROM sr.check('t_merge', '1:1 2:2');
INSERT INTO sr.t_src VALUES (3, 'x');
DELETE FROM sr.t_src WHERE a = 1;
SELECT * FROM sr.check_failed('t_merge', '1:1 2:2');
SELECT sr.signed('t_merge') AS signed, sr.signature_kept('t_merge', 1) AS signature_of_1_kept;
UPDATE sr.t_src SET t = '3' WHERE a = 3;
SELECT c.*, sr.signed(c.pipeline) AS signed FROM sr.check('t_merge', '2:2 3:3') c;

-- every run of this file adds up in etl.runs
SELECT count(*) AS runs,
       count(*) FILTER (WHERE status = 'succeeded' AND rows_extracted <> rows_inserted
                        + rows_updated + rows_unchanged + rows_rejected) AS not_adding_up
  FROM etl.runs WHERE pipeline ~ '^[rnsqmht]_';

SET client_min_messages = warning;
SELECT count(etl_drop_pipeline(p.name)) AS dropped
  FROM etl.pipelines p WHERE p.name ~ '^[rnsqmht]_';
DROP SCHEMA sr CASCADE;
RESET client_min_messages;
