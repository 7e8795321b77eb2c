-- security: owners, rights, pinned search_path, hostile identifiers
CREATE ROLE regress_etl_alice;
CREATE ROLE regress_etl_bob;
CREATE ROLE regress_etl_alice_team;
GRANT regress_etl_alice TO regress_etl_alice_team;
CREATE SCHEMA sec_src;
CREATE SCHEMA sec_dw;
CREATE SCHEMA sec_audit;
GRANT USAGE ON SCHEMA sec_src, sec_dw, sec_audit TO regress_etl_alice, regress_etl_bob;
CREATE TABLE sec_src.orders (id int PRIMARY KEY, status text, at timestamptz);
INSERT INTO sec_src.orders VALUES (1, 'new', '2024-01-01'), (2, 'paid', '2024-01-02');
CREATE TABLE sec_dw.orders (id int PRIMARY KEY, status text);
CREATE TABLE sec_src.secret (id int PRIMARY KEY, status text, at timestamptz);
GRANT SELECT ON sec_src.orders TO regress_etl_alice, regress_etl_bob;
GRANT SELECT, INSERT, UPDATE ON sec_dw.orders TO regress_etl_alice;
-- a trigger of the target records who writes
CREATE TABLE sec_audit.writes (who name, session_who name);
GRANT INSERT ON sec_audit.writes TO regress_etl_alice;
CREATE FUNCTION sec_audit.record() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO sec_audit.writes VALUES (current_user, session_user); RETURN NEW; END$$;
CREATE TRIGGER record_writes AFTER INSERT OR UPDATE ON sec_dw.orders
    FOR EACH ROW EXECUTE FUNCTION sec_audit.record();

-- alice creates a pipeline; it is hers
SET ROLE regress_etl_alice;
SELECT etl_create_pipeline('sec_orders', 'sec_src.orders', 'sec_dw.orders',
                           watermark_column => 'at') > 0 AS created;
SELECT owner FROM etl.pipelines WHERE name = 'sec_orders';
-- she cannot define a pipeline over what she cannot read or write
SELECT etl_create_pipeline('sec_secret', 'sec_src.secret', 'sec_dw.orders', watermark_column => 'at');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('sec_delins', 'sec_src.orders', 'sec_dw.orders', watermark_column => 'at',
                           load => 'delete_insert');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_create_pipeline('sec_peek', 'sec_src.orders', 'sec_dw.orders', watermark_column => 'at',
    transform => 'SELECT s.id, s.status FROM sec_src.secret s');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- and cannot write the catalogs directly
UPDATE etl.pipelines SET watermark = NULL WHERE name = 'sec_orders';
\echo sqlstate :LAST_ERROR_SQLSTATE
INSERT INTO etl.runs (pipeline_id, pipeline, status, started_at) VALUES (1, 'x', 'succeeded', now());
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;

-- bob may not run, alter, reset or drop it
SET ROLE regress_etl_bob;
SELECT * FROM regress.run_failing('sec_orders') \gx
SELECT etl_alter_pipeline('sec_orders', batch_size => 1);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_reset_watermark('sec_orders', NULL);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT etl_drop_pipeline('sec_orders');
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;

-- a member of alice's role may
SET ROLE regress_etl_alice_team;
SELECT etl_alter_pipeline('sec_orders', max_attempts => 2) > 0 AS altered;
RESET ROLE;

-- a superuser running alice's pipeline lends it no rights: the target's
-- trigger sees alice
SELECT status, rows_inserted FROM etl_run('sec_orders');
SELECT DISTINCT who, session_who FROM sec_audit.writes;
SELECT run_by FROM etl.runs WHERE pipeline = 'sec_orders';

-- alice loses a privilege: her pipeline fails with it, whoever runs it
REVOKE UPDATE ON sec_dw.orders FROM regress_etl_alice;
UPDATE sec_src.orders SET status = 'shipped', at = '2024-02-01' WHERE id = 1;
\set SHOW_CONTEXT never
SELECT * FROM regress.run_failing('sec_orders') \gx
\set SHOW_CONTEXT errors
GRANT UPDATE ON sec_dw.orders TO regress_etl_alice;

