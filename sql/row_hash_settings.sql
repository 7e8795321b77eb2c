-- row_hash_settings: etl_row_hash is a function of the values alone; no
-- session setting changes it, for any type, and re-runs from a
-- session with other settings write nothing

CREATE SCHEMA rhs;
CREATE TYPE rhs.pair AS (n int, at timestamptz, f float8, b bytea, i interval);
CREATE TYPE rhs.plain AS (n int, t text);
CREATE TYPE rhs.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN rhs.when_t AS timestamptz CHECK (VALUE > '2000-01-01');
CREATE DOMAIN rhs.span AS interval;
CREATE DOMAIN rhs.floats AS float8[];
CREATE DOMAIN rhs.pair_d AS rhs.pair;

-- one row per value, one column per type; NULLs, empties and extremes too
CREATE TABLE rhs.v (
    id int PRIMARY KEY,
    tstz_a timestamptz[], ts_a timestamp[], date_a date[], time_a time[],
    timetz_a timetz[], interval_a interval[], f8_a float8[], f4_a float4[],
    bytea_a bytea[], money_a money[], numeric_a numeric[], text_a text[],
    int_a int[], reg_a regclass[], point_a point[],
    tstz_r tstzrange, ts_r tsrange, date_r daterange, num_r numrange,
    int_r int4range, tstz_m tstzmultirange, date_m datemultirange,
    pair rhs.pair, pair_a rhs.pair[], plain rhs.plain,
    js json, jsb jsonb, mood rhs.mood, mood_a rhs.mood[],
    when_d rhs.when_t, span_d rhs.span, floats_d rhs.floats, pair_d rhs.pair_d,
    money money, iv interval, ttz timetz, tm time, ts timestamp,
    tstz timestamptz, d date, f8 float8, f4 float4, b bytea, num numeric,
    pt point, bx box, ci circle, pa path, pg polygon, ls lseg, ln line,
    tx text, u uuid);
