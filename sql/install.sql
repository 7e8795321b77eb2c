-- install: what CREATE EXTENSION creates, where, and with which privileges
CREATE EXTENSION etl_ext;

-- catalogs and views live in schema etl
SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'etl' AND c.relkind IN ('r', 'v', 'S')
 ORDER BY c.relname;

-- the API is etl_* in pg_catalog, callable under any search_path; what is
-- not API lives in etl_internal (and the catalogs' trigger functions in etl)
SELECT p.pronamespace::regnamespace AS schema, p.oid::regprocedure::text AS function
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'etl_ext')
 ORDER BY 1, 2;
SELECT DISTINCT p.pronamespace::regnamespace AS schema
  FROM pg_proc p WHERE p.proname LIKE 'etl\_%' ORDER BY 1;
-- \df etl_* lists the API only (README, Functions)
\pset format unaligned
\df etl_*
\pset format aligned
SET search_path = '';
SELECT etl_row_hash(1) IS NOT NULL AS callable_with_empty_search_path;
RESET search_path;

-- pg_dump keeps user pipelines, runs, batches, dead letters and sequences
SELECT unnest(extconfig)::regclass::text AS dumped
  FROM pg_extension WHERE extname = 'etl_ext' ORDER BY 1;

-- PUBLIC reads the catalogs and status; writes nothing; runs, batches,
-- check results and dead letters (they may hold personal data) show each
-- role only the rows of the pipelines it owns (row level security)
CREATE ROLE etl_install_nobody;
SELECT t AS relation,
       has_table_privilege('etl_install_nobody', t, 'SELECT') AS can_select,
       has_table_privilege('etl_install_nobody', t, 'INSERT') AS can_insert,
       has_table_privilege('etl_install_nobody', t, 'UPDATE') AS can_update,
       has_table_privilege('etl_install_nobody', t, 'DELETE') AS can_delete,
       (SELECT relrowsecurity FROM pg_class WHERE oid = t::regclass) AS row_security
  FROM unnest(ARRAY['etl.pipelines', 'etl.runs', 'etl.batches', 'etl.checks',
                    'etl.check_results', 'etl.dead_letters', 'etl.run_totals',
                    'etl.snapshot_signatures', 'etl.status']) AS t;
DROP ROLE etl_install_nobody;

-- the install script refuses to adopt a schema someone else made
DROP EXTENSION etl_ext;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname IN ('etl', 'etl_internal');
CREATE SCHEMA etl;
CREATE EXTENSION etl_ext;
\echo sqlstate :LAST_ERROR_SQLSTATE
DROP SCHEMA etl;
CREATE SCHEMA etl_internal;
CREATE EXTENSION etl_ext;
\echo sqlstate :LAST_ERROR_SQLSTATE
DROP SCHEMA etl_internal;
CREATE EXTENSION etl_ext;
SELECT extversion FROM pg_extension WHERE extname = 'etl_ext';

