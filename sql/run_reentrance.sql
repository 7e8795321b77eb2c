-- run_reentrance: code that a run of a pipeline executes (its transform, a
-- trigger on its target) calling etl_run, etl_drop_pipeline or
-- etl_reset_watermark on that same pipeline is refused with 55006, under
-- the run lock the run already holds: the run fails once, cleanly, instead
-- of running itself again without end; a caught refusal leaves the run
-- going, and later runs in the same transaction are not refused.
CREATE SCHEMA ree;
CREATE TABLE ree.src (id int PRIMARY KEY, v int NOT NULL, at timestamptz NOT NULL);
INSERT INTO ree.src
SELECT g, g, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 5) AS g;

-- a transform that runs its own pipeline
CREATE FUNCTION ree.run_self(x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.etl_run('ree_self');
    RETURN x;
END $$;
CREATE TABLE ree.self_dst (id int PRIMARY KEY, v int, at timestamptz);
SELECT etl_create_pipeline('ree_self', 'ree.src', 'ree.self_dst', watermark_column => 'at',
    transform => $$SELECT id, ree.run_self(v) AS v, at FROM etl_delta$$) > 0 AS created;
\set VERBOSITY sqlstate
SELECT status FROM etl_run('ree_self');
\set VERBOSITY default
-- one failed run, of the refusal; nothing loaded, the watermark unset
SELECT status, sqlstate, error_class, attempts, error FROM etl.runs
 WHERE pipeline = 'ree_self' ORDER BY run_id;
SELECT count(*) AS loaded FROM ree.self_dst;
SELECT watermark IS NULL AS watermark_unset FROM etl.pipelines WHERE name = 'ree_self';

-- a trigger on the target that runs the pipeline writing it
CREATE FUNCTION ree.run_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.etl_run('ree_trigger');
    RETURN NEW;
END $$;
CREATE TABLE ree.trigger_dst (id int PRIMARY KEY, v int, at timestamptz);
CREATE TRIGGER run_on_insert BEFORE INSERT ON ree.trigger_dst
    FOR EACH ROW EXECUTE FUNCTION ree.run_on_insert();
SELECT etl_create_pipeline('ree_trigger', 'ree.src', 'ree.trigger_dst',
                           watermark_column => 'at') > 0 AS created;
\set VERBOSITY sqlstate
SELECT status FROM etl_run('ree_trigger');
\set VERBOSITY default
SELECT status, sqlstate, count(*) FROM etl.runs WHERE pipeline = 'ree_trigger'
 GROUP BY status, sqlstate;
SELECT count(*) AS loaded FROM ree.trigger_dst;

-- a transform that drops, then one that resets, its own pipeline
CREATE FUNCTION ree.drop_self(x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.etl_drop_pipeline('ree_drop');
    RETURN x;
END $$;
CREATE TABLE ree.drop_dst (id int PRIMARY KEY, v int, at timestamptz);
SELECT etl_create_pipeline('ree_drop', 'ree.src', 'ree.drop_dst', watermark_column => 'at',
    transform => $$SELECT id, ree.drop_self(v) AS v, at FROM etl_delta$$) > 0 AS created;
\set VERBOSITY sqlstate
SELECT status FROM etl_run('ree_drop');
\set VERBOSITY default
SELECT name, watermark IS NULL AS watermark_unset FROM etl.pipelines WHERE name = 'ree_drop';
SELECT status, sqlstate, error FROM etl.runs WHERE pipeline = 'ree_drop';
CREATE FUNCTION ree.reset_self(x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.etl_reset_watermark('ree_reset', '2000-01-01');
    RETURN x;
END $$;
CREATE TABLE ree.reset_dst (id int PRIMARY KEY, v int, at timestamptz);
SELECT etl_create_pipeline('ree_reset', 'ree.src', 'ree.reset_dst', watermark_column => 'at',
    transform => $$SELECT id, ree.reset_self(v) AS v, at FROM etl_delta$$) > 0 AS created;
\set VERBOSITY sqlstate
SELECT status FROM etl_run('ree_reset');
\set VERBOSITY default
SELECT status, sqlstate, error FROM etl.runs WHERE pipeline = 'ree_reset';

-- the owner's code catches the refusal: the run goes on and loads; in the
-- same transaction the pipeline runs again (not refused: the first run has
-- returned), and its transform may run another pipeline
CREATE TABLE ree.refusals (message text);
CREATE FUNCTION ree.run_caught(x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM pg_catalog.etl_run('ree_caught');
    EXCEPTION WHEN object_in_use THEN
        INSERT INTO ree.refusals VALUES (SQLERRM);
    END;
    PERFORM pg_catalog.etl_run('ree_other');
    RETURN x;
END $$;
CREATE TABLE ree.caught_dst (id int PRIMARY KEY, v int, at timestamptz);
CREATE TABLE ree.other_dst (id int PRIMARY KEY, v int, at timestamptz);
SELECT etl_create_pipeline('ree_caught', 'ree.src', 'ree.caught_dst', watermark_column => 'at',
    transform => $$SELECT id, ree.run_caught(v) AS v, at FROM etl_delta WHERE id IN (1, 6)$$) > 0 AS created;
SELECT etl_create_pipeline('ree_other', 'ree.src', 'ree.other_dst',
                           watermark_column => 'at') > 0 AS created;
BEGIN;
SELECT status, rows_extracted, rows_inserted FROM etl_run('ree_caught');
INSERT INTO ree.src VALUES (6, 6, '2024-01-01 01:00:00+00');
SELECT status, rows_extracted, rows_inserted FROM etl_run('ree_caught');
COMMIT;
SELECT (SELECT count(*) FROM ree.caught_dst) AS caught_loaded,
       (SELECT count(*) FROM ree.other_dst) AS other_loaded;
SELECT DISTINCT message FROM ree.refusals;
SELECT DISTINCT pipeline, status FROM etl.runs
 WHERE pipeline IN ('ree_caught', 'ree_other') ORDER BY pipeline;

-- clean up
SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'ree\_%' ORDER BY name;
DROP SCHEMA ree CASCADE;
