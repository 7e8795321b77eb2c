/* etl_ext--1.0.sql — incremental ETL inside PostgreSQL */

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
-- No foreign key to etl.pipelines: checking one per signature cost a first
-- snapshot load of 1M rows 4 s; etl_drop_pipeline deletes them instead.
CREATE TABLE etl.snapshot_signatures (
    pipeline_id bigint NOT NULL,
    key_hash    bytea NOT NULL,
    row_hash    bytea NOT NULL,
    key         jsonb NOT NULL,
    PRIMARY KEY (pipeline_id, key_hash)
);
COMMENT ON TABLE etl.snapshot_signatures IS
    'mode snapshot: per pipeline and key, the row hash loaded by the last run';
ALTER TABLE etl.snapshot_signatures ENABLE ROW LEVEL SECURITY;
-- (an uncorrelated IN: one hashed read of the pipelines per statement,
-- whatever the number of signatures; resolved here under pg_catalog)
CREATE POLICY signatures_of_owner ON etl.snapshot_signatures FOR SELECT
    USING (pipeline_id IN (SELECT p.pipeline_id FROM etl.pipelines p
                            WHERE pg_catalog.pg_has_role(p.owner, 'USAGE')));
REVOKE ALL ON etl.snapshot_signatures FROM PUBLIC;
GRANT SELECT ON etl.snapshot_signatures TO PUBLIC;
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

REVOKE ALL ON etl.pipelines, etl.runs, etl.batches, etl.dead_letters, etl.checks,
    etl.check_results, etl.run_totals, etl.check_totals FROM PUBLIC;
GRANT SELECT ON etl.pipelines, etl.runs, etl.batches, etl.dead_letters, etl.checks,
    etl.check_results, etl.run_totals, etl.check_totals TO PUBLIC;

-- Dead letters, runs, batches and check results may hold personal data
-- (source rows; error messages quote the values that failed, e.g. invalid
-- input syntax for type integer: "123-45-6789"; check results sample keys
-- and values): each role sees those of the pipelines whose owner's
-- privileges it has (superusers and the extension owner see all).  The
-- functions write them as the extension owner, the table owner, which row
-- level security does not restrict.  Definitions (etl.pipelines,
-- etl.checks) and counts (etl.run_totals, etl.status, the metrics) stay
-- readable by all.
ALTER TABLE etl.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY dead_letters_of_owner ON etl.dead_letters FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) dead_letters.pipeline_id),
        'USAGE'));
ALTER TABLE etl.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY runs_of_owner ON etl.runs FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) runs.pipeline_id),
        'USAGE'));
ALTER TABLE etl.batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY batches_of_owner ON etl.batches FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) batches.pipeline_id),
        'USAGE'));
ALTER TABLE etl.check_results ENABLE ROW LEVEL SECURITY;
CREATE POLICY check_results_of_owner ON etl.check_results FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) check_results.pipeline_id),
        'USAGE'));

CREATE TYPE etl.run_result AS (
    run_id          bigint,
    pipeline        text,
    status          text,
    rows_extracted  bigint,
    rows_inserted   bigint,
    rows_updated    bigint,
    rows_deleted    bigint,
    rows_unchanged  bigint,
    rows_rejected   bigint,
    watermark_from  text,
    watermark_to    text,
    attempts        integer,
    started_at      timestamptz,
    duration        interval
);
COMMENT ON TYPE etl.run_result IS 'what one etl_run returns';

-- Pipelines -----------------------------------------------------------------

CREATE FUNCTION etl_create_pipeline(
    name             text,
    source           text,
    target           text,
    key              text[]   DEFAULT NULL,
    mode             text     DEFAULT 'timestamp',
    watermark_column text     DEFAULT NULL,
    overlap          interval DEFAULT '0',
    transform        text     DEFAULT NULL,
    load             text     DEFAULT 'merge',
    batch_size       bigint   DEFAULT NULL,
    error_threshold  numeric  DEFAULT 10,
    max_attempts     integer  DEFAULT 3,
    retry_policy     text     DEFAULT 'exponential_jitter',
    retry_base_delay interval DEFAULT '1 second',
    retry_max_delay  interval DEFAULT '5 minutes',
    on_schema_change text     DEFAULT 'fail',
    options          jsonb    DEFAULT '{}',
    alert_after_failures integer DEFAULT 1)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_create_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_create_pipeline(text, text, text, text[], text, text, interval, text, text, bigint, numeric, integer, text, interval, interval, text, jsonb, integer) IS
    'define a pipeline after validating everything; returns its id';

