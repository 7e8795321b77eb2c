-- backfill_types: CALL etl_backfill over every watermark type a mode
-- accepts (timestamptz, timestamp, smallint, integer, bigint, numeric,
-- pg_lsn), each loading exactly the source rows of its range; steps near
-- the largest value of a type end at to_value instead of overflowing it

CREATE SCHEMA bt;
-- differences(source, target, lo, hi): the rows of the target that are not the
-- source's rows of [lo, hi), and the rows of those the target lacks
CREATE FUNCTION bt.differences(src regclass, dst regclass, lo text, hi text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM (
        (SELECT id, w, v FROM %1$s WHERE w >= $1::%3$s AND w < $2::%3$s
         EXCEPT ALL SELECT id, w, v FROM %2$s)
        UNION ALL
        (SELECT id, w, v FROM %2$s EXCEPT ALL
         SELECT id, w, v FROM %1$s WHERE w >= $1::%3$s AND w < $2::%3$s)) d',
        src, dst, (SELECT format_type(atttypid, NULL) FROM pg_attribute
                    WHERE attrelid = src AND attname = 'w'))
      INTO n USING lo, hi;
    RETURN n;
END $$;
-- summary(pipeline): its backfill steps, the rows they loaded, and whether
-- the watermark stayed unset
CREATE VIEW bt.summary AS
SELECT p.name AS pipeline, count(b.*) AS steps, sum(b.rows) AS rows,
       bool_and(b.status = 'completed') AS completed, p.watermark IS NULL AS watermark_unset
  FROM etl.pipelines p LEFT JOIN etl.batches b ON b.pipeline = p.name AND b.kind = 'backfill'
 WHERE p.name LIKE 'bt\_%' GROUP BY p.name, p.watermark;

SET client_min_messages = warning;  -- progress notices carry timings
-- mode timestamp: timestamptz and timestamp
CREATE TABLE bt.tstz (id int PRIMARY KEY, w timestamptz NOT NULL, v text);
INSERT INTO bt.tstz SELECT g, '2024-01-01 00:30+00'::timestamptz + g * interval '1 hour', 'v' || g
  FROM generate_series(1, 48) g;
CREATE TABLE bt.tstz_dst (id int PRIMARY KEY, w timestamptz, v text);
SELECT etl_create_pipeline('bt_tstz', 'bt.tstz', 'bt.tstz_dst', watermark_column => 'w') > 0 AS created;
CALL etl_backfill('bt_tstz', '2024-01-01 05:00+00', '2024-01-02 03:00+00', '6 hours');

CREATE TABLE bt.ts (id int PRIMARY KEY, w timestamp NOT NULL, v text);
INSERT INTO bt.ts SELECT g, '2024-01-01 00:30'::timestamp + g * interval '1 day', 'v' || g
  FROM generate_series(1, 90) g;
-- rows a month before the last timestamp there is, 294276-12-31 23:59:59.999999
INSERT INTO bt.ts SELECT 100 + g, '294276-11-30'::timestamp + g * interval '1 day', 'late' || g
  FROM generate_series(1, 31) g;
CREATE TABLE bt.ts_dst (id int PRIMARY KEY, w timestamp, v text);
SELECT etl_create_pipeline('bt_ts', 'bt.ts', 'bt.ts_dst', watermark_column => 'w') > 0 AS created;
CALL etl_backfill('bt_ts', '2024-01-15', '2024-03-10', '1 month');
-- the second step would end past the last timestamp: it ends at to_value
CALL etl_backfill('bt_ts', '294276-11-15', '294276-12-31 23:59:59', '1 month');

-- mode serial: smallint, integer and bigint, near their largest values
CREATE TABLE bt.i2 (id int PRIMARY KEY, w smallint NOT NULL, v text);
INSERT INTO bt.i2 SELECT g, 32767 - g, 'v' || g FROM generate_series(0, 99) g;
CREATE TABLE bt.i2_dst (id int PRIMARY KEY, w smallint, v text);
SELECT etl_create_pipeline('bt_i2', 'bt.i2', 'bt.i2_dst', mode => 'serial',
                           watermark_column => 'w') > 0 AS created;
CALL etl_backfill('bt_i2', '32700', '32767', '30');

CREATE TABLE bt.i4 (id int PRIMARY KEY, w integer NOT NULL, v text);
INSERT INTO bt.i4 SELECT g, 2147483647 - g * 7, 'v' || g FROM generate_series(0, 99) g;
CREATE TABLE bt.i4_dst (id int PRIMARY KEY, w integer, v text);
SELECT etl_create_pipeline('bt_i4', 'bt.i4', 'bt.i4_dst', mode => 'serial',
                           watermark_column => 'w') > 0 AS created;
CALL etl_backfill('bt_i4', '2147483000', '2147483647', '1000');

CREATE TABLE bt.i8 (id int PRIMARY KEY, w bigint NOT NULL, v text);
INSERT INTO bt.i8 SELECT g, 9223372036854775807 - g * 11, 'v' || g FROM generate_series(0, 99) g;
CREATE TABLE bt.i8_dst (id int PRIMARY KEY, w bigint, v text);
SELECT etl_create_pipeline('bt_i8', 'bt.i8', 'bt.i8_dst', mode => 'serial',
                           watermark_column => 'w') > 0 AS created;
CALL etl_backfill('bt_i8', '9223372036854775000', '9223372036854775807', '300');