-- the caller's search_path never reaches etl code or transforms: a trojan
-- upper() and an operator planted first in the path are not used
CREATE SCHEMA trojan;
CREATE FUNCTION trojan.upper(text) RETURNS text LANGUAGE sql AS $$SELECT 'TROJAN'$$;
CREATE FUNCTION trojan.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '1999-01-01'::timestamptz$$;
CREATE FUNCTION trojan.texteq_always(text, text) RETURNS boolean LANGUAGE sql AS $$SELECT true$$;
CREATE OPERATOR trojan.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trojan.texteq_always);
GRANT USAGE ON SCHEMA trojan TO PUBLIC;
SELECT etl_alter_pipeline('sec_orders', transform => 'SELECT id, upper(status) AS status FROM etl_delta') > 0 AS altered;
SET search_path = trojan, public, pg_catalog;
SELECT upper('shown to the session') AS session_sees;
SELECT rows_extracted, rows_updated FROM etl_run('sec_orders');
RESET search_path;
SELECT id, status FROM sec_dw.orders ORDER BY id;
SELECT count(*) AS runs_dated_1999 FROM etl.runs WHERE started_at < '2000-01-01';

-- a temporary table named like a catalog or like etl_delta is not used
CREATE TEMP TABLE pipelines (name text, watermark text);
CREATE TEMP TABLE etl_delta (id int, status text, at timestamptz);
INSERT INTO etl_delta VALUES (99, 'planted', '2024-03-01');
SET search_path = pg_temp, public;
UPDATE sec_src.orders SET at = '2024-03-01' WHERE id = 2;
SELECT rows_extracted, rows_updated FROM etl_run('sec_orders');
RESET search_path;
SELECT count(*) AS planted_rows FROM sec_dw.orders WHERE id = 99;
DROP TABLE pg_temp.pipelines, pg_temp.etl_delta;

-- hostile identifiers work end to end: schema "x; drop", table
-- "Order Lines", columns "Select" and "a.b", pipeline 'lines; drop table x'
CREATE SCHEMA "x; drop";
CREATE TABLE "x; drop"."Order Lines" ("Select" int PRIMARY KEY, "a.b" text, "When" timestamptz);
CREATE TABLE "x; drop"."Target ""quoted""" ("Select" int PRIMARY KEY, "a.b" text);
INSERT INTO "x; drop"."Order Lines" VALUES (1, 'one', '2024-01-01'), (2, 'it''s', '2024-01-02');
CREATE TABLE public.x (survives boolean);
SELECT etl_create_pipeline('lines; drop table x', '"x; drop"."Order Lines"',
                           '"x; drop"."Target ""quoted"""', watermark_column => 'When',
                           transform => $$SELECT "Select", "a.b" || ' ok' AS "a.b" FROM etl_delta$$) > 0 AS created;
SELECT source, target, key FROM etl.pipelines WHERE name = 'lines; drop table x';
SELECT rows_inserted FROM etl_run('lines; drop table x');
SELECT * FROM "x; drop"."Target ""quoted""" ORDER BY 1;
SELECT count(*) AS x_still_there FROM public.x;
SELECT etl_create_pipeline($n$it's "quoted" $$ name$n$, '"x; drop"."Order Lines"',
                           '"x; drop"."Target ""quoted"""', watermark_column => 'When') > 0 AS created;