CREATE FUNCTION etl_alter_pipeline(
    name             text,
    source           text     DEFAULT NULL,
    target           text     DEFAULT NULL,
    key              text[]   DEFAULT NULL,
    mode             text     DEFAULT NULL,
    watermark_column text     DEFAULT NULL,
    overlap          interval DEFAULT NULL,
    transform        text     DEFAULT NULL,
    load             text     DEFAULT NULL,
    batch_size       bigint   DEFAULT NULL,
    error_threshold  numeric  DEFAULT NULL,
    max_attempts     integer  DEFAULT NULL,
    retry_policy     text     DEFAULT NULL,
    retry_base_delay interval DEFAULT NULL,
    retry_max_delay  interval DEFAULT NULL,
    on_schema_change text     DEFAULT NULL,
    options          jsonb    DEFAULT NULL,
    alert_after_failures integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_alter_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_alter_pipeline(text, text, text, text[], text, text, interval, text, text, bigint, numeric, integer, text, interval, interval, text, jsonb, integer) IS
    'change a pipeline (NULL = unchanged; transform => '''' restores the default transform); the whole definition is validated again';

-- the same with force: a change of mode or watermark column resets the
-- watermark of a pipeline that appends without a key only when forced (its
-- rows would be loaded again).  force comes second and has no default, so
-- that calls without it keep resolving to the function above; pass it by
-- name: etl_alter_pipeline('log', mode => 'serial', ..., force => true)
CREATE FUNCTION etl_alter_pipeline(
    name             text,
    force            boolean,
    source           text     DEFAULT NULL,
    target           text     DEFAULT NULL,
    key              text[]   DEFAULT NULL,
    mode             text     DEFAULT NULL,
    watermark_column text     DEFAULT NULL,
    overlap          interval DEFAULT NULL,
    transform        text     DEFAULT NULL,
    load             text     DEFAULT NULL,
    batch_size       bigint   DEFAULT NULL,
    error_threshold  numeric  DEFAULT NULL,
    max_attempts     integer  DEFAULT NULL,
    retry_policy     text     DEFAULT NULL,
    retry_base_delay interval DEFAULT NULL,
    retry_max_delay  interval DEFAULT NULL,
    on_schema_change text     DEFAULT NULL,
    options          jsonb    DEFAULT NULL,
    alert_after_failures integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_alter_pipeline_force'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_alter_pipeline(text, boolean, text, text, text[], text, text, interval, text, text, bigint, numeric, integer, text, interval, interval, text, jsonb, integer) IS
    'change a pipeline; force => true also resets the watermark of a pipeline that appends without a key (its rows are loaded again, twice)';

CREATE FUNCTION etl_drop_pipeline(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_drop_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_drop_pipeline(text) IS
    'drop a pipeline with its runs, batches and dead letters, and remove its pg_cron job';

CREATE FUNCTION etl_reset_watermark(name text, value text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_reset_watermark'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_reset_watermark(text, text) IS
    'set the watermark (validated for the watermark column''s type); NULL starts again from the beginning';

-- the same with force: a pipeline that appends without a key reloads rows
-- it has loaded only when forced (a separate function, so that calls with
-- one or two arguments keep resolving to the one above)
CREATE FUNCTION etl_reset_watermark(name text, value text, force boolean)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_reset_watermark'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_reset_watermark(text, text, boolean) IS
    'set the watermark; force => true also for a pipeline that appends without a key (its rows past the new watermark are loaded again, twice)';

-- Running -------------------------------------------------------------------

CREATE FUNCTION etl_run(pipeline text)
RETURNS etl.run_result
AS 'MODULE_PATHNAME', 'etl_run'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_run(text) IS
    'run one increment of a pipeline atomically in the caller''s transaction';

CREATE FUNCTION etl_row_hash(VARIADIC "any")
RETURNS bytea
AS 'MODULE_PATHNAME', 'etl_row_hash'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION etl_row_hash("any") IS
    'stable, NULL-safe, order-sensitive 128-bit signature of its arguments (SipHash-2-4 over a length-prefixed encoding)';

-- etl_null_key(key): raises 23502 for a batch row whose key has a NULL
-- part; the generated load statements call it for such rows only, which
-- then become dead letters
CREATE FUNCTION etl_internal.etl_null_key(key text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_null_key'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION etl_internal.etl_null_key(text) IS
    'raises not_null_violation for a batch row whose key is NULL (called by the load statements of etl_run)';

-- Failures ------------------------------------------------------------------

CREATE FUNCTION etl_error_class(sqlstate text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_error_class_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION etl_error_class(text) IS
    'the class etl_ext gives an error code: transient (retried), recoverable (dead letter) or fatal';

CREATE FUNCTION etl_retry_delay(pipeline text, failed_attempts integer)
RETURNS interval
AS 'MODULE_PATHNAME', 'etl_retry_delay'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_retry_delay(text, integer) IS
    'the pause a run of the pipeline takes after that many failed attempts (one draw, with jitter)';

CREATE FUNCTION etl_retry_dead_letters(pipeline text,
    OUT retried bigint, OUT resolved bigint, OUT still_pending bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'etl_retry_dead_letters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_retry_dead_letters(text) IS
    'replay the pending dead letters of a pipeline through its current transform and load';

CREATE FUNCTION etl_resolve_dead_letter(id bigint, status text, resolution text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_resolve_dead_letter'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_resolve_dead_letter(bigint, text, text) IS
    'close a dead letter by hand: resolved or ignored (pending reopens it)';

-- Quality checks --------------------------------------------------------------

CREATE FUNCTION etl_add_check(
    pipeline    text,
    kind        text,
    column_name text  DEFAULT NULL,
    params      jsonb DEFAULT '{}',
    severity    text  DEFAULT 'critical',
    name        text  DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_add_check'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_add_check(text, text, text, jsonb, text, text) IS
    'add a quality check run on every batch before it loads; returns its name';

CREATE FUNCTION etl_drop_check(pipeline text, name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_drop_check'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_drop_check(text, text) IS 'drop a quality check of a pipeline';

-- etl_dup_count(value): rows whose value an earlier row had (an upper
-- bound: values are compared by 64-bit hash), parallel-safe, for the unique
-- check of the one aggregate pass; NULL (unknown) when the distinct values
-- would need more than work_mem
CREATE FUNCTION etl_internal.etl_dup_trans(internal, anyelement) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_dup_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_dup_final(internal) RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_dup_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_dup_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_dup_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_dup_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'etl_dup_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_dup_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_dup_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE AGGREGATE etl_internal.etl_dup_count(anyelement) (
    SFUNC = etl_internal.etl_dup_trans, STYPE = internal, FINALFUNC = etl_internal.etl_dup_final,
    COMBINEFUNC = etl_internal.etl_dup_combine, SERIALFUNC = etl_internal.etl_dup_serial,
    DESERIALFUNC = etl_internal.etl_dup_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE etl_internal.etl_dup_count(anyelement) IS
    'rows whose value an earlier row had, compared by 64-bit hash (never too few; recount exactly when not zero); NULL when the distinct values need more than work_mem';

-- etl_zstats(value): {n, mean, stddev_samp, min, max} of the finite values
-- in one aggregate, for the z-score check (its value converted once per row)
CREATE FUNCTION etl_internal.etl_zstats_trans(internal, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_zstats_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_zstats_final(internal) RETURNS float8[]
AS 'MODULE_PATHNAME', 'etl_zstats_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_zstats_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_zstats_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_zstats_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'etl_zstats_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION etl_internal.etl_zstats_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_zstats_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE AGGREGATE etl_internal.etl_zstats(float8) (
    SFUNC = etl_internal.etl_zstats_trans, STYPE = internal, FINALFUNC = etl_internal.etl_zstats_final,
    COMBINEFUNC = etl_internal.etl_zstats_combine, SERIALFUNC = etl_internal.etl_zstats_serial,
    DESERIALFUNC = etl_internal.etl_zstats_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE etl_internal.etl_zstats(float8) IS
    '{n, mean, stddev_samp, min, max} of the finite values (NaN and Infinity left out), as avg() and stddev_samp() compute them';

-- etl_not_in(value, ref, ref_column): value is not among the values of
-- ref's column, read once per process into a set; the foreign key check of
-- an integer column over a small referenced table
CREATE FUNCTION etl_internal.etl_not_in(value int8, ref regclass, ref_column text) RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_not_in' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION etl_internal.etl_not_in(int8, regclass, text) IS
    'value is not NULL and not among the values of ref.ref_column (read on the first call of each process, as the current user)';

CREATE FUNCTION etl_check_sql(pipeline text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_check_sql'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_check_sql(text) IS
    'the one aggregate query that evaluates the pipeline''s checks over a batch';

-- Scheduling (pg_cron) -------------------------------------------------------

/*
 * A pipeline's pg_cron job is named etl:<pipeline>, belongs to the pipeline's
 * owner (it runs as the owner) and runs SELECT etl_run('<pipeline>') in the
 * pipeline's database.  pg_cron is optional: the extension installs without
 * it, and these functions fail with a hint when it is missing.  They work in
 * the database named by cron.database_name, where pg_cron's functions are.
 */
CREATE FUNCTION etl_schedule(pipeline text, cron_expression text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_schedule'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_schedule(text, text) IS
    'create or replace the pg_cron job etl:<pipeline> that runs SELECT etl_run(''<pipeline>'') as the pipeline''s owner on the cron schedule given; returns the job id. Works in the database named by cron.database_name; 55000 without pg_cron, 0A000 (with the pg_cron call to use instead) in other databases';

CREATE FUNCTION etl_unschedule(pipeline text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_unschedule'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_unschedule(text) IS
    'remove the pg_cron job of a pipeline; returns whether there was one';

CREATE FUNCTION etl_internal.etl_schedule_of(pipeline text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_schedule_of'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_schedule_of(text) IS
    'the schedule of a pipeline''s active pg_cron job (etl.status.schedule); NULL when not scheduled, without pg_cron, and outside the database named by cron.database_name';

CREATE FUNCTION etl_internal.etl_schedule_elsewhere(pipeline text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_schedule_elsewhere'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_schedule_elsewhere(text) IS
    'where a pipeline''s pg_cron job runs (host=... port=... dbname=...) when that is another host, port or database than this server''s (a restored dump): etl.status.schedule_elsewhere; NULL when it runs here or cannot be read';

-- Observing -----------------------------------------------------------------

CREATE FUNCTION etl_internal.etl_lag(pipeline text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_lag'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lag(text) IS
    'distance from the watermark to the newest source row (interval or number, as text); NULL when unknown or not readable';

CREATE FUNCTION etl_internal.etl_unrecorded_failures()
RETURNS TABLE (pipeline_id bigint, run_id bigint, failed_at timestamptz,
               sqlstate text, error text)
AS 'MODULE_PATHNAME', 'etl_unrecorded_failures'
LANGUAGE C STABLE ROWS 10;
COMMENT ON FUNCTION etl_internal.etl_unrecorded_failures() IS
    'failed runs whose record no background worker could write yet: kept in files of the data directory until the next run of the pipeline records them (error shown to those who may read the runs)';

CREATE FUNCTION etl_internal.etl_schedules()
RETURNS TABLE (pipeline_id bigint, schedule text, elsewhere text)
AS 'MODULE_PATHNAME', 'etl_schedules'
LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION etl_internal.etl_schedules() IS
    'what etl_schedule_of() and etl_schedule_elsewhere() give for every pipeline with a pg_cron job, in one query (etl.status.schedule, schedule_elsewhere)';

-- One row per pipeline, read from etl.run_totals (its last success and
-- failure, its failures in a row) rather than from the history: its cost
-- grows with the number of pipelines, not with the runs recorded (JIT
-- compilation, which the planner chooses by estimated cost, stays out of
-- it).  The lag is read per row (fenced: see etl_lag); the schedules in
-- one query.
CREATE VIEW etl.status AS
WITH unrecorded AS MATERIALIZED (
    SELECT * FROM etl_internal.etl_unrecorded_failures()
)
SELECT p.name AS pipeline,
       p.mode,
       p.load,
       p.watermark,
       etl_internal.etl_lag(p.name) AS lag,
       CASE WHEN u.last_run_id OPERATOR(pg_catalog.>)
                 GREATEST(s.last_run_id, f.last_run_id, 0)
              OR f.last_run_id OPERATOR(pg_catalog.>) COALESCE(s.last_run_id, 0)
            THEN 'failed'
            WHEN s.last_run_id IS NOT NULL THEN 'succeeded' END AS last_status,
       -- the error may quote data: only for those who may read the runs
       CASE WHEN NOT pg_catalog.pg_has_role(p.owner, 'USAGE') THEN NULL
            WHEN u.last_run_id OPERATOR(pg_catalog.>)
                 GREATEST(s.last_run_id, f.last_run_id, 0)
            THEN u.last_error
            WHEN f.last_run_id OPERATOR(pg_catalog.>) COALESCE(s.last_run_id, 0)
            THEN (SELECT r.error FROM etl.runs r
                   WHERE r.run_id OPERATOR(pg_catalog.=) f.last_run_id) END
           AS last_error,
       s.last_finished_at AS last_success_at,
       CASE WHEN f.streak_after OPERATOR(pg_catalog.=) COALESCE(s.last_run_id, 0)
            THEN f.streak ELSE 0 END
           OPERATOR(pg_catalog.+) u.since_success AS consecutive_failures,
       (SELECT pg_catalog.count(*)
          FROM etl.dead_letters d
         WHERE d.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
           AND d.status OPERATOR(pg_catalog.=) 'pending'
       ) AS pending_dead_letters,
       sch.schedule,
       sch.elsewhere AS schedule_elsewhere,
       u.n AS unrecorded_failures
  FROM etl.pipelines p
  LEFT JOIN etl.run_totals s
         ON s.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
        AND s.status OPERATOR(pg_catalog.=) 'succeeded'
  LEFT JOIN etl.run_totals f
         ON f.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
        AND f.status OPERATOR(pg_catalog.=) 'failed'
  LEFT JOIN etl_internal.etl_schedules() sch
         ON sch.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
  CROSS JOIN LATERAL (
        SELECT pg_catalog.count(*) AS n,
               pg_catalog.count(*) FILTER (
                   WHERE x.run_id OPERATOR(pg_catalog.>) COALESCE(s.last_run_id, 0))
                   AS since_success,
               pg_catalog.max(x.run_id) AS last_run_id,
               (pg_catalog.array_agg(x.error ORDER BY x.run_id DESC))[1] AS last_error
          FROM unrecorded x
         WHERE x.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id) u;
COMMENT ON VIEW etl.status IS 'one row per pipeline: watermark, lag, last outcome, failures, dead letters, schedule, failures whose record waits to be written';
GRANT SELECT ON etl.status TO PUBLIC;

-- Metrics ---------------------------------------------------------------------

CREATE FUNCTION etl_metric_rows()
RETURNS TABLE (metric text, type text, help text, labels jsonb, value double precision)
AS 'MODULE_PATHNAME', 'etl_metric_rows'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_metric_rows() IS
    'the samples of etl_metrics(), one row each (labels as jsonb; histogram rows carry .series)';

CREATE FUNCTION etl_metrics(format text DEFAULT 'prometheus')
RETURNS text
AS 'MODULE_PATHNAME', 'etl_metrics'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_metrics(text) IS
    'metrics of every pipeline in the Prometheus text exposition format 0.0.4, or as JSON';

-- Lineage -----------------------------------------------------------------------

CREATE FUNCTION etl_internal.etl_lineage_columns(pipeline text,
    OUT target_column text, OUT source_columns text[], OUT transformation text,
    OUT input_fields jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_lineage_columns'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lineage_columns(text) IS
    'column lineage of a pipeline''s transform, read from its query tree';

CREATE FUNCTION etl_internal.etl_lineage_relations(pipeline text)
RETURNS TABLE (relation text, kind text)
AS 'MODULE_PATHNAME', 'etl_lineage_relations'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lineage_relations(text) IS
    'relations other than its source that a pipeline''s transform reads';

CREATE FUNCTION etl_lineage(relation regclass DEFAULT NULL)
RETURNS TABLE (source text, pipeline text, target text, target_column text,
               source_columns text[], transformation text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT p.source, p.name, p.target, l.target_column, l.source_columns, l.transformation
  FROM etl.pipelines p, LATERAL etl_internal.etl_lineage_columns(p.name) l
 WHERE relation IS NULL
    OR to_regclass(p.source) = relation OR to_regclass(p.target) = relation
 ORDER BY p.name, l.target_column
$fn$;
COMMENT ON FUNCTION etl_lineage(regclass) IS
    'column lineage of the pipelines reading or writing a relation (all pipelines when NULL)';

CREATE FUNCTION etl_internal.etl_lineage_edges()
RETURNS TABLE (from_relation text, to_relation text, pipeline text, via text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT p.source, p.target, p.name, 'source'::text FROM etl.pipelines p
UNION
SELECT r.relation, p.target, p.name, 'join'::text
  FROM etl.pipelines p, LATERAL etl_internal.etl_lineage_relations(p.name) AS r
$fn$;
COMMENT ON FUNCTION etl_internal.etl_lineage_edges() IS
    'the relation graph of all pipelines: each source and joined relation to its target';

CREATE FUNCTION etl_lineage_upstream(relation regclass)
RETURNS TABLE (relation text, depth integer, pipeline text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
WITH RECURSIVE edges AS (
    SELECT e.*, to_regclass(e.from_relation) AS from_oid, to_regclass(e.to_relation) AS to_oid
      FROM etl_internal.etl_lineage_edges() e
), up(oid, rel, depth, pipeline) AS (
    SELECT e.from_oid, e.from_relation, 1, e.pipeline FROM edges e WHERE e.to_oid = $1
    UNION
    SELECT e.from_oid, e.from_relation, up.depth + 1, e.pipeline
      FROM up JOIN edges e ON e.to_oid = up.oid
     WHERE up.depth < 64
)
SELECT DISTINCT ON (rel) rel, depth, pipeline FROM up ORDER BY rel, depth, pipeline
$fn$;
COMMENT ON FUNCTION etl_lineage_upstream(regclass) IS
    'every relation a relation derives from through pipelines, recursively, with its distance';

CREATE FUNCTION etl_lineage_dot()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT E'digraph etl_lineage {\n  rankdir=LR;\n  node [shape=box, fontname="Helvetica"];\n  edge [fontname="Helvetica", fontsize=10];\n'
       || COALESCE(string_agg(format(E'  "%s" -> "%s" [label="%s"%s];',
                                     replace(replace(from_relation, '\', '\\'), '"', '\"'),
                                     replace(replace(to_relation, '\', '\\'), '"', '\"'),
                                     replace(replace(pipeline, '\', '\\'), '"', '\"'),
                                     CASE WHEN via = 'join' THEN ', style=dashed' ELSE '' END),
                              E'\n' ORDER BY pipeline, via DESC, from_relation) || E'\n', '')
       || '}' || E'\n'
  FROM etl_internal.etl_lineage_edges()
$fn$;
COMMENT ON FUNCTION etl_lineage_dot() IS
    'the lineage of all pipelines as a Graphviz DOT graph (joined relations dashed)';

-- OpenLineage ------------------------------------------------------------------

CREATE FUNCTION etl_internal.etl_lineage_namespace()
RETURNS text
AS 'MODULE_PATHNAME', 'etl_lineage_namespace'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lineage_namespace() IS
    'the OpenLineage namespace of this server: etl.lineage_namespace, or postgres://host:port';

CREATE FUNCTION etl_internal.etl_openlineage_dataset(relation regclass)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT jsonb_build_object(
         'namespace', etl_internal.etl_lineage_namespace(),
         'name', current_database() || '.' || n.nspname || '.' || c.relname,
         'facets', jsonb_build_object('schema', jsonb_build_object(
             '_producer', 'https://github.com/etl-ext/etl_ext/tree/v1.0',
             '_schemaURL', 'https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet',
             'fields', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                          'name', a.attname,
                                          'type', format_type(a.atttypid, a.atttypmod))
                                        ORDER BY a.attnum)
                                   FROM pg_attribute a
                                  WHERE a.attrelid = c.oid AND a.attnum > 0
                                    AND NOT a.attisdropped), '[]'))))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = relation
$fn$;
COMMENT ON FUNCTION etl_internal.etl_openlineage_dataset(regclass) IS
    'a relation as an OpenLineage dataset: namespace, db.schema.table name, schema facet';

CREATE FUNCTION etl_openlineage(run_id bigint, event_type text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    producer CONSTANT text := 'https://github.com/etl-ext/etl_ext/tree/v1.0';
    facets CONSTANT text := 'https://openlineage.io/spec/facets/';
    ns text := etl_internal.etl_lineage_namespace();
    r etl.runs;
    p etl.pipelines;
    et text;
    at timestamptz;
    h text;
    run_facets jsonb := '{}';
    job_facets jsonb := '{}';
    src jsonb;
    tgt jsonb;
    joined jsonb := '[]';
    lineage jsonb := '{}';
    checks jsonb;
BEGIN
    SELECT * INTO r FROM etl.runs x WHERE x.run_id = etl_openlineage.run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', etl_openlineage.run_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT run_id, pipeline, status FROM etl.runs lists the runs.';
    END IF;
    SELECT * INTO p FROM etl.pipelines x WHERE x.pipeline_id = r.pipeline_id;

    et := COALESCE(upper(event_type),
                   CASE r.status WHEN 'succeeded' THEN 'COMPLETE' WHEN 'failed' THEN 'FAIL'
                                 WHEN 'skipped' THEN 'ABORT' ELSE 'RUNNING' END);
    IF et NOT IN ('START', 'RUNNING', 'COMPLETE', 'ABORT', 'FAIL', 'OTHER') THEN
        RAISE EXCEPTION 'invalid OpenLineage event type "%"', event_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are: START, RUNNING, COMPLETE, ABORT, FAIL, OTHER; NULL follows the run''s status.';
    END IF;
    at := CASE WHEN et = 'START' THEN r.started_at
               ELSE COALESCE(r.finished_at, r.started_at + r.duration, r.started_at) END;

    -- a stable UUID (version 8) per server, database, pipeline and run
    h := md5(ns || '/' || current_database() || '/' || p.pipeline_id || '/' ||
             p.created_at::text || '/' || r.run_id);
    IF r.status = 'failed' AND et <> 'START' THEN
        run_facets := jsonb_build_object('errorMessage', jsonb_build_object(
            '_producer', producer,
            '_schemaURL', facets || '1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet',
            'message', COALESCE(r.error, 'failed') ||
                       COALESCE(' (SQLSTATE ' || r.sqlstate || ')', ''),
            'programmingLanguage', 'SQL'));
    END IF;
    IF p.transform IS NOT NULL THEN
        job_facets := jsonb_build_object('sql', jsonb_build_object(
            '_producer', producer,
            '_schemaURL', facets || '1-0-1/SQLJobFacet.json#/$defs/SQLJobFacet',
            'query', p.transform));
    END IF;

    src := etl_internal.etl_openlineage_dataset(to_regclass(p.source));
    tgt := etl_internal.etl_openlineage_dataset(to_regclass(p.target));

    -- column lineage and joined relations, from the current definition: a
    -- pipeline that no longer analyses gives none (etl_lineage_columns says
    -- why in a WARNING), and the event has no columnLineage facet
    BEGIN
        SELECT COALESCE(jsonb_object_agg(l.target_column, jsonb_build_object(
                   'inputFields', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                                       'namespace', ns,
                                       'name', current_database() || '.' || (f->>'schema') || '.' || (f->>'table'),
                                       'field', f->>'field',
                                       'transformations', jsonb_build_array(jsonb_build_object(
                                           'type', 'DIRECT',
                                           'subtype', CASE l.transformation WHEN 'DIRECT' THEN 'IDENTITY'
                                                                            ELSE 'TRANSFORMATION' END)))), '[]')
                                     FROM jsonb_array_elements(l.input_fields) f))), '{}')
          INTO lineage
          FROM etl_internal.etl_lineage_columns(p.name) l;
        IF lineage = '{}' THEN
            lineage := NULL;
        ELSE
            SELECT COALESCE(jsonb_agg(etl_internal.etl_openlineage_dataset(to_regclass(x.relation))
                                      ORDER BY x.relation), '[]')
              INTO joined
              FROM etl_internal.etl_lineage_relations(p.name) x;
        END IF;
    END;

    IF src IS NOT NULL AND et <> 'START' THEN
        SELECT jsonb_build_object(
                 'dataQualityMetrics', jsonb_build_object(
                     '_producer', producer,
                     '_schemaURL', facets || '1-0-2/DataQualityMetricsInputDatasetFacet.json#/$defs/DataQualityMetricsInputDatasetFacet',
                     'rowCount', r.rows_extracted,
                     'columnMetrics', COALESCE(jsonb_object_agg(c.column_name,
                                          jsonb_build_object('nullCount', c.failing_rows))
                                          FILTER (WHERE c.kind = 'not_null' AND c.column_name IS NOT NULL),
                                          '{}')),
                 'dataQualityAssertions', jsonb_build_object(
                     '_producer', producer,
                     '_schemaURL', facets || '1-0-1/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet',
                     'assertions', COALESCE(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                       'assertion', c.kind, 'success', c.passed,
                                       'column', c.column_name)) ORDER BY c.result_id), '[]')))
          INTO checks
          FROM etl.check_results c
         WHERE c.run_id = r.run_id;
        src := src || jsonb_build_object('inputFacets', checks);
    END IF;
    IF tgt IS NOT NULL THEN
        IF lineage IS NOT NULL THEN
            tgt := jsonb_set(tgt, '{facets,columnLineage}', jsonb_build_object(
                       '_producer', producer,
                       '_schemaURL', facets || '1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet',
                       'fields', lineage));
        END IF;
        IF et <> 'START' THEN
            tgt := tgt || jsonb_build_object('outputFacets', jsonb_build_object(
                       'outputStatistics', jsonb_build_object(
                           '_producer', producer,
                           '_schemaURL', facets || '1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet',
                           'rowCount', r.rows_inserted + r.rows_updated + r.rows_deleted)));
        END IF;
    END IF;

    RETURN jsonb_build_object(
        'eventType', et,
        'eventTime', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'producer', producer,
        'schemaURL', 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent',
        'run', jsonb_build_object(
            'runId', substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-8' || substr(h, 14, 3) || '-' ||
                     substr('89ab', get_byte(decode(substr(h, 17, 2), 'hex'), 0) % 4 + 1, 1) ||
                     substr(h, 18, 3) || '-' || substr(h, 21, 12),
            'facets', run_facets),
        'job', jsonb_build_object('namespace', ns, 'name', current_database() || '.' || p.name,
                                  'facets', job_facets),
        'inputs', (CASE WHEN src IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(src) END) || joined,
        'outputs', CASE WHEN tgt IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(tgt) END);
END
$fn$;
COMMENT ON FUNCTION etl_openlineage(bigint, text) IS
    'an OpenLineage 2-0-2 RunEvent for a run (COMPLETE, FAIL or ABORT by its status, or the event_type given)';

-- Change tracking (mode xid) --------------------------------------------------

CREATE FUNCTION etl_internal.etl_track_changes_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'etl_track_changes_trigger'
LANGUAGE C;
COMMENT ON FUNCTION etl_internal.etl_track_changes_trigger() IS
    'BEFORE INSERT OR UPDATE row trigger of etl_track_changes: sets _etl_xid to the writing transaction, whatever the row brings';

CREATE FUNCTION etl_track_changes(source regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_track_changes'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION etl_track_changes(regclass) IS
    'prepare a table for mode xid: column _etl_xid, its insert and update trigger and index (owner only; idempotent)';

-- A table attached as a partition of a tracked table (or made its child by
-- INHERIT) brings rows stamped by their old writers: refused unless they
-- carry the attaching transaction's id.  ALWAYS: also in sessions with
-- session_replication_role = replica.
CREATE FUNCTION etl_internal.etl_track_attach()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'etl_track_attach'
LANGUAGE C;
COMMENT ON FUNCTION etl_internal.etl_track_attach() IS
    'event trigger: refuses ATTACH PARTITION and INHERIT into a tracked table of rows stamped by other transactions';
CREATE EVENT TRIGGER etl_track_attach ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION etl_internal.etl_track_attach();
ALTER EVENT TRIGGER etl_track_attach ENABLE ALWAYS;

CREATE FUNCTION etl_rebase_xid(source regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_rebase_xid'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_rebase_xid(regclass) IS
    'after a restore into another cluster: re-stamp a source and rebase its xid pipelines so that each next run loads what was not loaded before the dump (source owner)';

-- Plans ------------------------------------------------------------------------

CREATE FUNCTION etl_explain(pipeline text)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'etl_explain'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_explain(text) IS
    'the plans of the statements the next run of a pipeline would execute (nothing is executed)';

-- Long work in steps: catch-up and backfill -------------------------------------

CREATE FUNCTION etl_internal.etl_run_step(pipeline text, kind text, range_from text DEFAULT NULL,
                             range_to text DEFAULT NULL, batch_id bigint DEFAULT NULL)
RETURNS etl.run_result
AS 'MODULE_PATHNAME', 'etl_run_step'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_run_step(text, text, text, text, bigint) IS
    'one step of etl_catch_up or etl_backfill: a run recorded as kind, completing its batch row; with a range, the watermark stays';

CREATE FUNCTION etl_internal.etl_steps_check(procedure text, pipeline text,
                                           force boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'etl_steps_check'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_steps_check(text, text, boolean) IS
    'what etl_catch_up and etl_backfill check first: no transaction block (25001), the pipeline and its owner, a backfill''s mode and keyless append (unless force)';

CREATE FUNCTION etl_internal.etl_batch_start(pipeline text, kind text, range_from text DEFAULT NULL,
                                range_to text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_batch_start'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_batch_start(text, text, text, text) IS
    'write the started row of a step in the batch log (commit it before the step) and return its id';

CREATE FUNCTION etl_internal.etl_batch_recover(pipeline text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_batch_recover'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_batch_recover(text) IS
    'mark the started or staged batch rows a crash left as abandoned (their range is redone); returns how many';

CREATE FUNCTION etl_internal.etl_backfill_steps(pipeline text, from_value text, to_value text, step text)
RETURNS TABLE (step_no integer, range_from text, range_to text)
AS 'MODULE_PATHNAME', 'etl_backfill_steps'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_backfill_steps(text, text, text, text) IS
    'the ranges [from, from + step) ... up to to_value of a backfill, in the watermark column''s type';

CREATE FUNCTION etl_internal.etl_pending_rows(pipeline text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_pending_rows'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_pending_rows(text) IS
    'the source rows past the watermark (NULL for modes without a watermark column)';

-- The procedures commit between steps, so they run as CALL outside a
-- transaction block, and carry no SET clause (which would forbid COMMIT):
-- they run under the caller's search_path, so every type, function and
-- operator in them is schema-qualified (plpgsql declarations included), and
-- none of the constructs that look an operator up by name is used.
CREATE PROCEDURE etl_catch_up(pipeline text)
LANGUAGE plpgsql
AS $fn$
DECLARE
    total   pg_catalog.int8;
    bsize   pg_catalog.int8;
    nsteps  pg_catalog.int8;
    step_no pg_catalog.int4 := 0;
    done    pg_catalog.int8 := 0;
    fresh   pg_catalog.int8;
    t0      pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    secs    pg_catalog.float8;
    b       pg_catalog.int8;
    r       etl.run_result;
BEGIN
    PERFORM etl_internal.etl_steps_check('etl_catch_up', etl_catch_up.pipeline);
    PERFORM etl_internal.etl_batch_recover(etl_catch_up.pipeline);
    COMMIT;
    total := etl_internal.etl_pending_rows(etl_catch_up.pipeline);
    SELECT p.batch_size INTO bsize FROM etl.pipelines p
     WHERE p.name OPERATOR(pg_catalog.=) etl_catch_up.pipeline;
    nsteps := CASE WHEN bsize IS NULL OR total IS NULL THEN 1
                   ELSE GREATEST(1, pg_catalog.ceil(total::pg_catalog.numeric
                                                  OPERATOR(pg_catalog./) bsize)::pg_catalog.int8) END;
    LOOP
        b := etl_internal.etl_batch_start(etl_catch_up.pipeline, 'catch_up');
        COMMIT;
        r := etl_internal.etl_run_step(etl_catch_up.pipeline, 'catch_up', NULL, NULL, b);
        COMMIT;
        IF r.status OPERATOR(pg_catalog.=) 'skipped' THEN
            RAISE NOTICE 'catch-up of "%" stopped: another session is running it', etl_catch_up.pipeline;
            RETURN;
        END IF;
        -- the rows the step took past the watermark, in its batch row (an
        -- overlap also re-reads rows before it)
        SELECT bt.rows INTO fresh FROM etl.batches bt
         WHERE bt.batch_id OPERATOR(pg_catalog.=) b;
        fresh := COALESCE(fresh, 0);
        step_no := step_no OPERATOR(pg_catalog.+) 1;
        done := done OPERATOR(pg_catalog.+) fresh;
        secs := GREATEST(pg_catalog.date_part('epoch',
                    pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) t0), 0.001);
        RAISE NOTICE 'catch-up of "%": step % of %, % rows (% of %), % rows/s, ETA %',
            etl_catch_up.pipeline, step_no, GREATEST(nsteps, step_no),
            fresh, done, COALESCE(total::pg_catalog.text, '?'),
            pg_catalog.round((done OPERATOR(pg_catalog./) secs)::pg_catalog.numeric),
            CASE WHEN total IS NULL OR done OPERATOR(pg_catalog.>=) total THEN '00:00:00'
                 ELSE pg_catalog.to_char(pg_catalog.make_interval(secs =>
                          (total OPERATOR(pg_catalog.-) done) OPERATOR(pg_catalog.*)
                          secs OPERATOR(pg_catalog./) GREATEST(done, 1)),
                          'HH24:MI:SS') END;
        -- fewer rows than batch_size past the watermark: the step reached
        -- the safe bound; a step that left the watermark where it was
        -- would only be repeated
        EXIT WHEN bsize IS NULL OR fresh OPERATOR(pg_catalog.<) bsize
               OR r.watermark_to OPERATOR(pg_catalog.=) r.watermark_from
               OR (r.watermark_to IS NULL AND r.watermark_from IS NULL);
    END LOOP;
END
$fn$;
COMMENT ON PROCEDURE etl_catch_up(text) IS
    'run increments of batch_size rows, committing after each, until the pipeline is caught up';

CREATE PROCEDURE etl_backfill(pipeline text, from_value text, to_value text, step text,
                              force boolean DEFAULT false)
LANGUAGE plpgsql
AS $fn$
DECLARE
    s      pg_catalog.record;
    nsteps pg_catalog.int4;
    ran    pg_catalog.int4 := 0;
    done   pg_catalog.int8 := 0;
    t0     pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    secs   pg_catalog.float8;
    b      pg_catalog.int8;
    r      etl.run_result;
BEGIN
    PERFORM etl_internal.etl_steps_check('etl_backfill', etl_backfill.pipeline, force);
    PERFORM etl_internal.etl_batch_recover(etl_backfill.pipeline);
    COMMIT;
    SELECT pg_catalog.count(*) INTO nsteps
      FROM etl_internal.etl_backfill_steps(etl_backfill.pipeline, from_value, to_value, step);
    FOR s IN SELECT * FROM etl_internal.etl_backfill_steps(etl_backfill.pipeline, from_value,
                                                           to_value, step) LOOP
        IF NOT COALESCE(force, false) AND EXISTS (
            SELECT FROM etl.batches bt
             WHERE bt.pipeline OPERATOR(pg_catalog.=) etl_backfill.pipeline
               AND bt.kind OPERATOR(pg_catalog.=) 'backfill'
               AND bt.range_from OPERATOR(pg_catalog.=) s.range_from
               AND bt.range_to OPERATOR(pg_catalog.=) s.range_to
               AND bt.status OPERATOR(pg_catalog.=) 'completed') THEN
            RAISE NOTICE 'backfill of "%": step %/% [%, %) already done, skipped',
                etl_backfill.pipeline, s.step_no, nsteps, s.range_from, s.range_to;
            CONTINUE;
        END IF;
        b := etl_internal.etl_batch_start(etl_backfill.pipeline, 'backfill', s.range_from, s.range_to);
        COMMIT;
        r := etl_internal.etl_run_step(etl_backfill.pipeline, 'backfill', s.range_from, s.range_to, b);
        COMMIT;
        IF r.status OPERATOR(pg_catalog.=) 'skipped' THEN
            RAISE NOTICE 'backfill of "%" stopped: another session is running it', etl_backfill.pipeline;
            RETURN;
        END IF;
        ran := ran OPERATOR(pg_catalog.+) 1;
        done := done OPERATOR(pg_catalog.+) GREATEST(r.rows_extracted, 0);
        secs := GREATEST(pg_catalog.date_part('epoch',
                    pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) t0), 0.001);
        RAISE NOTICE 'backfill of "%": step %/% [%, %): % rows, % rows/s, ETA %',
            etl_backfill.pipeline, s.step_no, nsteps, s.range_from, s.range_to,
            r.rows_extracted,
            pg_catalog.round((done OPERATOR(pg_catalog./) secs)::pg_catalog.numeric),
            pg_catalog.to_char(pg_catalog.make_interval(secs =>
                (nsteps OPERATOR(pg_catalog.-) s.step_no) OPERATOR(pg_catalog.*)
                secs OPERATOR(pg_catalog./) ran), 'HH24:MI:SS');
    END LOOP;
END
$fn$;
COMMENT ON PROCEDURE etl_backfill(text, text, text, text, boolean) IS
    'reprocess [from_value, to_value) in steps, each its own transaction, never moving the watermark; completed steps are skipped unless force';

-- Privileges of etl_internal ---------------------------------------------------

/*
 * Nothing in etl_internal is API, but most of it is called by SQL that runs
 * with a user's rights, which is checked against the caller: EXECUTE stays
 * with PUBLIC exactly for those, and each says which caller needs it.  The
 * C functions check ownership themselves, as the API does.
 */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA etl_internal FROM PUBLIC;

-- called by the statements a run generates, which run as the pipeline owner
-- (any role; parallel workers too): the load statements, the check pass
GRANT EXECUTE ON FUNCTION etl_internal.etl_null_key(text),
    etl_internal.etl_not_in(int8, regclass, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION etl_internal.etl_dup_count(anyelement),
    etl_internal.etl_zstats(float8) TO PUBLIC;
-- (their support functions stay revoked: an aggregate's transition,
-- combine, serial and final functions are checked against the aggregate's
-- owner, and none can be called with a value of type internal anyway)

-- the BEFORE INSERT OR UPDATE trigger etl_track_changes puts on users' tables: CREATE
-- TRIGGER (also when a dump of such a table is restored) needs EXECUTE of
-- the table's owner; a trigger function cannot be called directly
GRANT EXECUTE ON FUNCTION etl_internal.etl_track_changes_trigger() TO PUBLIC;

-- called by the view etl.status (any reader) and by etl_metric_rows()
GRANT EXECUTE ON FUNCTION etl_internal.etl_lag(text), etl_internal.etl_schedules(),
    etl_internal.etl_unrecorded_failures(), etl_internal.etl_duration_buckets() TO PUBLIC;

-- called by etl_lineage(), etl_lineage_upstream(), etl_lineage_dot() and
-- etl_openlineage(), which run as their caller
GRANT EXECUTE ON FUNCTION etl_internal.etl_lineage_columns(text),
    etl_internal.etl_lineage_relations(text), etl_internal.etl_lineage_edges(),
    etl_internal.etl_lineage_namespace(), etl_internal.etl_openlineage_dataset(regclass)
    TO PUBLIC;

-- the steps of CALL etl_catch_up and CALL etl_backfill, which run as their
-- caller (a procedure that commits cannot be SECURITY DEFINER)
GRANT EXECUTE ON FUNCTION etl_internal.etl_steps_check(text, text, boolean),
    etl_internal.etl_batch_recover(text),
    etl_internal.etl_batch_start(text, text, text, text),
    etl_internal.etl_run_step(text, text, text, text, bigint),
    etl_internal.etl_backfill_steps(text, text, text, text),
    etl_internal.etl_pending_rows(text) TO PUBLIC;
