/*
 * src/install/30_api.sql -- the type etl.run_result and the functions of
 * the API that define, run and explain pipelines and handle their
 * failures: etl_create_pipeline, etl_alter_pipeline, etl_drop_pipeline,
 * etl_reset_watermark, etl_run, etl_explain, etl_row_hash, etl_error_class,
 * etl_retry_delay, etl_retry_dead_letters, etl_resolve_dead_letter (and
 * etl_internal.etl_null_key, which the load statements call).
 */

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

-- Plans ------------------------------------------------------------------------

CREATE FUNCTION etl_explain(pipeline text)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'etl_explain'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_explain(text) IS
    'the plans of the statements the next run of a pipeline would execute (nothing is executed)';

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

