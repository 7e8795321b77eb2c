-- etl_fuzz.sql: the fuzzer of test/t/017_fuzz.pl.  fuzz.run(seed, rounds)
-- calls every function of the extension (found through pg_depend, so that
-- functions added later are called too) rounds times with random arguments
-- drawn from fixed pools: NULLs, empty and huge strings, unicode, hostile
-- names, negative and extreme numbers, NaN and infinities, malformed JSON,
-- values of the wrong but castable type; then, once a round, a sequence of
-- calls on a pipeline it creates.  Each call runs in a savepoint that is
-- always rolled back, so destructive calls (drop, reset, alter) leave the
-- scratch pipelines as they were.  It returns how many calls ended in each
-- SQLSTATE class and every internal error (class XX) or stall with the
-- call that raised it; a crash ends the session.

CREATE SCHEMA fuzz;
GRANT USAGE ON SCHEMA fuzz TO PUBLIC;

-- scratch pipelines: the superuser's and the unprivileged role's, each
-- with a run, a batch, a check and a dead letter
CREATE SCHEMA fz;
GRANT USAGE, CREATE ON SCHEMA fz TO regress_fuzz_user;
CREATE TABLE fz.src (id int PRIMARY KEY, v int, at timestamptz NOT NULL);
INSERT INTO fz.src SELECT g, g, '2024-01-01'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 20) g;
UPDATE fz.src SET v = 0 WHERE id = 7;
CREATE TABLE fz.dst (id int PRIMARY KEY, v int, at timestamptz);
CREATE TABLE fz.dim (id int PRIMARY KEY);
INSERT INTO fz.dim SELECT generate_series(1, 10);
SELECT etl_track_changes('fz.src');
CREATE VIEW fz.src_v AS SELECT id, v, at FROM fz.src;
GRANT SELECT ON fz.src, fz.dim, fz.src_v TO regress_fuzz_user;
SELECT etl_create_pipeline('fz_a', 'fz.src', 'fz.dst', watermark_column => 'at',
    batch_size => 5, error_threshold => 100, max_attempts => 1,
    transform => 'SELECT id, 100 / v AS v, at FROM etl_delta');
SELECT etl_add_check('fz_a', 'not_null', column_name => 'v', severity => 'warning');
SELECT etl_create_pipeline('fz_s', 'fz.src', 'fz.dst', mode => 'serial',
    watermark_column => 'id', max_attempts => 1, error_threshold => 100,
    transform => 'SELECT id, 100 / v AS v, at FROM etl_delta');
SELECT etl_create_pipeline('fz_f', 'fz.src_v', 'fz.dst', mode => 'full', max_attempts => 1,
    error_threshold => 100, transform => 'SELECT id, 100 / v AS v, at FROM etl_delta');
SELECT status FROM etl_run('fz_a');
SET ROLE regress_fuzz_user;
CREATE TABLE fz.mine (id int PRIMARY KEY, v int, at timestamptz);
SELECT etl_create_pipeline('fz_mine', 'fz.src', 'fz.mine', watermark_column => 'at',
    max_attempts => 1, error_threshold => 100,
    transform => 'SELECT id, 100 / v AS v, at FROM etl_delta');
SELECT etl_add_check('fz_mine', 'range', column_name => 'v', params => '{"min": 0}',
    severity => 'quarantine');
SELECT status FROM etl_run('fz_mine');
RESET ROLE;

-- the functions of the extension: every one, whatever its schema, with the
-- types and names of its input arguments
CREATE FUNCTION fuzz.functions()
RETURNS TABLE (name text, proname text, kind "char", argtypes oid[], argnames text[],
               variadic_type oid, retset boolean)
LANGUAGE sql STABLE AS $$
SELECT format('%I.%I', n.nspname, p.proname), p.proname::text, p.prokind,
       ARRAY(SELECT a.t FROM pg_catalog.unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, o)
              ORDER BY a.o),
       ARRAY(SELECT COALESCE(a.n, '')
               FROM ROWS FROM (
                        pg_catalog.unnest(COALESCE(p.proargnames, pg_catalog.array_fill(''::text,
                            ARRAY[COALESCE(array_length(p.proargmodes, 1), p.pronargs)]))),
                        pg_catalog.unnest(COALESCE(p.proargmodes, pg_catalog.array_fill('i'::"char",
                            ARRAY[p.pronargs])))) WITH ORDINALITY AS a(n, m, o)
              WHERE a.m IN ('i', 'b', 'v') ORDER BY a.o),
       p.provariadic, p.proretset
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'etl_ext'
  JOIN pg_proc p ON p.oid = d.objid
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
   AND d.deptype = 'e'
 ORDER BY p.oid::regprocedure::text
