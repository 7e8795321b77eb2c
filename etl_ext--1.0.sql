/* etl_ext--1.0.sql — incremental ETL inside PostgreSQL */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION etl_ext" to load this file. \quit

/*
 * Where objects live: the extension's schema is pg_catalog (etl_ext.control),
 * so every etl_* function is callable unqualified under any search_path, as
 * pg_cron does.  Catalog tables and views live in the schema etl, created
 * here without IF NOT EXISTS: an installation refuses to adopt a schema or a
 * table that somebody else created first.
 *
 * Users read the catalogs; they change them only through the functions,
 * which write as the extension owner after their own ownership checks.
 */
CREATE SCHEMA etl;
COMMENT ON SCHEMA etl IS 'etl_ext catalogs: pipelines, runs, batches, dead letters, status';
GRANT USAGE ON SCHEMA etl TO PUBLIC;

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
        CHECK (on_schema_change IN ('fail', 'ignore', 'append_new_columns'))
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
        CHECK (triggered_by IN ('manual', 'schedule', 'backfill', 'catch_up')),
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
    etl.check_results FROM PUBLIC;
GRANT SELECT ON etl.pipelines, etl.runs, etl.batches, etl.dead_letters, etl.checks,
    etl.check_results TO PUBLIC;

-- dead letters may hold personal data: each role sees those of the
-- pipelines whose owner's privileges it has (superusers and the extension
-- owner see all)
ALTER TABLE etl.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY dead_letters_of_owner ON etl.dead_letters FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) dead_letters.pipeline_id),
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
    options          jsonb    DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_create_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_create_pipeline(text, text, text, text[], text, text, interval, text, text, bigint, numeric, integer, text, interval, interval, text, jsonb) IS
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
    options          jsonb    DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_alter_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_alter_pipeline(text, text, text, text[], text, text, interval, text, text, bigint, numeric, integer, text, interval, interval, text, jsonb) IS
    'change a pipeline (NULL = unchanged; transform => '''' restores the default transform); the whole definition is validated again';

CREATE FUNCTION etl_drop_pipeline(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_drop_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_drop_pipeline(text) IS
    'drop a pipeline with its runs, batches and dead letters';

CREATE FUNCTION etl_reset_watermark(name text, value text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_reset_watermark'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_reset_watermark(text, text) IS
    'set the watermark (validated for the watermark column''s type); NULL starts again from the beginning';

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
-- check of the one aggregate pass
CREATE FUNCTION etl_dup_trans(internal, anyelement) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_dup_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_dup_final(internal) RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_dup_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_dup_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_dup_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION etl_dup_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'etl_dup_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION etl_dup_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'etl_dup_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE AGGREGATE etl_dup_count(anyelement) (
    SFUNC = etl_dup_trans, STYPE = internal, FINALFUNC = etl_dup_final,
    COMBINEFUNC = etl_dup_combine, SERIALFUNC = etl_dup_serial,
    DESERIALFUNC = etl_dup_deserial, PARALLEL = SAFE);
COMMENT ON AGGREGATE etl_dup_count(anyelement) IS
    'rows whose value an earlier row had, compared by 64-bit hash (never too few; recount exactly when not zero)';

CREATE FUNCTION etl_check_sql(pipeline text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_check_sql'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_check_sql(text) IS
    'the one aggregate query that evaluates the pipeline''s checks over a batch';

-- Observing -----------------------------------------------------------------

CREATE FUNCTION etl_lag(pipeline text)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_lag'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_lag(text) IS
    'distance from the watermark to the newest source row (interval or number, as text); NULL when unknown or not readable';

CREATE FUNCTION etl_schedule_of(pipeline text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    result text;
BEGIN
    IF pg_catalog.to_regclass('cron.job') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT schedule FROM cron.job WHERE jobname = $1 LIMIT 1'
        INTO result USING 'etl:' OPERATOR(pg_catalog.||) pipeline;
    RETURN result;
EXCEPTION WHEN insufficient_privilege THEN
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION etl_schedule_of(text) IS
    'the pg_cron schedule of a pipeline (job etl:<name>), NULL when not scheduled or pg_cron is absent';

CREATE VIEW etl.status AS
SELECT p.name AS pipeline,
       p.mode,
       p.load,
       p.watermark,
       pg_catalog.etl_lag(p.name) AS lag,
       last.status AS last_status,
       last.error AS last_error,
       ok.last_success_at,
       (SELECT pg_catalog.count(*)
          FROM etl.runs f
         WHERE f.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
           AND f.status OPERATOR(pg_catalog.=) 'failed'
           AND f.run_id OPERATOR(pg_catalog.>) COALESCE(ok.run_id, 0)
       ) AS consecutive_failures,
       (SELECT pg_catalog.count(*)
          FROM etl.dead_letters d
         WHERE d.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
           AND d.status OPERATOR(pg_catalog.=) 'pending'
       ) AS pending_dead_letters,
       pg_catalog.etl_schedule_of(p.name) AS schedule
  FROM etl.pipelines p
  LEFT JOIN LATERAL (
        SELECT r.status, r.error
          FROM etl.runs r
         WHERE r.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
           AND r.status OPERATOR(pg_catalog.<>) 'skipped'
         ORDER BY r.run_id DESC
         LIMIT 1) last ON true
  LEFT JOIN LATERAL (
        SELECT r.run_id, r.started_at OPERATOR(pg_catalog.+) r.duration AS last_success_at
          FROM etl.runs r
         WHERE r.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
           AND r.status OPERATOR(pg_catalog.=) 'succeeded'
         ORDER BY r.run_id DESC
         LIMIT 1) ok ON true;
COMMENT ON VIEW etl.status IS 'one row per pipeline: watermark, lag, last outcome, failures, dead letters, schedule';
GRANT SELECT ON etl.status TO PUBLIC;
