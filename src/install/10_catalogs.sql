/*
 * src/install/10_catalogs.sql -- the catalog tables of schema etl:
 * pipelines, runs, batches, dead letters, checks and check results, mode
 * snapshot's signatures, the counters etl.run_totals and etl.check_totals
 * with the triggers that keep them, and which of them pg_dump keeps
 * (pg_extension_config_dump).  Their privileges and row-level security are
 * in 20_security_rls.sql.
 */

CREATE TABLE etl.pipelines (
    pipeline_id       bigserial PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    owner             regrole NOT NULL,
    source            text NOT NULL,
    target            text NOT NULL,
    key               text[] NOT NULL,
    mode              text NOT NULL,
    watermark_column  text,
    overlap           interval NOT NULL DEFAULT '0',
    transform         text,
    load              text NOT NULL,
    batch_size        bigint,
    error_threshold   numeric NOT NULL,
    max_attempts      integer NOT NULL,
    retry_policy      text NOT NULL,
    retry_base_delay  interval NOT NULL,
    retry_max_delay   interval NOT NULL,
    on_schema_change  text NOT NULL,
    options           jsonb NOT NULL DEFAULT '{}',
    alert_after_failures integer NOT NULL DEFAULT 1,
    source_columns    jsonb,
    watermark         text,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT pipelines_name_check CHECK (name <> ''),
    CONSTRAINT pipelines_mode_check
        CHECK (mode IN ('timestamp', 'serial', 'xid', 'cdc', 'snapshot', 'full')),
    CONSTRAINT pipelines_load_check
        CHECK (load IN ('merge', 'append', 'delete_insert', 'partition_swap')),
    CONSTRAINT pipelines_batch_size_check CHECK (batch_size > 0),
    CONSTRAINT pipelines_error_threshold_check
        CHECK (error_threshold >= 0 AND error_threshold <= 100),
    CONSTRAINT pipelines_max_attempts_check CHECK (max_attempts >= 1),
    CONSTRAINT pipelines_retry_policy_check
        CHECK (retry_policy IN ('none', 'linear', 'exponential', 'exponential_jitter')),
    CONSTRAINT pipelines_on_schema_change_check
        CHECK (on_schema_change IN ('fail', 'ignore', 'append_new_columns')),
    CONSTRAINT pipelines_alert_after_failures_check CHECK (alert_after_failures >= 1)
);
COMMENT ON TABLE etl.pipelines IS
    'one row per pipeline: its definition and its watermark (change only through etl_* functions)';

CREATE TABLE etl.runs (
    run_id          bigserial PRIMARY KEY,
    pipeline_id     bigint NOT NULL REFERENCES etl.pipelines ON DELETE CASCADE,
    pipeline        text NOT NULL,
    status          text NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    rows_extracted  bigint NOT NULL DEFAULT 0,
    rows_inserted   bigint NOT NULL DEFAULT 0,
    rows_updated    bigint NOT NULL DEFAULT 0,
    rows_deleted    bigint NOT NULL DEFAULT 0,
    rows_unchanged  bigint NOT NULL DEFAULT 0,
    rows_rejected   bigint NOT NULL DEFAULT 0,
    watermark_from  text,
    watermark_to    text,
    attempts        integer NOT NULL DEFAULT 1,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    duration        interval,
    error           text,
    sqlstate        text,
    error_class     text CHECK (error_class IN ('transient', 'recoverable', 'fatal')),
    run_by          regrole,
    triggered_by    text NOT NULL DEFAULT 'manual'
        CHECK (triggered_by IN ('manual', 'schedule', 'backfill', 'catch_up', 'replay')),
    extract_ms      double precision,
    transform_ms    double precision,
    check_ms        double precision,
        load_ms         double precision,
    attempt_errors  jsonb
);
CREATE INDEX runs_pipeline_idx ON etl.runs (pipeline_id, run_id);
COMMENT ON TABLE etl.runs IS 'one row per etl_run: counts, watermarks and per-stage milliseconds';