$$;

-- pick: a random element of an array
CREATE FUNCTION fuzz.pick(a text[]) RETURNS text LANGUAGE sql VOLATILE AS $$
SELECT a[1 + floor(random() * array_length(a, 1))::int]
$$;

-- fuzz.expr(type): an SQL expression of that type's pool, without its cast
CREATE FUNCTION fuzz.expr(t text) RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    CASE t
    WHEN 'text', 'character varying', 'name', '"any"', 'anyelement' THEN
        RETURN fuzz.pick(ARRAY[
            $$''$$, $$' '$$, $$'fz_a'$$, $$'fz_s'$$, $$'fz_f'$$, $$'fz_mine'$$,
            $$'fz_a_v_not_null'$$, $$'fz_mine_v_range'$$, $$'nope'$$,
            $$pg_catalog.repeat('x', 100000)$$, $$pg_catalog.repeat('é', 70)$$,
            $$pg_catalog.repeat('a', 64)$$, $$pg_catalog.repeat('ab', 1000000)$$,
            $$'ünïcödé ✓ 𝄞 中文 ﷽'$$, $$E'\t\n\r\x01\x7f'$$, $$'"'$$, $$''''$$, $$'\'$$,
            $$'a"b''c\d'$$, $$'x; DROP TABLE fz.dst; --'$$, $$'%s%n%x%%'$$,
            $$'-1'$$, $$'0'$$, $$'1'$$, $$'3'$$, $$'2147483648'$$, $$'-9223372036854775809'$$,
            $$'1e308'$$, $$'1e-400'$$, $$'NaN'$$, $$'Infinity'$$, $$'-infinity'$$, $$'infinity'$$,
            $$'2024-01-01'$$, $$'2024-01-01 03:00+00'$$, $$'294277-01-01'$$, $$'4714-11-24 BC'$$,
            $$'epoch'$$, $$'1 hour'$$, $$'-1 day'$$, $$'178000000 years'$$, $$'0/0'$$,
            $$'FFFFFFFF/FFFFFFFF'$$, $$'1/0'$$,
            $$'{'$$, $$'{"a":'$$, $$'[1,2'$$, $$'{}'$$, $$'[]'$$, $$'null'$$, $$'{"values": [1, null]}'$$,
            $$'timestamp'$$, $$'serial'$$, $$'xid'$$, $$'cdc'$$, $$'snapshot'$$, $$'full'$$,
            $$'merge'$$, $$'append'$$, $$'delete_insert'$$, $$'partition_swap'$$,
            $$'not_null'$$, $$'unique'$$, $$'accepted_values'$$, $$'positive'$$, $$'range'$$,
            $$'foreign_key'$$, $$'z_score'$$, $$'row_count'$$, $$'expression'$$, $$'freshness'$$,
            $$'critical'$$, $$'warning'$$, $$'quarantine'$$, $$'resolved'$$, $$'ignored'$$,
            $$'pending'$$, $$'superseded'$$, $$'catch_up'$$, $$'backfill'$$, $$'manual'$$,
            $$'prometheus'$$, $$'json'$$, $$'START'$$, $$'COMPLETE'$$, $$'FAIL'$$, $$'ABORT'$$,
            $$'* * * * *'$$, $$'61 * * * *'$$, $$'@reboot'$$, $$'1 seconds'$$,
            $$'fz.src'$$, $$'fz.dst'$$, $$'fz.dim'$$, $$'fz.src_v'$$, $$'pg_catalog.pg_class'$$,
            $$'etl.pipelines'$$, $$'no.such'$$, $$'"fz"."src"'$$,
            $$'id'$$, $$'v'$$, $$'at'$$, $$'ctid'$$, $$'xmin'$$, $$'etl_row_hash'$$,
            $$'SELECT * FROM etl_delta'$$, $$'SELECT id, v FROM etl_delta'$$,
            $$'SELECT 1/0'$$, $$'SELECT * FROM etl_delta; DROP TABLE fz.dst'$$,
            $$'v > 0'$$, $$'v > (SELECT 1)'$$, $$'fz.dim(id)'$$, $$'x(y)'$$, $$'('$$,
            $$'fz.dim(id'$$, $$'S'$$, $$'Z'$$, $$'XX000'$$, $$'40001'$$, $$'23505'$$]);
    WHEN 'smallint', 'integer', 'bigint', 'oid' THEN
        RETURN fuzz.pick(ARRAY['0', '1', '-1', '2', '3', '7', '100', '32767', '-32768',
            '2147483647', '-2147483648', '9223372036854775807', '-9223372036854775808',
            '4294967295', (floor(random() * 1000))::text]);
    WHEN 'double precision', 'real', 'numeric' THEN
        RETURN fuzz.pick(ARRAY[$$'NaN'$$, $$'Infinity'$$, $$'-Infinity'$$, '0', '-0.0', '1e308',
            '-1e-300', '0.5', '3', '-7', '123456789012345678901234567890.5']);
    WHEN 'boolean' THEN
        RETURN fuzz.pick(ARRAY['true', 'false']);
    WHEN 'jsonb', 'json' THEN
        RETURN fuzz.pick(ARRAY[$$'{}'$$, $$'[]'$$, $$'null'$$, $$'1'$$, $$'"x"'$$,
            $$'{"values": []}'$$, $$'{"values": [1, "a", null, 1e400]}'$$, $$'{"values": "x"}'$$,
            $$'{"min": "x", "max": 1}'$$, $$'{"min": -1, "max": 1}'$$, $$'{"min": 5, "max": 1}'$$,
            $$'{"min": 1e400}'$$, $$'{"sql": "v > 0"}'$$, $$'{"sql": "1/0 = 1"}'$$,
            $$'{"sql": "v > 0; DROP TABLE fz.dst"}'$$, $$'{"sql": null}'$$, $$'{"sql": ""}'$$,
            $$'{"sql": "(SELECT true)"}'$$, $$'{"threshold": "NaN"}'$$, $$'{"threshold": -1}'$$,
            $$'{"threshold": 1e308}'$$, $$'{"threshold": "Infinity"}'$$,
            $$'{"references": "fz.dim(id)"}'$$, $$'{"references": "no.such(x)"}'$$,
            $$'{"references": ""}'$$, $$'{"references": "fz.dim"}'$$, $$'{"references": 1}'$$,
            $$'{"max_age": "1 hour"}'$$, $$'{"max_age": "-1 hour"}'$$, $$'{"max_age": 5}'$$,
            $$'{"max_age": "178000000 years"}'$$, $$'{"a": {"b": [1, 2, {"c": null}]}}'$$,
            $$'{"values": [' || pg_catalog.repeat('1,', 10000) || '1]}'$$,
            $$pg_catalog.repeat('[', 5000) || pg_catalog.repeat(']', 5000)$$,
            $$'{"partition_interval": "1 day"}'$$, $$'{"fetch_size": -1}'$$]);
    WHEN 'timestamp with time zone', 'timestamp without time zone', 'date' THEN
        RETURN fuzz.pick(ARRAY[$$'infinity'$$, $$'-infinity'$$, $$'2024-01-01'$$, $$'epoch'$$,
            $$'294276-12-31 23:59:59+00'$$, $$'4713-01-01 BC'$$, $$'2024-01-01 05:00+00'$$]);
    WHEN 'interval' THEN
        RETURN fuzz.pick(ARRAY[$$'1 hour'$$, $$'-1 hour'$$, $$'0'$$, $$'178000000 years'$$,
            $$'-178000000 years'$$, $$'1 microsecond'$$, $$'1 mon 1 day'$$]);
    WHEN 'regclass' THEN
        RETURN fuzz.pick(ARRAY[$$'fz.src'$$, $$'fz.dst'$$, $$'fz.dim'$$, $$'fz.src_v'$$,
            $$'fz.mine'$$, $$'fz.src_pkey'$$, $$'pg_catalog.pg_class'$$, $$'etl.pipelines'$$,
            $$'etl.status'$$, $$'0'$$, $$'1'$$, $$'4294967295'$$, $$'pg_toast.pg_toast_1262'$$]);
    WHEN 'text[]', 'name[]' THEN
        RETURN fuzz.pick(ARRAY[$$'{}'$$, $$'{NULL}'$$, $$'{id}'$$, $$'{id,id}'$$, $$'{v,at}'$$,
            $$'{"a b"}'$$, $$'{""}'$$, $$'{ctid}'$$, $$'{{id},{v}}'$$,
            $$pg_catalog.array_fill('x'::text, ARRAY[1000])$$]);
    WHEN 'bytea' THEN
        RETURN fuzz.pick(ARRAY[$$'\x'$$, $$'\x00'$$, $$'\xdeadbeef'$$,
            $$pg_catalog.decode(pg_catalog.repeat('ff', 1000), 'hex')$$]);
    WHEN 'integer[]', 'bigint[]' THEN
        RETURN fuzz.pick(ARRAY[$$'{}'$$, $$'{NULL}'$$, $$'{1,2,3}'$$, $$'{-1}'$$]);
    ELSE
        RETURN 'NULL';
    END CASE;
END
$fn$;

-- fuzz.named(argument name): values that get past the first checks of an
-- argument of that name (a pipeline that exists, a mode, a check kind ...),
-- as text; NULL for other names
CREATE FUNCTION fuzz.named(n text) RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    RETURN CASE
    WHEN n IN ('pipeline', 'name') THEN fuzz.pick(ARRAY['fz_a', 'fz_s', 'fz_f', 'fz_mine',
        'fz_a_v_not_null', 'fz_mine_v_range', 'fz_new'])
    WHEN n IN ('source', 'target') THEN fuzz.pick(ARRAY['fz.src', 'fz.dst', 'fz.mine',
        'fz.src_v', 'fz.dim', 'etl.pipelines', 'fz.src_pkey'])
    WHEN n IN ('relation', 'ref') THEN fuzz.pick(ARRAY['fz.src', 'fz.dst', 'fz.dim', 'fz.mine',
        'fz.src_v'])
    WHEN n = 'mode' THEN fuzz.pick(ARRAY['timestamp', 'serial', 'xid', 'cdc', 'snapshot',
        'full'])
    WHEN n = 'load' THEN fuzz.pick(ARRAY['merge', 'append', 'delete_insert',
        'partition_swap'])
    WHEN n = 'kind' THEN fuzz.pick(ARRAY['not_null', 'unique', 'accepted_values', 'positive',
        'range', 'foreign_key', 'z_score', 'row_count', 'expression', 'freshness', 'catch_up',
        'backfill'])
    WHEN n = 'severity' THEN fuzz.pick(ARRAY['critical', 'warning', 'quarantine'])
    WHEN n = 'status' THEN fuzz.pick(ARRAY['resolved', 'ignored', 'pending', 'superseded'])
    WHEN n = 'retry_policy' THEN fuzz.pick(ARRAY['none', 'linear', 'exponential',
        'exponential_jitter'])
    WHEN n = 'on_schema_change' THEN fuzz.pick(ARRAY['fail', 'ignore', 'append_new_columns'])
    WHEN n IN ('watermark_column', 'column_name', 'ref_column') THEN fuzz.pick(ARRAY['id',
        'v', 'at', 'etl_xid', 'ctid', 'nope'])
    WHEN n = 'transform' THEN fuzz.pick(ARRAY['SELECT * FROM etl_delta',
        'SELECT id, v, at FROM etl_delta', 'SELECT id, 100 / v AS v, at FROM etl_delta',
        'SELECT id, sum(v) AS v FROM etl_delta GROUP BY id', 'SELECT 1 AS id',
        'SELECT d.id FROM etl_delta d JOIN fz.dim USING (id)', 'SELECT * FROM fz.src',
        'SELECT id FROM etl_delta; SELECT 1', 'SELECT id, ''{1}''::int[] AS v FROM etl_delta',
        '', 'VALUES (1)', 'SELECT DISTINCT ON (id) * FROM etl_delta ORDER BY id'])
    WHEN n IN ('value', 'range_from', 'range_to', 'from_value', 'to_value') THEN
        fuzz.pick(ARRAY['2024-01-01', '2024-01-01 05:00+00', '2024-01-02', 'infinity',
            '-infinity', '294276-12-31', '1', '5', '-1', '9223372036854775807', '1e400',
            '0/1', 'NaN', ''])
    WHEN n = 'step' THEN fuzz.pick(ARRAY['1 hour', '1 day', '-1 hour', '0', '1', '2', '-1',
        '1e308', 'NaN', '178000000 years', '1 microsecond'])
    WHEN n = 'event_type' THEN fuzz.pick(ARRAY['START', 'COMPLETE', 'FAIL', 'ABORT',
        'RUNNING', 'start'])
    WHEN n = 'format' THEN fuzz.pick(ARRAY['prometheus', 'json'])
    WHEN n = 'cron_expression' THEN fuzz.pick(ARRAY['* * * * *', '*/5 * * * *', '61 * * * *',
        '1 seconds', '@reboot', ''])
    WHEN n IN ('run_id', 'batch_id', 'id') THEN (1 + floor(random() * 12))::text
    WHEN n = 'sqlstate' THEN fuzz.pick(ARRAY['XX000', '40001', '23505', '22012', '08006',
        '57014', 'P0001', '00000'])
    WHEN n = 'params' THEN fuzz.pick(ARRAY['{"values": [1, 2]}', '{"min": 0, "max": 10}',
        '{"sql": "v > 0"}', '{"references": "fz.dim(id)"}', '{"threshold": 2}',
        '{"max_age": "1 hour"}', '{"min": 1}', '{}'])
    WHEN n = 'key' THEN fuzz.pick(ARRAY['{id}', '{id}', '{v}', '{id,v}', '{}', '{nope}'])
    WHEN n = 'batch_size' THEN fuzz.pick(ARRAY['1', '3', '5', '100'])
    WHEN n = 'error_threshold' THEN fuzz.pick(ARRAY['0', '10', '50', '100'])
    WHEN n = 'overlap' THEN fuzz.pick(ARRAY['0', '1 hour', '10 days'])
    WHEN n = 'alert_after_failures' THEN fuzz.pick(ARRAY['1', '3'])
    WHEN n = 'options' THEN fuzz.pick(ARRAY['{}', '{"fetch_size": 10}',
        '{"partition_interval": "1 day"}'])
    END;
END
$fn$;

-- fuzz.arg(type, name): an argument of that type: NULL now and then, a
-- value of another type cast to it now and then, a value suited to the
-- argument's name often, else a value of the type's pool
CREATE FUNCTION fuzz.arg(t text, n text DEFAULT '') RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    other text;
    named text;
BEGIN
    IF t = 'internal' THEN
        RETURN 'NULL';
    END IF;
    IF t IN ('"any"', 'anyelement') THEN
        -- a value of any type: now and then one of types rarely met
        IF random() < 0.25 THEN
            RETURN fuzz.pick(ARRAY[$$ROW(1, 'a', NULL)$$, $$'[1,5)'::int4range$$,
                $$'empty'::numrange$$, $$'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid$$,
                $$point(1, 'NaN')$$, $$'10.0.0.1/8'::inet$$, $$'12.5'::money$$,
                $$'0/16B3748'::pg_lsn$$, $$'123'::xid8$$, $$B'1010'::varbit$$,
                $$'a fat cat'::tsvector$$, $$'{"a": [1, 2]}'::json$$,
                $$ARRAY[1.5, NULL, 'NaN']::numeric[]$$, $$'x'::"char"$$, $$'abc'::name$$,
                $$'08:00:2b:01:02:03'::macaddr$$, $$ARRAY[ROW(1, 'a')]$$,
                $$'infinity'::date$$, $$'NaN'::real$$, $$'12:00+05'::timetz$$,
                $$'1 year 2 mons'::interval$$, $$'{}'::int[]$$, $$'[[1,2],[3,4]]'::jsonb$$,
                $$'2000-01-01'::timestamp$$, $$'\x00ff'::bytea$$, $$'<a/>'::xml$$,
                $$'((0,0),(1,1))'::box$$, $$'t'::boolean$$, $$'1e-130'::numeric$$]);
        END IF;
        other := fuzz.pick(ARRAY['text', 'integer', 'bigint', 'numeric', 'double precision',
            'boolean', 'jsonb', 'timestamp with time zone', 'interval', 'bytea', 'text[]',
            'date', 'smallint']);
        IF random() < 0.15 THEN
            RETURN format('NULL::%s', other);
        END IF;
        RETURN format('(%s)::%s', fuzz.expr(other), other);
    END IF;
    IF random() < 0.12 THEN
        RETURN format('NULL::%s', t);
    END IF;
    named := fuzz.named(n);
    IF named IS NOT NULL AND random() < 0.7 THEN
        RETURN format('CAST(%L AS %s)', named, t);
    END IF;
    IF random() < 0.15 THEN
        other := fuzz.pick(ARRAY['text', 'integer', 'bigint', 'double precision', 'numeric',
            'boolean', 'jsonb', 'timestamp with time zone', 'interval']);
        RETURN format('CAST((%s)::%s AS %s)', fuzz.expr(other), other, t);
    END IF;
    RETURN format('(%s)::%s', fuzz.expr(t), t);
END
$fn$;

-- fuzz.call(function): the SQL of one call with random arguments (the
-- first one given, when first is)
CREATE FUNCTION fuzz.call(name text, kind "char", argtypes oid[], argnames text[],
    variadic_type oid, retset boolean, first text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    args text[] := '{}';
    t text;
    n int := COALESCE(array_length(argtypes, 1), 0);
BEGIN
    FOR i IN 1 .. n LOOP
        t := format_type(argtypes[i], NULL);
        IF i = n AND variadic_type = '"any"'::regtype THEN
            -- VARIADIC "any": none to six values of mixed types
            FOR j IN 1 .. floor(random() * 7)::int LOOP
                args := args || fuzz.arg('"any"');
            END LOOP;
        ELSIF t = 'anyelement' AND kind = 'a' THEN
            t := fuzz.pick(ARRAY['integer', 'text', 'double precision', 'numeric', 'jsonb',
                'timestamp with time zone', 'bytea', 'text[]', 'interval', 'boolean']);
            RETURN format('SELECT %s(x) FROM (VALUES (%s), (%s), (%s), (%s)) AS v(x)', name,
                fuzz.arg(t), fuzz.arg(t), fuzz.arg(t), fuzz.arg(t));
        ELSIF kind = 'a' THEN
            RETURN format('SELECT %s(x) FROM (VALUES (%s), (%s), (%s), (%s)) AS v(x)', name,
                fuzz.arg(t), fuzz.arg(t), fuzz.arg(t), fuzz.arg(t));
        ELSIF i = 1 AND first IS NOT NULL THEN
            args := args || format('CAST(%L AS %s)', first, t);
        ELSE
            args := args || fuzz.arg(t, argnames[i]);
        END IF;
    END LOOP;
    IF kind = 'p' THEN
        RETURN format('CALL %s(%s)', name, array_to_string(args, ', '));
    ELSIF retset THEN
        RETURN format('SELECT count(*) FROM %s(%s) AS f', name, array_to_string(args, ', '));
    END IF;
    RETURN format('SELECT %s(%s)', name, array_to_string(args, ', '));
END
$fn$;

-- fuzz.create_call(): a definition of pipeline fz_new over the scratch
-- tables that may well be valid: a mode with a watermark column that suits
-- it most of the time, each other setting given now and then at random
CREATE FUNCTION fuzz.create_call() RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    args text[];
    mode text[] := fuzz.pick(ARRAY['{timestamp,at}', '{timestamp,at}', '{serial,id}',
        '{full,NULL}', '{snapshot,NULL}', '{xid,NULL}', '{cdc,id}', '{timestamp,id}'])::text[];
    opt record;
BEGIN
    args := ARRAY[quote_literal('fz_new'),
        quote_literal(fuzz.pick(ARRAY['fz.src', 'fz.src', 'fz.src', 'fz.src_v', 'fz.dim'])),
        quote_literal(fuzz.pick(ARRAY['fz.dst', 'fz.dst', 'fz.mine']))];
    args := args || format('mode => %L', mode[1]);
    IF mode[2] IS NOT NULL THEN
        args := args || format('watermark_column => %L', mode[2]);
    END IF;
    FOR opt IN SELECT * FROM (VALUES ('key', 'text[]'), ('overlap', 'interval'),
            ('transform', 'text'), ('load', 'text'), ('batch_size', 'bigint'),
            ('error_threshold', 'numeric'), ('retry_policy', 'text'),
            ('on_schema_change', 'text'), ('options', 'jsonb'),
            ('alert_after_failures', 'integer')) AS o(name, type) LOOP
        IF random() < 0.3 THEN
            args := args || format('%s => %s', opt.name,
                CASE WHEN random() < 0.85
                     THEN format('CAST(%L AS %s)', fuzz.named(opt.name), opt.type)
                     ELSE fuzz.arg(opt.type, opt.name) END);
        END IF;
    END LOOP;
    -- one attempt: a run never sleeps before a retry
    args := args || 'max_attempts => 1'::text;
    RETURN format('SELECT pg_catalog.etl_create_pipeline(%s)', array_to_string(args, ', '));
END
$fn$;

-- fuzz.try(sql, outcome): runs one call in a savepoint rolled back after
-- it (or kept, with keep) and adds its SQLSTATE to the outcome; an internal
-- error, or a call that takes more than 10 s (a stall), to the errors
CREATE FUNCTION fuzz.try(q text, INOUT classes jsonb, INOUT internal_errors text[],
    keep boolean DEFAULT false)
LANGUAGE plpgsql AS $fn$
DECLARE
    st text := '00000';
    msg text;
    t0 timestamptz := clock_timestamp();
BEGIN
    BEGIN
        EXECUTE q;
        IF NOT keep THEN
            RAISE EXCEPTION 'rolled back' USING ERRCODE = 'FZ000';
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    IF st = 'FZ000' THEN
        st := '00000';
    END IF;
    IF left(st, 2) = 'XX' THEN
        internal_errors := internal_errors || format('%s %s in: %s', st, msg, left(q, 400));
    END IF;
    IF clock_timestamp() - t0 > interval '10 s' THEN
        internal_errors := internal_errors || format('slow (%s) %s', clock_timestamp() - t0,
                                                     left(q, 400));
    END IF;
    classes := jsonb_set(classes, ARRAY[left(st, 2)],
        to_jsonb(COALESCE((classes->>left(st, 2))::int, 0) + 1));
END
$fn$;

-- fuzz.run(seed, rounds): every function rounds times, each call in a
-- savepoint rolled back after it; then, once a round, a scenario in one
-- savepoint: a pipeline created with random arguments, altered, given
-- checks, run, replayed, inspected, reset and dropped, each step with
-- random arguments (a step's error leaves the others to run).  Returns
-- the SQLSTATE classes met (00: the call succeeded) and the internal
-- errors and stalls, with their calls.
CREATE FUNCTION fuzz.run(seed double precision, rounds int,
    OUT calls int, OUT classes jsonb, OUT internal_errors text[])
LANGUAGE plpgsql AS $fn$
DECLARE
    f record;
    step text;
    steps CONSTANT text[] := ARRAY['etl_alter_pipeline',
        'etl_add_check', 'etl_add_check', 'etl_run', 'etl_run_step', 'etl_retry_dead_letters',
        'etl_explain', 'etl_lineage_columns', 'etl_lineage_relations', 'etl_check_sql',
        'etl_backfill_steps', 'etl_pending_rows', 'etl_lag', 'etl_run', 'etl_reset_watermark',
        'etl_drop_check', 'etl_batch_start', 'etl_batch_recover', 'etl_drop_pipeline'];
BEGIN
    PERFORM setseed(seed);
    calls := 0;
    classes := '{}';
    internal_errors := '{}';
    FOR r IN 1 .. rounds LOOP
        FOR f IN SELECT * FROM fuzz.functions() LOOP
            SELECT * INTO classes, internal_errors FROM fuzz.try(
                fuzz.call(f.name, f.kind, f.argtypes, f.argnames, f.variadic_type, f.retset),
                classes, internal_errors);
            calls := calls + 1;
        END LOOP;
        BEGIN
            SELECT * INTO classes, internal_errors
              FROM fuzz.try(fuzz.create_call(), classes, internal_errors, true);
            calls := calls + 1;
            FOREACH step IN ARRAY steps LOOP
                FOR f IN SELECT * FROM fuzz.functions() g WHERE g.proname = step LOOP
                    SELECT * INTO classes, internal_errors FROM fuzz.try(
                        fuzz.call(f.name, f.kind, f.argtypes, f.argnames, f.variadic_type,
                                  f.retset, 'fz_new'),
                        classes, internal_errors, true);
                    calls := calls + 1;
                END LOOP;
            END LOOP;
            RAISE EXCEPTION 'rolled back' USING ERRCODE = 'FZ000';
        EXCEPTION WHEN SQLSTATE 'FZ000' THEN
            NULL;
        END;
    END LOOP;
END
$fn$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fuzz TO PUBLIC;