INSERT INTO rhs.v VALUES
 (1, '{"2024-03-01 12:00:00+00","infinity",NULL}', '{"2024-03-01 12:34:56.789"}',
  '{2024-02-29,-infinity}', '{"23:59:59.999999"}', '{"12:00:00+05:30"}',
  '{"1 year 2 mons 3 days 04:05:06.7","-1 day"}', '{0.1,1e300,NaN,-Infinity,-0}',
  '{0.1,3.4e38}', '{"\\x00ff","\\x"}', '{12.34,-0.01}', '{1.50,NaN,1e-20}',
  '{"a b","",NULL,"ü"}', '{1,2,3}', '{pg_catalog.pg_class,pg_catalog.pg_type}',
  '{"(1.1,2.2)","(0.1,1e300)"}',
  '["2024-01-01 00:00+00","2024-02-01 00:00+00")', '(,"2024-01-01 10:00")',
  '[2024-01-01,2024-12-31]', '(0.1,0.30]', '[1,10)',
  '{["2024-01-01 00:00+00","2024-02-01 00:00+00"),["2024-03-01 00:00+00",)}',
  '{[2024-01-01,2024-01-05),[2024-02-01,2024-02-02)}',
  ROW(1, '2024-03-01 12:00+00', 0.1, '\x01', '1 day 01:00'),
  ARRAY[ROW(2, '2024-03-02 12:00+00', 1e-7, '\x02', '-2 hours')::rhs.pair, NULL],
  ROW(1, 'x y'), '{"a": [1, 2.50, "2024-01-01"], "b": null}',
  '{"a": [1, 2.50, "2024-01-01"], "b": null, "c": 1e-3}', 'happy', '{ok,sad}',
  '2024-03-01 12:00+00', '1 mon 2 days 03:00', '{0.1,0.2}',
  ROW(3, '2024-03-03 00:00+00', 2.5, '\x03', '3 days'),
  12.34, '1 year 2 mons -3 days 04:05:06.789', '01:02:03.456-08',
  '01:02:03', '2024-03-01 12:34:56.789', '2024-03-01 12:34:56.789+00',
  '2024-02-29', 0.1, 0.1, '\x00ff', 123.4500,
  '(1.1,2.2)', '((0,0),(1.5,2.5))', '<(1,1),0.3>', '[(0,0),(1,1.1)]',
  '((0,0),(1,0),(0.5,0.7))', '[(0,0),(1.1,1)]', '{1,-1,0.3}',
  'héllo', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
INSERT INTO rhs.v (id, tstz_a, date_a, interval_a, f8_a, bytea_a, text_a,
                   tstz_r, num_r, tstz_m, pair, pair_a, js, jsb, floats_d, tx)
VALUES (2, '{}', '{NULL}', '{}', '{}', '{NULL}', '{}', 'empty', 'empty', '{}',
        ROW(NULL, NULL, NULL, NULL, NULL), '{}', 'null', 'null', '{}', '');

-- the row hash of every row, column by column and as a whole
CREATE FUNCTION rhs.hashes() RETURNS TABLE (id int, col text, h bytea)
LANGUAGE sql AS $$
    SELECT v.id, c.key, etl_row_hash(c.value)
      FROM rhs.v v, LATERAL (VALUES
        ('tstz_a', etl_row_hash(v.tstz_a)), ('ts_a', etl_row_hash(v.ts_a)),
        ('date_a', etl_row_hash(v.date_a)), ('time_a', etl_row_hash(v.time_a)),
        ('timetz_a', etl_row_hash(v.timetz_a)), ('interval_a', etl_row_hash(v.interval_a)),
        ('f8_a', etl_row_hash(v.f8_a)), ('f4_a', etl_row_hash(v.f4_a)),
        ('bytea_a', etl_row_hash(v.bytea_a)), ('money_a', etl_row_hash(v.money_a)),
        ('numeric_a', etl_row_hash(v.numeric_a)), ('text_a', etl_row_hash(v.text_a)),
        ('int_a', etl_row_hash(v.int_a)), ('reg_a', etl_row_hash(v.reg_a)),
        ('point_a', etl_row_hash(v.point_a)),
        ('tstz_r', etl_row_hash(v.tstz_r)), ('ts_r', etl_row_hash(v.ts_r)),
        ('date_r', etl_row_hash(v.date_r)), ('num_r', etl_row_hash(v.num_r)),
        ('int_r', etl_row_hash(v.int_r)), ('tstz_m', etl_row_hash(v.tstz_m)),
        ('date_m', etl_row_hash(v.date_m)), ('pair', etl_row_hash(v.pair)),
        ('pair_a', etl_row_hash(v.pair_a)), ('plain', etl_row_hash(v.plain)),
        ('record', etl_row_hash(ROW(v.id, v.tstz, v.f8))),
        ('js', etl_row_hash(v.js)), ('jsb', etl_row_hash(v.jsb)),
        ('mood', etl_row_hash(v.mood)), ('mood_a', etl_row_hash(v.mood_a)),
        ('when_d', etl_row_hash(v.when_d)), ('span_d', etl_row_hash(v.span_d)),
        ('floats_d', etl_row_hash(v.floats_d)), ('pair_d', etl_row_hash(v.pair_d)),
        ('money', etl_row_hash(v.money)), ('iv', etl_row_hash(v.iv)),
        ('ttz', etl_row_hash(v.ttz)), ('tm', etl_row_hash(v.tm)),
        ('ts', etl_row_hash(v.ts)), ('tstz', etl_row_hash(v.tstz)),
        ('d', etl_row_hash(v.d)), ('f8', etl_row_hash(v.f8)),
        ('f4', etl_row_hash(v.f4)), ('b', etl_row_hash(v.b)),
        ('num', etl_row_hash(v.num)), ('pt', etl_row_hash(v.pt)),
        ('bx', etl_row_hash(v.bx)), ('ci', etl_row_hash(v.ci)),
        ('pa', etl_row_hash(v.pa)), ('pg', etl_row_hash(v.pg)),
        ('ls', etl_row_hash(v.ls)), ('ln', etl_row_hash(v.ln)),
        ('tx', etl_row_hash(v.tx)), ('u', etl_row_hash(v.u)),
        ('whole row', etl_row_hash(v.tstz_a, v.ts_a, v.date_a, v.time_a,
            v.timetz_a, v.interval_a, v.f8_a, v.f4_a, v.bytea_a, v.money_a,
            v.numeric_a, v.text_a, v.int_a, v.reg_a, v.point_a, v.tstz_r,
            v.ts_r, v.date_r, v.num_r, v.int_r, v.tstz_m, v.date_m, v.pair,
            v.pair_a, v.plain, v.js, v.jsb, v.mood, v.mood_a, v.when_d,
            v.span_d, v.floats_d, v.pair_d, v.money, v.iv, v.ttz, v.tm, v.ts,
            v.tstz, v.d, v.f8, v.f4, v.b, v.num, v.pt, v.bx, v.ci, v.pa, v.pg,
            v.ls, v.ln, v.tx, v.u))) AS c(key, value)
$$;
-- the text of every row (the hash must not follow it)
CREATE FUNCTION rhs.texts() RETURNS TABLE (id int, t text)
LANGUAGE sql AS $$ SELECT v.id, v::text FROM rhs.v v $$;

CREATE TABLE rhs.base AS SELECT * FROM rhs.hashes();
CREATE TABLE rhs.base_text AS SELECT * FROM rhs.texts();
SELECT count(*) AS hashes, count(DISTINCT h) AS distinct_hashes FROM rhs.base;

-- every combination of the settings that change text output: each hash
-- equals the one under the defaults (and the text did change)
CREATE TABLE rhs.differences (setting text, id int, col text);
CREATE TABLE rhs.text_changed (setting text);
DO $$
DECLARE
    tz text; ds text; ist text; efd text; bo text; lm text; sp text;
    label text;
BEGIN
    FOREACH tz IN ARRAY ARRAY['UTC', 'Asia/Kolkata', 'America/St_Johns'] LOOP
    FOREACH ds IN ARRAY ARRAY['ISO, MDY', 'SQL, DMY', 'German', 'Postgres, YMD'] LOOP
    FOREACH ist IN ARRAY ARRAY['postgres', 'iso_8601', 'sql_standard', 'postgres_verbose'] LOOP
    FOREACH efd IN ARRAY ARRAY['-15', '0', '1', '3'] LOOP
    FOREACH bo IN ARRAY ARRAY['hex', 'escape'] LOOP
    FOREACH lm IN ARRAY ARRAY['C', 'C.utf8'] LOOP
    FOREACH sp IN ARRAY ARRAY['"$user", public', ''] LOOP
        label := format('TimeZone=%s DateStyle=%s IntervalStyle=%s extra_float_digits=%s bytea_output=%s lc_monetary=%s search_path=%s',
                        tz, ds, ist, efd, bo, lm, sp);
        PERFORM set_config('TimeZone', tz, true), set_config('DateStyle', ds, true),
                set_config('IntervalStyle', ist, true),
                set_config('extra_float_digits', efd, true),
                set_config('bytea_output', bo, true),
                set_config('lc_monetary', lm, true),
                set_config('lc_numeric', lm, true), set_config('lc_time', lm, true),
                set_config('search_path', sp, true);
        INSERT INTO rhs.differences
        SELECT label, h.id, h.col FROM rhs.hashes() h
          JOIN rhs.base b USING (id, col) WHERE b.h IS DISTINCT FROM h.h;
        INSERT INTO rhs.text_changed
        SELECT label FROM rhs.texts() t JOIN rhs.base_text b USING (id)
         WHERE t.t IS DISTINCT FROM b.t AND t.id = 1;
    END LOOP; END LOOP; END LOOP; END LOOP; END LOOP; END LOOP; END LOOP;
END
$$;
SELECT count(*) AS combinations_whose_text_differs FROM rhs.text_changed;
SELECT count(*) AS hashes_that_differ FROM rhs.differences;
SELECT col, count(*) AS settings FROM rhs.differences GROUP BY col ORDER BY col;

-- the payloads of containers are documented: an array of a type whose text
-- depends on settings is its dimensions and its elements, each as an
-- argument (0x01, 4-byte length, payload); a range its flags and bounds
SELECT etl_row_hash('{1.5,NULL}'::float8[])
    <> etl_row_hash('{"2024-01-01 00:00+00"}'::timestamptz[]) AS unrelated_differ,
       etl_row_hash('[2:3]={1.5,2.5}'::float8[]) <> etl_row_hash('{1.5,2.5}'::float8[]) AS lower_bounds_matter,
       etl_row_hash('{{1.5},{2.5}}'::float8[]) <> etl_row_hash('{1.5,2.5}'::float8[]) AS dimensions_matter,
       etl_row_hash('[1.5,2.5)'::numrange) <> etl_row_hash('[1.5,2.5]'::numrange) AS bounds_matter,
       etl_row_hash('{NULL}'::float8[]) <> etl_row_hash('{}'::float8[]) AS null_element_counts,
       etl_row_hash(ROW(1, NULL::float8)) <> etl_row_hash(ROW(1, 0::float8)) AS null_field_counts;
-- containers of setting-independent types keep their text encoding (stored
-- hashes stay valid): these golden values never change
SELECT encode(etl_row_hash('{1,2,3}'::int[]), 'hex') AS int_array,
       encode(etl_row_hash('{"a b",NULL}'::text[]), 'hex') AS text_array,
       encode(etl_row_hash('[1,10)'::int4range), 'hex') AS int_range,
       encode(etl_row_hash(ROW(1, 'x y')::rhs.plain), 'hex') AS composite,
       encode(etl_row_hash('{"a": 1}'::jsonb), 'hex') AS jsonb;

-- re-runs from a session with other settings write nothing: a merge
-- pipeline re-reading its rows, a full one and a snapshot one
ALTER TABLE rhs.v ADD COLUMN updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00';
CREATE TABLE rhs.merge_dst (LIKE rhs.v, _etl_row_hash bytea);
ALTER TABLE rhs.merge_dst ADD PRIMARY KEY (id);
CREATE TABLE rhs.full_dst (LIKE rhs.v, _etl_row_hash bytea);
ALTER TABLE rhs.full_dst ADD PRIMARY KEY (id);
CREATE TABLE rhs.snap_dst (LIKE rhs.v);
ALTER TABLE rhs.snap_dst ADD PRIMARY KEY (id);
SELECT etl_create_pipeline('rhs_merge', 'rhs.v', 'rhs.merge_dst', watermark_column => 'updated_at') > 0 AS created;
SELECT etl_create_pipeline('rhs_full', 'rhs.v', 'rhs.full_dst', mode => 'full') > 0 AS created;
SELECT etl_create_pipeline('rhs_snap', 'rhs.v', 'rhs.snap_dst', mode => 'snapshot') > 0 AS created;
SELECT pipeline, status, rows_extracted, rows_inserted FROM etl_run('rhs_merge');
SELECT pipeline, status, rows_extracted, rows_inserted FROM etl_run('rhs_full');
SELECT pipeline, status, rows_inserted FROM etl_run('rhs_snap');
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'iso_8601';
SET extra_float_digits = 3;
SET bytea_output = 'escape';
SET lc_monetary = 'C.utf8';
SELECT etl_reset_watermark('rhs_merge', NULL);
SELECT pipeline, status, rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('rhs_merge');
SELECT pipeline, status, rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('rhs_full');
SELECT pipeline, status, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('rhs_snap');
-- the stored hashes are those of the values, whichever session computed them
SELECT count(*) AS stored_hashes_differing
  FROM rhs.merge_dst d
 WHERE d._etl_row_hash IS DISTINCT FROM etl_row_hash(d.tstz_a, d.ts_a, d.date_a, d.time_a,
            d.timetz_a, d.interval_a, d.f8_a, d.f4_a, d.bytea_a, d.money_a,
            d.numeric_a, d.text_a, d.int_a, d.reg_a, d.point_a, d.tstz_r,
            d.ts_r, d.date_r, d.num_r, d.int_r, d.tstz_m, d.date_m, d.pair,
            d.pair_a, d.plain, d.js, d.jsb, d.mood, d.mood_a, d.when_d,
            d.span_d, d.floats_d, d.pair_d, d.money, d.iv, d.ttz, d.tm, d.ts,
            d.tstz, d.d, d.f8, d.f4, d.b, d.num, d.pt, d.bx, d.ci, d.pa, d.pg,
            d.ls, d.ln, d.tx, d.u, d.updated_at);
RESET TimeZone;
RESET DateStyle;
RESET IntervalStyle;
RESET extra_float_digits;
RESET bytea_output;
RESET lc_monetary;
-- and back under the defaults: still nothing to write
SELECT pipeline, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('rhs_full');
SELECT pipeline, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('rhs_snap');

SELECT etl_drop_pipeline('rhs_merge'), etl_drop_pipeline('rhs_full'), etl_drop_pipeline('rhs_snap');
\set VERBOSITY terse
DROP SCHEMA rhs CASCADE;
\set VERBOSITY default
