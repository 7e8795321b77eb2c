-- reserved_columns: the names the generated SQL gives its own columns next
-- to the source's and the transform's (etl_rn, etl_held, etl_kh, etl_rh,
-- etl_n, etl_swap_cur, etl_swap_dest, etl_swap_gap, etl_swap_period) are
-- refused in a source and in a transform's output (42701) when a pipeline
-- is created or altered, and a run whose source has come to have one fails
-- before it extracts: nothing loaded, the watermark where it was.  Names
-- that only look like them (etl_rn2, "ETL_RN") load, bad rows and all.

CREATE SCHEMA rc;
CREATE TABLE rc.names (ord int, name text);
INSERT INTO rc.names VALUES (1, 'etl_rn'), (2, 'etl_held'), (3, 'etl_kh'), (4, 'etl_rh'),
    (5, 'etl_n'), (6, 'etl_swap_cur'), (7, 'etl_swap_dest'), (8, 'etl_swap_gap'),
    (9, 'etl_swap_period');

-- rc.try(sql) runs sql and returns 'ok', or its error's SQLSTATE, message
-- and hint
CREATE FUNCTION rc.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || ' | ' || hint;
END $$;

-- rc.run(p) runs pipeline p and returns 'ok' or the SQLSTATE of its failure
CREATE FUNCTION rc.run(p text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM etl_run(p);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

-- one refusal in full
CREATE TABLE rc.src_rn (id int PRIMARY KEY, v int, etl_rn int);
CREATE TABLE rc.dst (id int PRIMARY KEY, v int CHECK (v >= 0));
SELECT etl_create_pipeline('rc_one', 'rc.src_rn', 'rc.dst', mode => 'full');

-- each name as a source column (the target lacks it: the default transform
-- would not even load it), in a mode that needs no stage for a clean batch
SELECT n.name,
       rc.try(format('CREATE TABLE rc.%I (id int PRIMARY KEY, v int, %I int)',
                     's_' || n.ord, n.name)) AS source_made,
       rc.try(format($f$SELECT etl_create_pipeline('rc_s%s', 'rc.s_%s', 'rc.dst', mode => 'full')$f$,
                     n.ord, n.ord)) AS created
  FROM rc.names n ORDER BY n.ord;

-- each name as a transform's output column, the target having it
CREATE TABLE rc.src (id int PRIMARY KEY, v int, at timestamptz NOT NULL);
SELECT n.name,
       rc.try(format('CREATE TABLE rc.%I (id int PRIMARY KEY, %I int)', 't_' || n.ord,
                     n.name)) AS target_made,
       rc.try(format($f$SELECT etl_create_pipeline('rc_t%s', 'rc.src', 'rc.t_%s',
                                    watermark_column => 'at',
                                    transform => 'SELECT id, v AS %I FROM etl_delta')$f$,
                     n.ord, n.ord, n.name)) AS created
  FROM rc.names n ORDER BY n.ord;

-- nothing was stored
SELECT count(*) AS pipelines FROM etl.pipelines WHERE name LIKE 'rc%';

-- a pipeline altered to produce one is refused, its definition kept
INSERT INTO rc.src VALUES (1, 10, '2024-01-01 10:00+00'), (2, 20, '2024-01-01 11:00+00');
CREATE TABLE rc.dst_kh (id int PRIMARY KEY, v int, etl_kh int);
SELECT etl_create_pipeline('rc_alter', 'rc.src', 'rc.dst_kh', mode => 'snapshot',
                           transform => 'SELECT id, v FROM etl_delta') > 0 AS created;
SELECT rc.try($f$SELECT etl_alter_pipeline('rc_alter',
                    transform => 'SELECT id, v, v AS etl_kh FROM etl_delta')$f$) AS altered;
SELECT transform FROM etl.pipelines WHERE name = 'rc_alter';
SELECT status, rows_inserted FROM etl_run('rc_alter');
SELECT * FROM rc.dst_kh ORDER BY id;

-- a source that gains a reserved column: the next run fails with 42701
-- before it extracts, whatever on_schema_change says; nothing is loaded,
-- the watermark stays, no dead letter is written
CREATE TABLE rc.grow (id int PRIMARY KEY, v int, at timestamptz NOT NULL);
CREATE TABLE rc.grow_dst (id int PRIMARY KEY, v int CHECK (v >= 0));
INSERT INTO rc.grow VALUES (1, 1, '2024-01-01 10:00+00'), (2, 2, '2024-01-01 11:00+00');
SELECT etl_create_pipeline('rc_grow', 'rc.grow', 'rc.grow_dst', watermark_column => 'at',
                           on_schema_change => 'ignore', error_threshold => 50) > 0 AS created;
SELECT status, rows_inserted FROM etl_run('rc_grow');
SELECT watermark AS wm_before FROM etl.pipelines WHERE name = 'rc_grow' \gset
ALTER TABLE rc.grow ADD COLUMN etl_held boolean;
INSERT INTO rc.grow VALUES (3, 3, '2024-01-01 12:00+00'), (4, -4, '2024-01-01 13:00+00');
SELECT rc.run('rc_grow');
SELECT status, sqlstate, rows_extracted, error FROM etl.runs
 WHERE pipeline = 'rc_grow' ORDER BY run_id DESC LIMIT 1;
SELECT watermark = :'wm_before' AS watermark_kept FROM etl.pipelines WHERE name = 'rc_grow';
SELECT * FROM rc.grow_dst ORDER BY id;
SELECT count(*) AS dead_letters FROM etl.dead_letters WHERE pipeline = 'rc_grow';
-- under on_schema_change 'fail' too, the error names the reserved column,
-- not the drift; altering the pipeline is refused while the source has it
ALTER TABLE rc.grow DROP COLUMN etl_held;
SELECT etl_alter_pipeline('rc_grow', on_schema_change => 'fail') > 0 AS altered;
ALTER TABLE rc.grow ADD COLUMN etl_rn int;
SELECT rc.run('rc_grow');
SELECT status, sqlstate, rows_extracted, error FROM etl.runs
 WHERE pipeline = 'rc_grow' ORDER BY run_id DESC LIMIT 1;
SELECT watermark = :'wm_before' AS watermark_kept FROM etl.pipelines WHERE name = 'rc_grow';
SELECT etl_alter_pipeline('rc_grow');
-- renamed, the column is drift, accepted; the bad row is a dead letter
ALTER TABLE rc.grow RENAME COLUMN etl_rn TO rn;
SELECT etl_alter_pipeline('rc_grow') > 0 AS accepted;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('rc_grow');
SELECT * FROM rc.grow_dst ORDER BY id;
SELECT record->>'id' AS id, sqlstate FROM etl.dead_letters WHERE pipeline = 'rc_grow';

-- mode snapshot: a source that gains etl_kh (loaded by the default
-- transform) fails before comparing; the signatures stay
CREATE TABLE rc.snap (id int PRIMARY KEY, v int);
CREATE TABLE rc.snap_dst (id int PRIMARY KEY, v int, etl_kh int);
INSERT INTO rc.snap VALUES (1, 1), (2, 2);
SELECT etl_create_pipeline('rc_snap', 'rc.snap', 'rc.snap_dst', mode => 'snapshot',
                           on_schema_change => 'ignore') > 0 AS created;
SELECT status, rows_inserted FROM etl_run('rc_snap');
ALTER TABLE rc.snap ADD COLUMN etl_kh int;
DELETE FROM rc.snap WHERE id = 1;
SELECT rc.run('rc_snap');
SELECT status, sqlstate, rows_extracted, error FROM etl.runs
 WHERE pipeline = 'rc_snap' ORDER BY run_id DESC LIMIT 1;
SELECT * FROM rc.snap_dst ORDER BY id;
SELECT count(*) AS signatures FROM etl.snapshot_signatures s
  JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = 'rc_snap';

-- names like the reserved ones are not reserved: with a bad row (the
-- stage), a key that repeats (one row per key) and mode snapshot
CREATE TABLE rc.like_src (id int, v int, etl_rn2 int, "ETL_RN" int, "Etl_Kh" int,
                          at timestamptz NOT NULL);
CREATE TABLE rc.like_dst (id int PRIMARY KEY, v int CHECK (v >= 0), etl_rn2 int, "ETL_RN" int,
                          "Etl_Kh" int, etl_n2 int);
INSERT INTO rc.like_src VALUES (1, 1, 10, 100, 1000, '2024-01-01 10:00+00'),
    (2, -2, 20, 200, 2000, '2024-01-01 11:00+00'), (3, 3, 30, 300, 3000, '2024-01-01 12:00+00'),
    (3, 4, 40, 400, 4000, '2024-01-01 13:00+00');
SELECT etl_create_pipeline('rc_like', 'rc.like_src', 'rc.like_dst', key => '{id}',
                           watermark_column => 'at', error_threshold => 50,
                           transform => 'SELECT id, v, etl_rn2, "ETL_RN", "Etl_Kh",
                                                v AS etl_n2 FROM etl_delta') > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('rc_like');
SELECT * FROM rc.like_dst ORDER BY id;
SELECT record->>'id' AS id, record->>'ETL_RN' AS "ETL_RN", sqlstate
  FROM etl.dead_letters WHERE pipeline = 'rc_like';
CREATE TABLE rc.like_snap (id int PRIMARY KEY, v int CHECK (v >= 0), etl_rn2 int, "ETL_RN" int,
                           "Etl_Kh" int, etl_n2 int);
SELECT etl_create_pipeline('rc_like_snap', 'rc.like_src', 'rc.like_snap', key => '{id}',
                           mode => 'snapshot', error_threshold => 75,
                           transform => 'SELECT id, v, etl_rn2, "ETL_RN", "Etl_Kh",
                                                v AS etl_n2 FROM etl_delta') > 0 AS created;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('rc_like_snap');
DELETE FROM rc.like_src WHERE id = 1;
SELECT status, rows_deleted FROM etl_run('rc_like_snap');
SELECT * FROM rc.like_snap ORDER BY id;

-- the generated SQL reads whole rows through aliases (etl_d, etl_s) that a
-- source column may be named like: a dead letter's record is the whole row
-- all the same, in the load, in a quarantine check and in a replay, and so
-- is the row a serial run cannot place
CREATE TABLE rc.alias_src (id int PRIMARY KEY, v int, etl_d int, etl_s int,
                           at timestamptz NOT NULL);
CREATE TABLE rc.alias_dst (id int PRIMARY KEY, v int CHECK (v >= 0), etl_d int, etl_s int);
INSERT INTO rc.alias_src VALUES (1, 1, 10, 100, '2024-01-01 10:00+00'),
    (2, -2, 20, 200, '2024-01-01 11:00+00'), (3, 3, 30, 300, '2024-01-01 12:00+00');
SELECT etl_create_pipeline('rc_alias', 'rc.alias_src', 'rc.alias_dst',
                           watermark_column => 'at', error_threshold => 50) > 0 AS created;
SELECT status, rows_inserted, rows_rejected FROM etl_run('rc_alias');
SELECT record - 'at' AS record, stage, sqlstate FROM etl.dead_letters WHERE pipeline = 'rc_alias';
ALTER TABLE rc.alias_dst DROP CONSTRAINT alias_dst_v_check;
SELECT * FROM etl_retry_dead_letters('rc_alias');
SELECT * FROM rc.alias_dst ORDER BY id;
CREATE TABLE rc.alias_q (id int PRIMARY KEY, v int, etl_d int, etl_s int);
SELECT etl_create_pipeline('rc_alias_q', 'rc.alias_src', 'rc.alias_q',
                           watermark_column => 'at', error_threshold => 50) > 0 AS created;
SELECT etl_add_check('rc_alias_q', 'positive', column_name => 'v', severity => 'quarantine');
SELECT status, rows_inserted, rows_rejected FROM etl_run('rc_alias_q');
SELECT record - 'at' AS record, stage FROM etl.dead_letters WHERE pipeline = 'rc_alias_q';
CREATE TABLE rc.alias_serial (id int, v int, etl_s int);
INSERT INTO rc.alias_serial VALUES (1, 1, 10), (NULL, 2, 20);
CREATE TABLE rc.alias_serial_dst (id int PRIMARY KEY, v int, etl_s int);
SET client_min_messages = warning;
SELECT etl_create_pipeline('rc_alias_serial', 'rc.alias_serial', 'rc.alias_serial_dst',
                           key => '{id}', mode => 'serial', watermark_column => 'id') > 0 AS created;
RESET client_min_messages;
CREATE FUNCTION rc.run_detail(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    PERFORM etl_run(p);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN detail;
END $$;
SELECT rc.run_detail('rc_alias_serial');

-- load partition_swap gives constraints of its own names to the tables it
-- builds like the target and its partitions: a constraint of such a name
-- (etl_swap_bound on the target or a partition, partition_constraint_of_target
-- on the target) is refused when the pipeline is defined or altered, and
-- fails a run before the swap builds anything
CREATE TABLE rc.sw_src (id int PRIMARY KEY, d date, v int, at timestamptz NOT NULL);
CREATE TABLE rc.sw_dst (id int, d date, v int, PRIMARY KEY (id, d),
                        CONSTRAINT etl_swap_bound CHECK (v >= 0)) PARTITION BY RANGE (d);
CREATE TABLE rc.sw_dst_1 PARTITION OF rc.sw_dst FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
INSERT INTO rc.sw_src VALUES (1, '2024-01-05', 1, '2024-01-01 10:00+00'),
    (2, '2024-01-06', 2, '2024-01-01 11:00+00');
SELECT etl_create_pipeline('rc_swap', 'rc.sw_src', 'rc.sw_dst', key => '{id}',
                           watermark_column => 'at', load => 'partition_swap');
ALTER TABLE rc.sw_dst RENAME CONSTRAINT etl_swap_bound TO v_positive;
SELECT etl_create_pipeline('rc_swap', 'rc.sw_src', 'rc.sw_dst', key => '{id}',
                           watermark_column => 'at', load => 'partition_swap') > 0 AS created;
SELECT status, rows_inserted FROM etl_run('rc_swap');
ALTER TABLE rc.sw_dst_1 ADD CONSTRAINT etl_swap_bound CHECK (id > 0);
INSERT INTO rc.sw_src VALUES (3, '2024-01-07', 3, '2024-01-01 12:00+00');
SELECT rc.run('rc_swap');
SELECT status, sqlstate, error FROM etl.runs
 WHERE pipeline = 'rc_swap' ORDER BY run_id DESC LIMIT 1;
SELECT * FROM rc.sw_dst ORDER BY id;
ALTER TABLE rc.sw_dst_1 RENAME CONSTRAINT etl_swap_bound TO id_positive;
SELECT status, rows_inserted FROM etl_run('rc_swap');
SELECT * FROM rc.sw_dst ORDER BY id;
ALTER TABLE rc.sw_dst ADD CONSTRAINT partition_constraint_of_target CHECK (id < 1000);
SELECT rc.try($$SELECT etl_alter_pipeline('rc_swap')$$) AS altered;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'rc%' ORDER BY name;
SET client_min_messages = warning;
DROP SCHEMA rc CASCADE;