CREATE TABLE etl.batches (
    batch_id    bigserial PRIMARY KEY,
    run_id      bigint REFERENCES etl.runs ON DELETE CASCADE,
    pipeline_id bigint NOT NULL REFERENCES etl.pipelines ON DELETE CASCADE,
    pipeline    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('incremental', 'catch_up', 'backfill')),
    range_from  text,
    range_to    text,
    status      text NOT NULL
        CHECK (status IN ('started', 'staged', 'completed', 'failed', 'abandoned')),
    rows        bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    error       text
);
CREATE INDEX batches_pipeline_idx ON etl.batches (pipeline_id, batch_id);
-- the batch rows a crash left open, which every run looks for: the index
-- holds those only, so the lookup does not grow with the batch log
CREATE INDEX batches_open_idx ON etl.batches (pipeline_id)
    WHERE status IN ('started', 'staged');
-- the batch rows of a run, which deleting the run deletes (dropping a
-- pipeline, pruning old runs): without it each deleted run reads the whole
-- batch log
CREATE INDEX batches_run_idx ON etl.batches (run_id);
COMMENT ON TABLE etl.batches IS 'the batch log: one row per extracted range';

CREATE TABLE etl.dead_letters (
    id             bigserial PRIMARY KEY,
    pipeline_id    bigint NOT NULL REFERENCES etl.pipelines ON DELETE CASCADE,
    pipeline       text NOT NULL,
    run_id         bigint,
    stage          text NOT NULL CHECK (stage IN ('extract', 'transform', 'check', 'load')),
    record         jsonb,
    error_class    text NOT NULL CHECK (error_class IN ('transient', 'recoverable', 'fatal')),
    sqlstate       text,
    error_message  text,
    status         text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'resolved', 'ignored')),
    retry_count    integer NOT NULL DEFAULT 0,
    occurred_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at    timestamptz,
    resolution     text
);
CREATE INDEX dead_letters_pipeline_idx ON etl.dead_letters (pipeline_id, status);
-- a run looks up each row it rejects among the pipeline's pending dead
-- letters (the same row version is not dead-lettered twice)
CREATE INDEX dead_letters_pending_record_idx ON etl.dead_letters
    (pipeline_id, pg_catalog.jsonb_hash(record)) WHERE status = 'pending';
COMMENT ON TABLE etl.dead_letters IS 'rows isolated from their batch, with the error that rejected them';

CREATE TABLE etl.checks (
    check_id     bigserial PRIMARY KEY,
    pipeline_id  bigint NOT NULL REFERENCES etl.pipelines ON DELETE CASCADE,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('not_null', 'unique', 'accepted_values',
                     'positive', 'range', 'foreign_key', 'z_score', 'row_count',
                     'expression', 'freshness')),
    column_name  text,
    params       jsonb NOT NULL DEFAULT '{}',
    severity     text NOT NULL CHECK (severity IN ('critical', 'warning', 'quarantine')),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (pipeline_id, name)
);
COMMENT ON TABLE etl.checks IS 'quality checks run on every batch before it loads';