-- a helper for the tests that follow: regress.run_failing(pipeline) runs a
-- pipeline expected to fail and shows its error without the run id (which
-- depends on the tests before): its SQLSTATE, message, detail, and hint
-- with the newest run id of the pipeline replaced by <its run>
CREATE SCHEMA regress;
CREATE FUNCTION regress.run_failing(pipeline text,
    OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM etl_run(pipeline);
    message := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    message := regexp_replace(message, '^run [0-9]+ of', 'run N of');
    hint := replace(hint,
        'run_id = ' || COALESCE((SELECT max(r.run_id) FROM etl.runs r
                                  WHERE r.pipeline = run_failing.pipeline), -1),
        'run_id = <its run>');
END
$fn$;
GRANT USAGE ON SCHEMA regress TO PUBLIC;

-- The files after this one also run as a pipeline owner without any
-- attribute (the owner pass, docs/testing.md).  These helpers, made by the
-- superuser who installs, set up for it the cases only a superuser can make,
-- and keep the outputs the same whichever role runs the files.

-- regress.error_of(statement) runs a statement expected to fail and shows
-- its SQLSTATE, message, detail and hint, the name of the session's login
-- role (the owner of the pipelines the tests make) written <session user>
CREATE FUNCTION regress.error_of(statement text,
    OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $fn$
DECLARE
    login text := pg_catalog.quote_ident(session_user);
BEGIN
    EXECUTE statement;
    message := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    message := replace(message, 'role "' || login || '"', 'role "<session user>"');
    detail := replace(detail, 'role "' || login || '"', 'role "<session user>"');
    hint := replace(hint, 'role "' || login || '"', 'role "<session user>"');
END
$fn$;

-- regress.create_role(name) makes a role without attributes that the
-- session's login role may SET ROLE to; regress.drop_role(name) drops it
-- again (only the roles create_role made)
CREATE TABLE regress.roles (name text PRIMARY KEY);
CREATE PROCEDURE regress.create_role(name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO regress.roles VALUES (name);
    EXECUTE format('CREATE ROLE %I', name);
    EXECUTE format('GRANT %I TO %I', name, session_user);
END
$fn$;
CREATE PROCEDURE regress.drop_role(name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    DELETE FROM regress.roles r WHERE r.name = drop_role.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" was not made by regress.create_role', name;
    END IF;
    EXECUTE format('DROP ROLE %I', name);
END
$fn$;

-- regress.store_watermark(pipeline, watermark) stores a watermark no run
-- produced, as a hand edit of the catalog or a restore would;
-- regress.delete_runs(pipeline) deletes a pipeline's runs, as a retention
-- job would; both only for pipelines of the session's login role
CREATE PROCEDURE regress.store_watermark(pipeline text, watermark text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    UPDATE etl.pipelines p SET watermark = store_watermark.watermark
     WHERE p.name = store_watermark.pipeline AND pg_has_role(session_user, p.owner, 'USAGE');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % owns no pipeline "%"', session_user, pipeline;
    END IF;
END
$fn$;
CREATE PROCEDURE regress.delete_runs(pipeline text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM FROM etl.pipelines p
      WHERE p.name = delete_runs.pipeline AND pg_has_role(session_user, p.owner, 'USAGE');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % owns no pipeline "%"', session_user, pipeline;
    END IF;
    DELETE FROM etl.runs r WHERE r.pipeline = delete_runs.pipeline;
END
$fn$;

-- regress.copy_dead_letter(id) inserts a pending copy of a dead letter of
-- a pipeline of the session's login role and returns its id, as an earlier
-- build left a row version pending twice
CREATE FUNCTION regress.copy_dead_letter(id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    copy bigint;
BEGIN
    INSERT INTO etl.dead_letters (pipeline_id, pipeline, run_id, stage, record,
                                  error_class, sqlstate, error_message)
    SELECT d.pipeline_id, d.pipeline, d.run_id, d.stage, d.record, d.error_class,
           d.sqlstate, d.error_message
      FROM etl.dead_letters d JOIN etl.pipelines p USING (pipeline_id)
     WHERE d.id = copy_dead_letter.id AND pg_has_role(session_user, p.owner, 'USAGE')
    RETURNING dead_letters.id INTO copy;
    IF copy IS NULL THEN
        RAISE EXCEPTION 'role % has no dead letter %', session_user, id;
    END IF;
    RETURN copy;
END
$fn$;

-- regress.insert_as_replica(target, new_row) inserts a row (given as jsonb)
-- into a table of the session's login role with session_replication_role =
-- replica, as logical replication's apply does
CREATE PROCEDURE regress.insert_as_replica(target regclass, new_row jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET session_replication_role = replica AS $fn$
BEGIN
    IF NOT pg_has_role(session_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = target),
                       'USAGE') THEN
        RAISE EXCEPTION 'role % does not own %', session_user, target;
    END IF;
    EXECUTE format('INSERT INTO %s SELECT * FROM jsonb_populate_record(NULL::%s, $1)',
                   target, target) USING new_row;
END
$fn$;