SELECT name FROM etl.pipelines WHERE name LIKE 'it''s%';
SELECT rows_extracted, rows_updated, rows_unchanged FROM etl_run($n$it's "quoted" $$ name$n$);

-- each owner's own schema, for what follows
CREATE SCHEMA sec_alice AUTHORIZATION regress_etl_alice;
CREATE SCHEMA sec_bob AUTHORIZATION regress_etl_bob;

-- dead-letter replay reads nothing the pipeline owner can write: the stage
-- is alice's temporary table, and her target's trigger (her code, run
-- between the chunks of a replay) points its rows at bob's dead letter;
-- replay marks what it read before her code ran, so bob's stays pending
SET ROLE regress_etl_bob;
CREATE TABLE sec_bob.src (id int PRIMARY KEY, v text, at timestamptz);
CREATE TABLE sec_bob.dst (id int PRIMARY KEY, v int);
INSERT INTO sec_bob.src VALUES (1, '1', '2024-01-01'), (2, 'two', '2024-01-02');
SELECT etl_create_pipeline('sec_bob', 'sec_bob.src', 'sec_bob.dst', watermark_column => 'at',
    error_threshold => 50, transform => 'SELECT id, v::int AS v FROM etl_delta') > 0 AS created;
SELECT status, rows_inserted, rows_rejected FROM etl_run('sec_bob');
RESET ROLE;
CREATE TABLE sec_alice.victim AS SELECT id FROM etl.dead_letters WHERE pipeline = 'sec_bob';
GRANT SELECT ON sec_alice.victim TO regress_etl_alice;
SET ROLE regress_etl_alice;
CREATE TABLE sec_alice.src (id int PRIMARY KEY, v text, at timestamptz);
CREATE TABLE sec_alice.dst (id int PRIMARY KEY, v int);
INSERT INTO sec_alice.src VALUES (1, '1', '2024-01-01'), (2, 'two', '2024-01-02');
CREATE FUNCTION sec_alice.tamper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.etl_stage_0') IS NOT NULL THEN
        BEGIN
            EXECUTE 'UPDATE pg_temp.etl_stage_0 SET etl_ref = $1'
                USING (SELECT id FROM sec_alice.victim);
        EXCEPTION WHEN undefined_column THEN
            NULL;
        END;
    END IF;
    RETURN NULL;
END$$;
CREATE TRIGGER tamper AFTER INSERT OR UPDATE ON sec_alice.dst
    FOR EACH ROW EXECUTE FUNCTION sec_alice.tamper();
SELECT etl_create_pipeline('sec_alice', 'sec_alice.src', 'sec_alice.dst', watermark_column => 'at',
    error_threshold => 50, transform => 'SELECT id, v::int AS v FROM etl_delta') > 0 AS created;
SELECT status, rows_inserted, rows_rejected FROM etl_run('sec_alice');
SELECT etl_alter_pipeline('sec_alice', transform =>
    $$SELECT id, CASE WHEN v ~ '^[0-9]+$' THEN v::int ELSE 0 END AS v FROM etl_delta$$) > 0 AS altered;
SELECT * FROM etl_retry_dead_letters('sec_alice');
RESET ROLE;
SELECT pipeline, status, resolution FROM etl.dead_letters
 WHERE pipeline IN ('sec_alice', 'sec_bob') ORDER BY pipeline;
SELECT id, v FROM sec_alice.dst ORDER BY id;

-- etl.status reads the lag as the pipeline owner, in a restricted
-- operation: alice's source is a view calling her function, which says
-- who runs it (and records it, which the lag's fence rolls back); a
-- superuser (or a monitoring role) reading etl.status lends it no rights
SET ROLE regress_etl_alice;
CREATE TABLE sec_alice.seen (who name);
CREATE FUNCTION sec_alice.watch(int) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN
    IF $1 = 3 THEN RAISE NOTICE 'watch runs as %', current_user; END IF;
    INSERT INTO sec_alice.seen VALUES (current_user);
    RETURN true;
END$$;
CREATE TABLE sec_alice.events (id int PRIMARY KEY, at timestamptz);
INSERT INTO sec_alice.events VALUES (1, '2024-01-01'), (2, '2024-01-02');
CREATE VIEW sec_alice.events_v AS SELECT * FROM sec_alice.events WHERE sec_alice.watch(id);
CREATE TABLE sec_alice.events_copy (id int PRIMARY KEY, at timestamptz);
SELECT etl_create_pipeline('sec_alice_lag', 'sec_alice.events_v', 'sec_alice.events_copy',
    watermark_column => 'at') > 0 AS created;
SELECT lag IS NULL AS no_lag_before_the_first_run FROM etl.status WHERE pipeline = 'sec_alice_lag';
SELECT status, rows_inserted FROM etl_run('sec_alice_lag');
INSERT INTO sec_alice.events VALUES (3, '2024-01-05');
TRUNCATE sec_alice.seen;
RESET ROLE;
SELECT lag FROM etl.status WHERE pipeline = 'sec_alice_lag';
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_watermark_lag_seconds' AND labels->>'pipeline' = 'sec_alice_lag';
SELECT DISTINCT who FROM sec_alice.seen;
-- bob sees the lag once he may read the view, still computed as alice
SET ROLE regress_etl_bob;
SELECT lag FROM etl.status WHERE pipeline = 'sec_alice_lag';
RESET ROLE;
GRANT USAGE ON SCHEMA sec_alice TO regress_etl_bob;
GRANT SELECT ON sec_alice.events_v TO regress_etl_bob;
SET ROLE regress_etl_bob;
SELECT lag FROM etl.status WHERE pipeline = 'sec_alice_lag';
RESET ROLE;
SELECT DISTINCT who FROM sec_alice.seen;
-- when alice may no longer read what her view reads, the lag is NULL
SET ROLE regress_etl_alice;
REVOKE SELECT ON sec_alice.events FROM regress_etl_alice;
RESET ROLE;
SELECT lag FROM etl.status WHERE pipeline = 'sec_alice_lag';
SELECT etl_internal.etl_lag('sec_nope') IS NULL AS unknown_pipeline;

-- validation runs the owner's code only as the owner, in a restricted
-- operation: alice's domain checks call her function, which records who
-- runs it; analysing her transform (an array literal of the domain),
-- reading her check's params as values of the column's type and analysing
-- her check's expression all call it
SET ROLE regress_etl_alice;
CREATE TABLE sec_alice.calls (who name);
GRANT INSERT ON sec_alice.calls TO PUBLIC;
CREATE FUNCTION sec_alice.note(text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO sec_alice.calls VALUES (current_user); RETURN true; END$$;
CREATE DOMAIN sec_alice.noted AS text CHECK (sec_alice.note(VALUE));
CREATE TABLE sec_alice.tickets (id int PRIMARY KEY, state text, at timestamptz);
CREATE TABLE sec_alice.tickets_copy (id int PRIMARY KEY, state text);
INSERT INTO sec_alice.tickets VALUES (1, 'open', '2024-01-01');
SELECT etl_create_pipeline('sec_alice_dom', 'sec_alice.tickets', 'sec_alice.tickets_copy',
    watermark_column => 'at',
    transform => $$SELECT id, state::sec_alice.noted AS state FROM etl_delta
                   WHERE '{open}'::sec_alice.noted[] IS NOT NULL$$) > 0 AS created;
SELECT etl_add_check('sec_alice_dom', 'accepted_values', 'state', '{"values": ["open", "closed"]}');
SELECT etl_add_check('sec_alice_dom', 'expression',
    params => '{"sql": "state IS NOT NULL AND ''{ok}''::sec_alice.noted[] IS NOT NULL"}');
RESET ROLE;
-- a superuser altering her pipeline, and anyone reading its lineage or its
-- check query, lend the validation no rights
TRUNCATE sec_alice.calls;
SELECT etl_alter_pipeline('sec_alice_dom', batch_size => 100) > 0 AS altered;
SELECT count(*) AS columns FROM etl_internal.etl_lineage_columns('sec_alice_dom');
SELECT etl_check_sql('sec_alice_dom') IS NOT NULL AS check_query_shown;
-- bob may read her table: only the owner check refuses him the check query
GRANT SELECT ON sec_alice.tickets TO regress_etl_bob;
SET ROLE regress_etl_bob;
SELECT count(*) AS columns FROM etl_internal.etl_lineage_columns('sec_alice_dom');
-- only her own (or a member, or a superuser) may see her check query
SELECT etl_check_sql('sec_alice_dom');
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT DISTINCT who FROM sec_alice.calls;
SELECT status, rows_inserted FROM etl_run('sec_alice_dom');
-- lineage reads the definition only: it does not fail when the owner lost
-- a privilege on what her transform reads
SET ROLE regress_etl_alice;
REVOKE SELECT ON sec_alice.tickets FROM regress_etl_alice;
RESET ROLE;
SELECT count(*) AS columns FROM etl_internal.etl_lineage_columns('sec_alice_dom');

-- runs, batches, check results and dead letters are private to the
-- pipeline's owner: errors and samples quote the data; counts stay public
SET ROLE regress_etl_alice;
CREATE TABLE sec_alice.people (id int PRIMARY KEY, ssn text, at timestamptz);
CREATE TABLE sec_alice.people_copy (id int PRIMARY KEY, ssn bigint);
INSERT INTO sec_alice.people VALUES (1, '111', '2024-01-01'), (2, '111', '2024-01-02');
SELECT etl_create_pipeline('sec_alice_people', 'sec_alice.people', 'sec_alice.people_copy',
    watermark_column => 'at', max_attempts => 1,
    transform => 'SELECT DISTINCT id, ssn::bigint AS ssn FROM etl_delta') > 0 AS created;
SELECT etl_add_check('sec_alice_people', 'unique', 'ssn', severity => 'warning');
SELECT status, rows_inserted FROM etl_run('sec_alice_people');
INSERT INTO sec_alice.people VALUES (3, '123-45-6789', '2024-01-03');
SELECT code, message FROM regress.run_failing('sec_alice_people');
-- alice reads her own
SELECT status, error, attempt_errors->0->>'message' AS attempt_error
  FROM etl.runs WHERE pipeline = 'sec_alice_people' ORDER BY run_id;
SELECT check_name, passed, observed FROM etl.check_results WHERE pipeline = 'sec_alice_people';
SELECT count(*) AS batches FROM etl.batches WHERE pipeline = 'sec_alice_people';
SELECT pipeline, last_status, last_error FROM etl.status WHERE pipeline = 'sec_alice_people';
SELECT max(run_id) AS alice_run FROM etl.runs WHERE pipeline = 'sec_alice_people' \gset
SELECT e->'run'->'facets'->'errorMessage'->>'message' AS error_facet
  FROM etl_openlineage(:alice_run) e;
-- and the count of bob's pending dead letter, not the dead letter
SELECT count(*) AS bobs_dead_letters FROM etl.dead_letters WHERE pipeline = 'sec_bob';
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_dead_letters_pending' AND labels->>'pipeline' = 'sec_bob';
RESET ROLE;
-- bob sees none of alice's rows, her last error neither; her counts he does
SET ROLE regress_etl_bob;
SELECT (SELECT count(*) FROM etl.runs WHERE pipeline = 'sec_alice_people') AS runs,
       (SELECT count(*) FROM etl.batches WHERE pipeline = 'sec_alice_people') AS batches,
       (SELECT count(*) FROM etl.check_results WHERE pipeline = 'sec_alice_people') AS check_results;
SELECT pipeline, last_status, last_error, consecutive_failures
  FROM etl.status WHERE pipeline = 'sec_alice_people';
SELECT metric, labels - 'pipeline' AS labels, value FROM etl_metric_rows()
 WHERE labels->>'pipeline' = 'sec_alice_people'
   AND metric IN ('etl_runs_total', 'etl_rows_total', 'etl_check_failures_total')
 ORDER BY metric, labels::text;
-- nor her runs' OpenLineage events, which carry the error
\set VERBOSITY sqlstate
SELECT etl_openlineage(:alice_run);
\set VERBOSITY default
RESET ROLE;

-- a transform's literals mean the same whoever runs it: a backslash is a
-- backslash, whatever standard_conforming_strings the caller has
SET ROLE regress_etl_alice;
CREATE TABLE sec_alice.paths (id int PRIMARY KEY, name text, at timestamptz);
CREATE TABLE sec_alice.paths_copy (id int PRIMARY KEY, name text);
INSERT INTO sec_alice.paths VALUES (1, 'one', '2024-01-01');
SELECT etl_create_pipeline('sec_alice_paths', 'sec_alice.paths', 'sec_alice.paths_copy',
    watermark_column => 'at',
    transform => $$SELECT id, 'C:\\' || name AS name FROM etl_delta$$) > 0 AS created;
SET standard_conforming_strings = off;
SELECT status, rows_inserted FROM etl_run('sec_alice_paths');
RESET standard_conforming_strings;
SELECT name, length(name) FROM sec_alice.paths_copy;
RESET ROLE;

SELECT etl_drop_pipeline(name) FROM etl.pipelines ORDER BY name;
DROP SCHEMA sec_src, sec_dw, sec_audit, trojan, "x; drop", sec_alice, sec_bob CASCADE;
DROP TABLE public.x;
DROP ROLE regress_etl_alice_team, regress_etl_alice, regress_etl_bob;