CREATE TABLE etl.check_results (
    result_id     bigserial PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES etl.runs ON DELETE CASCADE,
    pipeline_id   bigint NOT NULL REFERENCES etl.pipelines ON DELETE CASCADE,
    pipeline      text NOT NULL,
    check_name    text NOT NULL,
    kind          text NOT NULL,
    column_name   text,
    severity      text NOT NULL,
    passed        boolean NOT NULL,
    failing_rows  bigint NOT NULL,
    observed      jsonb,
    checked_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX check_results_run_idx ON etl.check_results (run_id);
COMMENT ON TABLE etl.check_results IS 'one row per check per run, failed runs included';

-- Snapshot signatures: mode snapshot's memory of the last run, one row per
-- key of the transformed source (hashes of the key and of the other
-- columns, and the key's values to find its target row once it is gone).
-- Runs compute them as the pipeline owner and write them as the extension
-- owner (from values kept in C memory): each role reads the signatures of
-- the pipelines whose owner's privileges it has and writes none, so no role
-- can lock the table beyond ACCESS SHARE and stall other owners' runs.
-- No foreign key to etl.pipelines: checking one per signature would make a
-- first snapshot load of a large source much slower; etl_drop_pipeline
-- deletes them instead.
CREATE TABLE etl.snapshot_signatures (
    pipeline_id bigint NOT NULL,
    key_hash    bytea NOT NULL,
    row_hash    bytea NOT NULL,
    key         jsonb NOT NULL,
    PRIMARY KEY (pipeline_id, key_hash)
);
COMMENT ON TABLE etl.snapshot_signatures IS
    'mode snapshot: per pipeline and key, the row hash loaded by the last run';
SELECT pg_catalog.pg_extension_config_dump('etl.snapshot_signatures', '');

-- Run totals: what etl_metrics() reads, kept per pipeline and outcome by a
-- trigger on etl.runs, so the metrics cost does not grow with the history.
-- Counters only grow: deleting old runs does not lower them.  A row per
-- outcome keeps writers apart: the run's own transaction adds succeeded
-- runs, the autonomous writer failed ones.  Skipped runs are counted from
-- their partial index instead, so that sessions skipping a busy pipeline
-- never wait on each other.
CREATE FUNCTION etl_internal.etl_duration_buckets()
RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
SELECT '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,120,300,600}'::pg_catalog.float8[]
$fn$;
COMMENT ON FUNCTION etl_internal.etl_duration_buckets() IS
    'upper bounds (seconds) of the buckets of the etl_run_duration_seconds histogram';

CREATE TABLE etl.run_totals (
    pipeline_id      bigint NOT NULL REFERENCES etl.pipelines ON DELETE CASCADE,
    status           text NOT NULL,
    runs             bigint NOT NULL,
    seconds          double precision NOT NULL,
    buckets          bigint[] NOT NULL,
    rows_extracted   numeric NOT NULL,
    rows_inserted    numeric NOT NULL,
    rows_updated     numeric NOT NULL,
    rows_deleted     numeric NOT NULL,
    rows_unchanged   numeric NOT NULL,
    rows_rejected    numeric NOT NULL,
    last_run_id      bigint NOT NULL,
    last_seconds     double precision NOT NULL,
    last_finished_at timestamptz,
    -- the failed row: the failures in a row after the success streak_after
    -- (a run id, 0: none), which etl.status and run_failed events count
    -- without reading the history
    streak           bigint NOT NULL DEFAULT 0,
    streak_after     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (pipeline_id, status)
) WITH (fillfactor = 50);
COMMENT ON TABLE etl.run_totals IS
    'per pipeline and outcome: run count, durations (cumulative histogram buckets), row counts, last run, failures in a row';
CREATE INDEX runs_skipped_idx ON etl.runs (pipeline_id) WHERE status = 'skipped';

CREATE FUNCTION etl.runs_add_totals()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    secs double precision := COALESCE(EXTRACT(epoch FROM NEW.duration)::double precision, 0);
    -- a failure after the last success extends the streak after it; one
    -- recorded late, before that success, is not in it
    success bigint := 0;
    in_streak boolean := false;
BEGIN
    IF NEW.status NOT IN ('succeeded', 'failed') THEN
        RETURN NULL;
    END IF;
    IF NEW.status OPERATOR(pg_catalog.=) 'failed' THEN
        success := COALESCE((SELECT s.last_run_id FROM etl.run_totals s
                              WHERE s.pipeline_id OPERATOR(pg_catalog.=) NEW.pipeline_id
                                AND s.status OPERATOR(pg_catalog.=) 'succeeded'), 0);
        in_streak := NEW.run_id OPERATOR(pg_catalog.>) success;
    END IF;
    INSERT INTO etl.run_totals AS t
    VALUES (NEW.pipeline_id, NEW.status, 1, secs,
            ARRAY(SELECT (secs OPERATOR(pg_catalog.<=) b)::integer::bigint
                    FROM unnest(etl_internal.etl_duration_buckets()) WITH ORDINALITY AS u(b, i) ORDER BY i),
            NEW.rows_extracted, NEW.rows_inserted, NEW.rows_updated, NEW.rows_deleted,
            NEW.rows_unchanged, NEW.rows_rejected, NEW.run_id, secs, NEW.finished_at,
            in_streak::integer, success)
    ON CONFLICT (pipeline_id, status) DO UPDATE
       SET runs = t.runs + 1,
           seconds = t.seconds + EXCLUDED.seconds,
           buckets = ARRAY(SELECT x + y FROM unnest(t.buckets, EXCLUDED.buckets)
                                              WITH ORDINALITY AS u(x, y, i) ORDER BY i),
           rows_extracted = t.rows_extracted + EXCLUDED.rows_extracted,
           rows_inserted = t.rows_inserted + EXCLUDED.rows_inserted,
           rows_updated = t.rows_updated + EXCLUDED.rows_updated,
           rows_deleted = t.rows_deleted + EXCLUDED.rows_deleted,
           rows_unchanged = t.rows_unchanged + EXCLUDED.rows_unchanged,
           rows_rejected = t.rows_rejected + EXCLUDED.rows_rejected,
           last_run_id = greatest(t.last_run_id, EXCLUDED.last_run_id),
           last_seconds = CASE WHEN EXCLUDED.last_run_id > t.last_run_id
                               THEN EXCLUDED.last_seconds ELSE t.last_seconds END,
           last_finished_at = CASE WHEN EXCLUDED.last_run_id > t.last_run_id
                                   THEN EXCLUDED.last_finished_at ELSE t.last_finished_at END,
           streak = CASE WHEN NOT in_streak THEN t.streak
                         WHEN t.streak_after = success THEN t.streak + 1
                         ELSE 1 END,
           streak_after = CASE WHEN in_streak THEN success ELSE t.streak_after END;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER runs_add_totals AFTER INSERT ON etl.runs
    FOR EACH ROW EXECUTE FUNCTION etl.runs_add_totals();
-- ALWAYS: also in sessions with session_replication_role = replica (a
-- logical replication apply, a database or role that sets it), whose runs
-- would otherwise be missing from the counters
ALTER TABLE etl.runs ENABLE ALWAYS TRIGGER runs_add_totals;

-- Check failure totals: etl_check_failures_total, kept like run_totals (one
-- row per check and outcome of the run: the run's transaction records the
-- checks of succeeded runs, the autonomous writer those of failed ones).
CREATE TABLE etl.check_totals (
    pipeline_id bigint NOT NULL REFERENCES etl.pipelines ON DELETE CASCADE,
    check_name  text NOT NULL,
    run_status  text NOT NULL,
    failures    bigint NOT NULL,
    PRIMARY KEY (pipeline_id, check_name, run_status)
) WITH (fillfactor = 50);
COMMENT ON TABLE etl.check_totals IS 'per pipeline, check and run outcome: failed evaluations';

CREATE FUNCTION etl.check_results_add_totals()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF NEW.passed THEN
        RETURN NULL;
    END IF;
    INSERT INTO etl.check_totals AS t
    VALUES (NEW.pipeline_id, NEW.check_name,
            COALESCE((SELECT r.status FROM etl.runs r WHERE r.run_id = NEW.run_id), 'succeeded'), 1)
    ON CONFLICT (pipeline_id, check_name, run_status) DO UPDATE SET failures = t.failures + 1;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER check_results_add_totals AFTER INSERT ON etl.check_results
    FOR EACH ROW EXECUTE FUNCTION etl.check_results_add_totals();
ALTER TABLE etl.check_results ENABLE ALWAYS TRIGGER check_results_add_totals;

-- pg_dump keeps user pipelines, their history and their sequences
SELECT pg_catalog.pg_extension_config_dump('etl.pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('etl.pipelines_pipeline_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('etl.runs', '');
SELECT pg_catalog.pg_extension_config_dump('etl.runs_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('etl.batches', '');
SELECT pg_catalog.pg_extension_config_dump('etl.batches_batch_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('etl.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('etl.dead_letters_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('etl.checks', '');
SELECT pg_catalog.pg_extension_config_dump('etl.checks_check_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('etl.check_results', '');
SELECT pg_catalog.pg_extension_config_dump('etl.check_results_result_id_seq', '');

