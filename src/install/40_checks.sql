/*
 * src/install/40_checks.sql -- quality checks: etl_add_check,
 * etl_drop_check, etl_check_sql, and the aggregates and helpers of
 * schema etl_internal that the one check pass over a batch calls
 * (etl_dup_count, etl_zstats, etl_not_in).
 */

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

