-- bad_input: no argument crashes the server, raises an internal error or
-- stalls: a clear error instead (what test/t/017_fuzz.pl found, each as a
-- test of its own), and every function of the extension called with NULL in
-- each of its arguments
CREATE SCHEMA bi;
CREATE TABLE bi.src (id int PRIMARY KEY, v int, at timestamptz NOT NULL);
INSERT INTO bi.src SELECT g, g, '2024-01-01'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 10) g;
CREATE TABLE bi.dst (id int PRIMARY KEY, v int, at timestamptz);
SELECT etl_create_pipeline('bi_ts', 'bi.src', 'bi.dst', watermark_column => 'at') > 0 AS created;
SELECT etl_create_pipeline('bi_serial', 'bi.src', 'bi.dst', mode => 'serial',
    watermark_column => 'id') > 0 AS created;
SELECT etl_create_pipeline('bi_full', 'bi.src', 'bi.dst', mode => 'full') > 0 AS created;

-- lineage of a NULL pipeline: 22004 (was a crash)
SELECT * FROM etl_internal.etl_lineage_columns(NULL);
SELECT * FROM etl_internal.etl_lineage_relations(NULL);

-- a watermark for a pipeline that has none (mode full): 22023 (was a crash);
-- NULL still resets
SELECT etl_reset_watermark('bi_full', '2024-01-01');
SELECT etl_reset_watermark('bi_full', NULL);

-- backfill bounds that never end, or more steps than a backfill takes (was
-- every step computed, however many: a stall)
SELECT * FROM etl_internal.etl_backfill_steps('bi_ts', '-infinity', '2024-01-02', '1 hour');
SELECT * FROM etl_internal.etl_backfill_steps('bi_ts', '2024-01-01', 'infinity', '1 hour');
SELECT * FROM etl_internal.etl_backfill_steps('bi_ts', '2024-01-01', '2024-01-02', '1 microsecond');
SELECT * FROM etl_internal.etl_backfill_steps('bi_serial', '1', '100002', '1');
SELECT count(*) AS steps FROM etl_internal.etl_backfill_steps('bi_serial', '1', '100001', '1');
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CALL etl_backfill('bi_ts', '-infinity', 'infinity', '1 hour');
RESET client_min_messages;
\set SHOW_CONTEXT errors

-- every function of the extension (found through pg_depend, so that
-- functions added later are called too), with NULL in each argument in turn
-- (the others plausible) and in all of them at once, each call in a
-- savepoint rolled back after it: none crashes or raises an internal error
CREATE FUNCTION bi.plausible(t regtype) RETURNS text LANGUAGE sql AS $$
SELECT CASE t
    WHEN 'text'::regtype THEN quote_literal('bi_ts')
    WHEN 'text[]'::regtype THEN quote_literal('{id}')
    WHEN 'jsonb'::regtype THEN quote_literal('{}')
    WHEN 'regclass'::regtype THEN quote_literal('bi.src')
    WHEN 'interval'::regtype THEN quote_literal('1 hour')
    WHEN 'boolean'::regtype THEN 'false'
    WHEN 'double precision'::regtype THEN '1'
    ELSE '1' END || '::' || t::text
$$;
CREATE TABLE bi.null_calls (fn text, call text, sqlstate text, message text);
-- (the calls' warnings are not this test's business: the lineage functions
-- warn about the other tests' pipelines that no longer analyse)
SET client_min_messages = error;
DO $$
DECLARE
    f record;
    args text[];
    q text;
    st text;
    msg text;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure::text AS fn, format('%I.%I', n.nspname, p.proname) AS name,
               p.prokind, p.proretset,
               ARRAY(SELECT a.t::regtype::text
                       FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, o)
                      ORDER BY a.o) AS types
          FROM pg_depend d
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'etl_ext'
          JOIN pg_proc p ON p.oid = d.objid
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
           AND p.prorettype <> 'trigger'::regtype
           AND p.prokind IN ('f', 'p')
           AND p.pronargs > 0
           AND NOT 'internal'::regtype = ANY (p.proargtypes)
         ORDER BY 1
    LOOP
        FOR k IN 0 .. array_length(f.types, 1) LOOP
            args := '{}';
            FOR i IN 1 .. array_length(f.types, 1) LOOP
                args := args || CASE
                    WHEN f.types[i] = '"any"' THEN 'NULL::text'
                    WHEN k = 0 OR k = i THEN 'NULL::' || f.types[i]
                    ELSE bi.plausible(f.types[i]::regtype) END;
            END LOOP;
            q := format(CASE WHEN f.prokind = 'p' THEN 'CALL %s(%s)'
                             WHEN f.proretset THEN 'SELECT count(*) FROM %s(%s)'
                             ELSE 'SELECT %s(%s)' END,
                        f.name, array_to_string(args, ', '));
            BEGIN
                EXECUTE q;
                RAISE EXCEPTION 'rolled back' USING ERRCODE = 'BI000';
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            END;
            INSERT INTO bi.null_calls VALUES (f.fn, q, NULLIF(st, 'BI000'), msg);
        END LOOP;
    END LOOP;
END
$$;
RESET client_min_messages;
-- enough functions and calls to mean something; those that failed with an
-- internal error (none)
SELECT count(DISTINCT fn) >= 30 AS functions, count(*) >= 100 AS calls FROM bi.null_calls;
SELECT fn, call, sqlstate, message FROM bi.null_calls WHERE sqlstate LIKE 'XX%';
-- a NULL pipeline name is refused with 22004 wherever a pipeline is acted
-- on (no function listed here does otherwise) ...
SELECT fn, sqlstate, message FROM bi.null_calls
 WHERE call ~ '\(NULL::text(, |\))' AND sqlstate IS DISTINCT FROM '22004'
   AND fn ~ '^(etl_internal\.)?etl_(run|run_step|explain|retry_dead_letters|lineage_columns|lineage_relations|drop_pipeline|reset_watermark|alter_pipeline|create_pipeline|backfill_steps|pending_rows|batch_recover|batch_start|add_check|drop_check|schedule|unschedule)\('
 ORDER BY 1;
-- ... and the lookups answer NULL for it, as documented
SELECT etl_internal.etl_lag(NULL) IS NULL AS lag, etl_check_sql(NULL) IS NULL AS check_sql,
       etl_retry_delay(NULL, 1) IS NULL AND etl_retry_delay('bi_ts', NULL) IS NULL AS retry_delay;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'bi\_%' ORDER BY name;
DROP SCHEMA bi CASCADE;
