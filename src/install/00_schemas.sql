/*
 * src/install/00_schemas.sql -- the first part of etl_ext--1.0.sql, the
 * install script, which the Makefile builds by concatenating the files of
 * src/install/ in the order of their numbers: edit the parts, never the
 * built file.  This part: the guard against sourcing the script in psql,
 * where the extension's objects live and how their names resolve, and the
 * schemas etl and etl_internal (refused when either exists already).
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION etl_ext" to load this file. \quit

/*
 * Where objects live: the extension's schema is pg_catalog (etl_ext.control),
 * so every etl_* function of the API is callable unqualified under any
 * search_path, as pg_cron does.  Catalog tables and views live in the schema
 * etl; the functions that are not API (aggregates and helpers of the
 * generated SQL, steps of the procedures, parts of the metrics and of the
 * lineage, the tracking trigger) in the schema etl_internal.  Both schemas
 * are created here: an installation refuses to adopt a schema that somebody
 * else created first (its owner could have planted objects in it).
 *
 * Users read the catalogs; they change them only through the functions,
 * which write as the extension owner after their own ownership checks.
 *
 * Names.  CREATE EXTENSION runs this script with search_path = pg_catalog,
 * pg_temp whatever the session's (PostgreSQL puts the extension's schema
 * first and pg_temp last), so what it names resolves in pg_catalog first;
 * names of this extension's other schemas are qualified.  Bodies that run
 * later, under the caller's search_path, are different: the procedures
 * etl_catch_up and etl_backfill cannot carry a SET clause (it would forbid
 * their COMMITs), so every type, function and operator in them is
 * schema-qualified and they use no construct that looks an operator up by
 * name (IN, IS DISTINCT FROM, NULLIF, BETWEEN, CASE x WHEN); every other
 * SQL or plpgsql body carries SET search_path = pg_catalog, pg_temp and
 * qualifies what is not in pg_catalog (etl_duration_buckets, inlined, names
 * nothing but a qualified type).  Views, defaults, constraints and policies
 * are resolved once, here.
 */
DO $refuse$
DECLARE
    s pg_catalog.name;
BEGIN
    FOR s IN SELECT n.nspname FROM pg_catalog.pg_namespace n
              WHERE n.nspname OPERATOR(pg_catalog.=) 'etl'
                 OR n.nspname OPERATOR(pg_catalog.=) 'etl_internal'
              ORDER BY n.nspname LOOP
        RAISE EXCEPTION 'schema "%" already exists', s
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'etl_ext creates the schemas etl and etl_internal itself and does not adopt one made before: whoever made it could have planted objects in it.',
                  HINT = pg_catalog.format('Check what schema %I holds and who owns it, drop or rename it, then run CREATE EXTENSION etl_ext again.', s);
    END LOOP;
END
$refuse$;

CREATE SCHEMA etl;
COMMENT ON SCHEMA etl IS 'etl_ext catalogs: pipelines, runs, batches, dead letters, status';
GRANT USAGE ON SCHEMA etl TO PUBLIC;

-- USAGE for everybody: pipeline owners' generated SQL names the aggregates
-- and helpers in it, and tables tracked by etl_track_changes name its
-- trigger function (a dump of such a table too).  Which functions PUBLIC may
-- execute is decided function by function below.
CREATE SCHEMA etl_internal;
COMMENT ON SCHEMA etl_internal IS
    'etl_ext internals: aggregates and helpers of the generated SQL, steps of the procedures, parts of the metrics and lineage (not API)';
GRANT USAGE ON SCHEMA etl_internal TO PUBLIC;