-- mode cdc: numeric and pg_lsn (the position Debezium writes)
CREATE TABLE bt.num (_cdc_operation text NOT NULL, id int, w numeric NOT NULL, v text);
INSERT INTO bt.num SELECT 'c', g, g * 1.5, 'v' || g FROM generate_series(1, 40) g;
CREATE TABLE bt.num_dst (id int PRIMARY KEY, w numeric, v text);
SELECT etl_create_pipeline('bt_num', 'bt.num', 'bt.num_dst', mode => 'cdc',
                           watermark_column => 'w') > 0 AS created;
CALL etl_backfill('bt_num', '3', '40.5', '7.25');

CREATE TABLE bt.lsn (_cdc_operation text NOT NULL, id int, w pg_lsn NOT NULL, v text);
INSERT INTO bt.lsn SELECT 'c', g, ('0/' || to_hex(g * 256))::pg_lsn, 'v' || g
  FROM generate_series(1, 40) g;
-- the last positions there are, FFFFFFFF/FFFFFFFF included
INSERT INTO bt.lsn SELECT 'c', 100 + g, 'FFFFFFFF/FFFFFFFF'::pg_lsn - g, 'late' || g
  FROM generate_series(0, 9) g;
CREATE TABLE bt.lsn_dst (id int PRIMARY KEY, w pg_lsn, v text);
SELECT etl_create_pipeline('bt_lsn', 'bt.lsn', 'bt.lsn_dst', mode => 'cdc',
                           watermark_column => 'w') > 0 AS created;
CALL etl_backfill('bt_lsn', '0/500', '0/2000', '4096');
CALL etl_backfill('bt_lsn', 'FFFFFFFF/FFFFFF00', 'FFFFFFFF/FFFFFFFF', '9223372036854775807');
RESET client_min_messages;

-- the steps each backfill took, and its ranges: the last ends at to_value
SELECT pipeline, range_from, range_to, rows, status FROM etl.batches
 WHERE pipeline LIKE 'bt\_%' AND kind = 'backfill' ORDER BY pipeline, batch_id;
SELECT * FROM bt.summary ORDER BY pipeline;
-- each target holds exactly the source rows of the backfilled ranges
SET TimeZone = 'UTC';
SELECT bt.differences('bt.tstz', 'bt.tstz_dst', '2024-01-01 05:00+00', '2024-01-02 03:00+00') AS tstz,
       (SELECT count(*) FROM bt.tstz_dst) AS tstz_rows;
RESET TimeZone;
SELECT count(*) AS differences FROM (
    (SELECT id, w, v FROM bt.ts WHERE (w >= '2024-01-15' AND w < '2024-03-10')
                                   OR (w >= '294276-11-15' AND w < '294276-12-31 23:59:59')
     EXCEPT ALL SELECT id, w, v FROM bt.ts_dst)
    UNION ALL
    (SELECT id, w, v FROM bt.ts_dst EXCEPT ALL
     SELECT id, w, v FROM bt.ts WHERE (w >= '2024-01-15' AND w < '2024-03-10')
                                   OR (w >= '294276-11-15' AND w < '294276-12-31 23:59:59'))) d;
SELECT count(*) AS ts_rows, count(*) FILTER (WHERE v LIKE 'late%') AS late_rows FROM bt.ts_dst;
SELECT bt.differences('bt.i2', 'bt.i2_dst', '32700', '32767') AS i2,
       (SELECT count(*) FROM bt.i2_dst) AS i2_rows,
       bt.differences('bt.i4', 'bt.i4_dst', '2147483000', '2147483647') AS i4,
       (SELECT count(*) FROM bt.i4_dst) AS i4_rows,
       bt.differences('bt.i8', 'bt.i8_dst', '9223372036854775000', '9223372036854775807') AS i8,
       (SELECT count(*) FROM bt.i8_dst) AS i8_rows;
SELECT bt.differences('bt.num', 'bt.num_dst', '3', '40.5') AS num,
       (SELECT count(*) FROM bt.num_dst) AS num_rows;
SELECT count(*) AS differences FROM (
    (SELECT id, w, v FROM bt.lsn WHERE (w >= '0/500' AND w < '0/2000')
                                    OR (w >= 'FFFFFFFF/FFFFFF00' AND w < 'FFFFFFFF/FFFFFFFF')
     EXCEPT ALL SELECT id, w, v FROM bt.lsn_dst)
    UNION ALL
    (SELECT id, w, v FROM bt.lsn_dst EXCEPT ALL
     SELECT id, w, v FROM bt.lsn WHERE (w >= '0/500' AND w < '0/2000')
                                    OR (w >= 'FFFFFFFF/FFFFFF00' AND w < 'FFFFFFFF/FFFFFFFF'))) d;
SELECT count(*) AS lsn_rows, count(*) FILTER (WHERE v LIKE 'late%') AS late_rows FROM bt.lsn_dst;

-- a step of a pg_lsn column is a whole number of bytes
\set VERBOSITY default
CALL etl_backfill('bt_lsn', '0/0', '0/100', '1.5');
\echo sqlstate :LAST_ERROR_SQLSTATE
CALL etl_backfill('bt_lsn', '0/0', '0/100', '0');
\echo sqlstate :LAST_ERROR_SQLSTATE
-- an interval that is positive as a whole but moves a date back is refused
-- before any step (Jan 31 + 1 month - 29 days is Jan 31 again in 2024)
CALL etl_backfill('bt_ts', '2024-01-31', '2024-03-01', '1 month -29 days');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT count(*) AS backfill_steps FROM etl.batches WHERE pipeline LIKE 'bt\_%' AND kind = 'backfill';

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'bt\_%' ORDER BY name;
DROP SCHEMA bt CASCADE;
