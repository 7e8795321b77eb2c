-- monitor: etl.status, the lag and the metrics answer for every pipeline
-- whatever one pipeline's source does, leave the reader's settings alone,
-- and cost no more as the history grows
CREATE ROLE regress_mon_owner;
CREATE SCHEMA mon;
GRANT USAGE, CREATE ON SCHEMA mon TO regress_mon_owner;
LOAD 'etl_ext';
SHOW etl.lag_timeout;

SET ROLE regress_mon_owner;
-- a good source: its lag is known
CREATE TABLE mon.good (id int PRIMARY KEY, at timestamptz NOT NULL);
INSERT INTO mon.good VALUES (1, '2024-01-01'), (2, '2024-01-03');
CREATE TABLE mon.dst (id int PRIMARY KEY, at timestamptz);
-- a view that raises
CREATE FUNCTION mon.boom(int) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'the source of mon_raises is broken'; END$$;
CREATE VIEW mon.raises AS SELECT * FROM mon.good WHERE mon.boom(id);
-- a view that raises a cancel of its own (not the reader's)
CREATE FUNCTION mon.fake_cancel(int) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'not a real cancel' USING ERRCODE = 'query_canceled'; END$$;
CREATE VIEW mon.cancels AS SELECT * FROM mon.good WHERE mon.fake_cancel(id);
-- a view that sleeps far past etl.lag_timeout
CREATE FUNCTION mon.slow(int) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN PERFORM pg_sleep(60); RETURN true; END$$;
CREATE VIEW mon.sleeps AS SELECT * FROM mon.good WHERE mon.slow(id);
-- a view that catches the cancel and sleeps on: the cancel comes again
CREATE FUNCTION mon.stubborn(int) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN
    BEGIN PERFORM pg_sleep(60); EXCEPTION WHEN query_canceled THEN NULL; END;
    PERFORM pg_sleep(60);
    RETURN true;
END$$;
CREATE VIEW mon.stubborn AS SELECT * FROM mon.good WHERE mon.stubborn(id);
-- a watermark column holding infinity
CREATE TABLE mon.infinite (id int PRIMARY KEY, at timestamptz NOT NULL);
INSERT INTO mon.infinite VALUES (1, '2024-01-01'), (2, 'infinity');
-- bigint watermarks at the ends of the range
CREATE TABLE mon.big (id int PRIMARY KEY, seq bigint NOT NULL);
INSERT INTO mon.big VALUES (1, 9223372036854775807);
CREATE TABLE mon.big_dst (id int PRIMARY KEY, seq bigint);
-- a view whose function changes settings of the session that reads it,
-- and says under which JIT setting it runs
CREATE FUNCTION mon.meddle(int) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN
    IF $1 = 2 THEN
        RAISE NOTICE 'the lag is read with jit %', current_setting('jit');
    END IF;
    PERFORM set_config('search_path', 'mon, pg_catalog', false);
    PERFORM set_config('work_mem', '77kB', false);
    PERFORM set_config('statement_timeout', '1', false);
    PERFORM set_config('DateStyle', 'German', false);
    PERFORM set_config('IntervalStyle', 'sql_standard', false);
    PERFORM set_config('lock_timeout', '1', false);
    RETURN true;
END$$;
CREATE VIEW mon.meddles AS SELECT * FROM mon.good WHERE mon.meddle(id);

SELECT count(*) AS created FROM (VALUES
    (etl_create_pipeline('mon_good', 'mon.good', 'mon.dst', watermark_column => 'at')),
    (etl_create_pipeline('mon_raises', 'mon.raises', 'mon.dst', watermark_column => 'at')),
    (etl_create_pipeline('mon_cancels', 'mon.cancels', 'mon.dst', watermark_column => 'at')),
    (etl_create_pipeline('mon_sleeps', 'mon.sleeps', 'mon.dst', watermark_column => 'at')),
    (etl_create_pipeline('mon_stubborn', 'mon.stubborn', 'mon.dst', watermark_column => 'at')),
    (etl_create_pipeline('mon_infinite', 'mon.infinite', 'mon.dst', watermark_column => 'at')),
    (etl_create_pipeline('mon_big', 'mon.big', 'mon.big_dst', mode => 'serial',
                         watermark_column => 'seq')),
    (etl_create_pipeline('mon_overflow', 'mon.big', 'mon.big_dst', mode => 'serial',
                         watermark_column => 'seq')),
    (etl_create_pipeline('mon_meddles', 'mon.meddles', 'mon.dst', watermark_column => 'at'))) v;
SELECT count(etl_reset_watermark(name, '2024-01-01 00:00:00+00')) AS watermarks
  FROM etl.pipelines WHERE name LIKE 'mon\_%' AND mode = 'timestamp';
SELECT etl_reset_watermark('mon_big', '9223372036854775800');
SELECT etl_reset_watermark('mon_overflow', '-9223372036854775800');
RESET ROLE;

-- a reader with settings of its own
SET search_path = public;
SET work_mem = '3MB';
SET statement_timeout = '10min';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'iso_8601';
SET lock_timeout = '5min';
SET etl.lag_timeout = '200ms';
CREATE TEMP TABLE reader_settings AS
SELECT name, setting FROM pg_settings
 WHERE name IN ('search_path', 'work_mem', 'statement_timeout', 'DateStyle',
                'IntervalStyle', 'lock_timeout', 'jit', 'etl.lag_timeout');

-- each bad pipeline's lag is NULL, with a LOG line saying why; the reader
-- gets no error and does not wait for the sleeping views
SET client_min_messages = log;
SELECT lag FROM etl.status WHERE pipeline = 'mon_good';
SELECT lag FROM etl.status WHERE pipeline = 'mon_raises';
SELECT lag FROM etl.status WHERE pipeline = 'mon_cancels';
SELECT lag FROM etl.status WHERE pipeline = 'mon_sleeps';
SELECT lag FROM etl.status WHERE pipeline = 'mon_stubborn';
SELECT lag FROM etl.status WHERE pipeline = 'mon_infinite';
SELECT lag FROM etl.status WHERE pipeline = 'mon_big';
SELECT lag FROM etl.status WHERE pipeline = 'mon_overflow';
SELECT lag FROM etl.status WHERE pipeline = 'mon_meddles';
RESET client_min_messages;

-- every pipeline in one statement: the bad ones NULL, the others right,
-- the time far below the views' sleeps
SELECT clock_timestamp() AS started \gset
SELECT pipeline, lag, last_status, consecutive_failures, unrecorded_failures
  FROM etl.status WHERE pipeline LIKE 'mon\_%' ORDER BY pipeline;
SELECT clock_timestamp() - :'started'::timestamptz < interval '30 s' AS no_stall;
SELECT etl_internal.etl_lag('mon_good') AS good, etl_internal.etl_lag('mon_raises') AS raises,
       etl_internal.etl_lag('mon_overflow') AS overflow, etl_internal.etl_lag('mon_big') AS big;

-- the metrics too: a lag sample for each timestamp pipeline whose lag is
-- known, none for the others
SELECT labels->>'pipeline' AS pipeline, value
  FROM etl_metric_rows()
 WHERE metric = 'etl_watermark_lag_seconds' AND labels->>'pipeline' LIKE 'mon\_%'
 ORDER BY 1;
SELECT line FROM regexp_split_to_table(etl_metrics(), E'\n') AS line
 WHERE line LIKE 'etl_watermark_lag_seconds{pipeline="mon\_%' ORDER BY 1;
SELECT count(*) AS samples FROM jsonb_array_elements(etl_metrics('json')::jsonb->'metrics') m,
       jsonb_array_elements(m->'samples') s
 WHERE m->>'name' = 'etl_watermark_lag_seconds' AND s->'labels'->>'pipeline' LIKE 'mon\_%';

-- the reader's settings are as it set them
SELECT r.name, r.setting = s.setting AS unchanged
  FROM reader_settings r JOIN pg_settings s USING (name) ORDER BY 1;
SHOW DateStyle;
SHOW search_path;

-- a lag of 0 is no error: caught up, or an empty source
SET ROLE regress_mon_owner;
SELECT etl_reset_watermark('mon_good', '2024-01-05 00:00:00+00');
DELETE FROM mon.big;
RESET ROLE;
SELECT pipeline, lag FROM etl.status WHERE pipeline IN ('mon_good', 'mon_big') ORDER BY 1;
RESET etl.lag_timeout;
RESET statement_timeout;
RESET lock_timeout;
RESET DateStyle;
RESET IntervalStyle;
RESET work_mem;

-- the plan of etl.status does not grow with the history (the planner's
-- estimate decides whether it is JIT-compiled): 30,000 more recorded runs
-- of one pipeline, a tenth of them failed, leave its cost where it was
CREATE FUNCTION mon.status_cost() RETURNS double precision LANGUAGE plpgsql AS
$$DECLARE plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT * FROM etl.status' INTO plan;
    RETURN (plan->0->'Plan'->>'Total Cost')::double precision;
END$$;
CREATE FUNCTION mon.add_runs(n int) RETURNS void LANGUAGE sql AS
$$WITH r AS (
    INSERT INTO etl.runs (pipeline_id, pipeline, status, started_at, finished_at, duration, run_by)
    SELECT p.pipeline_id, p.name, CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'skipped' END,
           timestamptz '2023-01-01' + g * interval '1 s', timestamptz '2023-01-01' + g * interval '1 s',
           '0', 'regress_mon_owner'
      FROM etl.pipelines p, generate_series(1, n) AS g
     WHERE p.name = 'mon_good'
    RETURNING run_id, pipeline_id, pipeline, status)
  -- each failed run with its batch row, as a run records it: the batch log
  -- grows with the history too
  INSERT INTO etl.batches (run_id, pipeline_id, pipeline, kind, status)
  SELECT run_id, pipeline_id, pipeline, 'incremental', 'failed' FROM r WHERE status = 'failed'$$;
SELECT mon.add_runs(10000);
ANALYZE etl.runs, etl.batches, etl.pipelines, etl.run_totals;
SELECT mon.status_cost() AS cost_before \gset
SELECT mon.add_runs(30000);
ANALYZE etl.runs, etl.batches, etl.pipelines, etl.run_totals;
SELECT mon.status_cost() < 1.1 * :cost_before AS cost_does_not_grow;
-- and the failures in a row are counted all the same
SELECT consecutive_failures, last_status FROM etl.status WHERE pipeline = 'mon_good';

-- every run looks for the batch rows a crash left open: through the index
-- of open batch rows, not by reading the pipeline's batch log
SET ROLE regress_mon_owner;
INSERT INTO mon.good VALUES (3, '2024-01-06');
RESET ROLE;
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS open_before FROM pg_stat_user_indexes
 WHERE schemaname = 'etl' AND indexrelname = 'batches_open_idx' \gset
SELECT seq_scan AS batches_seq_before FROM pg_stat_user_tables
 WHERE schemaname = 'etl' AND relname = 'batches' \gset
SELECT status, rows_extracted FROM etl_run('mon_good');
SELECT pg_stat_force_next_flush();
SELECT idx_scan - :open_before AS open_batch_lookups FROM pg_stat_user_indexes
 WHERE schemaname = 'etl' AND indexrelname = 'batches_open_idx';
SELECT seq_scan - :batches_seq_before AS batch_log_scans FROM pg_stat_user_tables
 WHERE schemaname = 'etl' AND relname = 'batches';
-- the success ends the failures in a row
SELECT consecutive_failures, last_status FROM etl.status WHERE pipeline = 'mon_good';

-- dropping a pipeline deletes its 40,000 runs, and each run's batch rows
-- through the index of batch rows by run, not by reading the batch log (the
-- pipeline's own cascade may read it once: it deletes most of its rows)
SELECT count(*) AS mon_pipelines FROM etl.pipelines WHERE name LIKE 'mon\_%' \gset
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS by_run_before FROM pg_stat_user_indexes
 WHERE schemaname = 'etl' AND indexrelname = 'batches_run_idx' \gset
SELECT seq_scan AS batches_seq_before FROM pg_stat_user_tables
 WHERE schemaname = 'etl' AND relname = 'batches' \gset
SELECT count(etl_drop_pipeline(name)) AS dropped FROM etl.pipelines WHERE name LIKE 'mon\_%';
SELECT pg_stat_force_next_flush();
SELECT idx_scan - :by_run_before >= 40000 AS batch_rows_found_by_run FROM pg_stat_user_indexes
 WHERE schemaname = 'etl' AND indexrelname = 'batches_run_idx';
SELECT seq_scan - :batches_seq_before <= :mon_pipelines AS batch_log_not_read_per_run
  FROM pg_stat_user_tables WHERE schemaname = 'etl' AND relname = 'batches';
DROP SCHEMA mon CASCADE;
DROP ROLE regress_mon_owner;
