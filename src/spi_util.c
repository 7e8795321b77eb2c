/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  The only SPI wrapper of etl_ext: connect, execute with positional
 *	  arguments under a chosen snapshot, check the exact expected result
 *	  code, read values out.
 *
 *	  No other module calls SPI directly.  SQL-callable entry points call
 *	  etl_spi_connect() once and etl_spi_finish() before returning; values
 *	  read with etl_spi_datum() live until the next etl_spi_exec(), the
 *	  etl_spi_text()/etl_spi_int64() helpers copy them out.
 *
 * IDENTIFICATION
 *	  src/spi_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "spi_util.h"

/*
 * etl_args_init empties an argument list.
 */
void
etl_args_init(EtlArgs *args)
{
	args->n = 0;
}

/*
 * etl_args_add appends one argument and returns its number ($n).  The datum
 * is not copied: it must live until the statement has run.
 */
int
etl_args_add(EtlArgs *args, Oid type, Datum value, bool isnull)
{
	if (args->n >= ETL_MAX_ARGS)
		elog(ERROR, "too many arguments for one etl_ext statement");
	args->types[args->n] = type;
	args->values[args->n] = isnull ? (Datum) 0 : value;
	args->nulls[args->n] = isnull ? 'n' : ' ';
	return ++args->n;
}

/*
 * etl_args_add_text appends a text argument (NULL when value is NULL).
 */
int
etl_args_add_text(EtlArgs *args, const char *value)
{
	return etl_args_add(args, TEXTOID,
						value ? CStringGetTextDatum(value) : (Datum) 0,
						value == NULL);
}

/*
 * etl_args_add_int8 appends a bigint argument.
 */
int
etl_args_add_int8(EtlArgs *args, int64 value)
{
	return etl_args_add(args, INT8OID, Int64GetDatum(value), false);
}

/*
 * etl_spi_connect opens the SPI connection of an entry point.
 */
void
etl_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * etl_spi_finish closes it.  Memory allocated since etl_spi_connect() in
 * the SPI procedure context is released.
 */
void
etl_spi_finish(void)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

/*
 * etl_spi_exec runs one statement with its arguments and returns the number
 * of rows processed.
 *
 * snapshot: InvalidSnapshot for the usual behaviour (a new snapshot per
 * statement in READ COMMITTED), or a registered snapshot that several
 * statements of one run share; the command id is advanced either way, so the
 * statement sees everything this transaction did before.  A result code other
 * than "expected" is an internal error; errors of the statement itself
 * propagate unchanged.  The previous result set is released.
 */
uint64
etl_spi_exec(const char *sql, EtlArgs *args, int expected, Snapshot snapshot)
{
	return etl_spi_exec_opts(sql, args, expected, snapshot, 0);
}

/*
 * etl_spi_query_parallel runs a read-only query that may use a parallel
 * plan (SELECT only), otherwise as etl_spi_exec().
 */
uint64
etl_spi_query_parallel(const char *sql, EtlArgs *args, Snapshot snapshot)
{
	return etl_spi_exec_opts(sql, args, SPI_OK_SELECT, snapshot,
							 CURSOR_OPT_PARALLEL_OK);
}

/*
 * etl_spi_exec_opts is etl_spi_exec() with planner cursor options.
 */
uint64
etl_spi_exec_opts(const char *sql, EtlArgs *args, int expected,
				  Snapshot snapshot, int cursor_options)
{
	SPIPlanPtr plan;
	int rc;
	int nargs = args ? args->n : 0;

	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}

	plan = SPI_prepare_cursor(sql, nargs, args ? args->types : NULL,
							  cursor_options);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));

	rc = SPI_execute_snapshot(plan, args ? args->values : NULL,
							  args ? args->nulls : NULL, snapshot,
							  InvalidSnapshot, false, true, 0);
	SPI_freeplan(plan);

	if (rc != expected)
		elog(ERROR, "unexpected SPI result %s (expected %s) for: %s",
			 SPI_result_code_string(rc), SPI_result_code_string(expected),
			 sql);

	return SPI_processed;
}

/*
 * etl_spi_datum returns a value of the last result set, valid until the next
 * etl_spi_exec().  Rows and columns count from 0.
 */
Datum
etl_spi_datum(uint64 row, int col, bool *isnull)
{
	if (SPI_tuptable == NULL || row >= SPI_processed)
		elog(ERROR, "etl_ext: result row " UINT64_FORMAT " out of range", row);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col + 1, isnull);
}

/*
 * etl_spi_isnull tells whether a value of the last result set is NULL.
 */
bool
etl_spi_isnull(uint64 row, int col)
{
	bool isnull;

	(void) etl_spi_datum(row, col, &isnull);
	return isnull;
}

/*
 * etl_spi_coltype returns the type of a column of the last result set.
 */
Oid
etl_spi_coltype(int col)
{
	return SPI_gettypeid(SPI_tuptable->tupdesc, col + 1);
}

/*
 * etl_spi_text returns a value as text (the type's output function), copied
 * into the current memory context; NULL for SQL NULL.
 */
char *
etl_spi_text(uint64 row, int col)
{
	bool isnull;
	Datum d = etl_spi_datum(row, col, &isnull);
	Oid typoutput;
	bool varlena;

	if (isnull)
		return NULL;
	getTypeOutputInfo(etl_spi_coltype(col), &typoutput, &varlena);
	return OidOutputFunctionCall(typoutput, d);
}

/*
 * etl_spi_int64 returns an integer column (int2, int4 or int8) as int64.
 */
int64
etl_spi_int64(uint64 row, int col, int64 if_null)
{
	bool isnull;
	Datum d = etl_spi_datum(row, col, &isnull);

	if (isnull)
		return if_null;
	switch (etl_spi_coltype(col))
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
		default:
			elog(ERROR, "etl_ext: column %d is not an integer", col);
	}
	return if_null; /* keep compiler quiet */
}

/*
 * etl_spi_float8 returns a double precision column.
 */
double
etl_spi_float8(uint64 row, int col, double if_null)
{
	bool isnull;
	Datum d = etl_spi_datum(row, col, &isnull);

	if (isnull)
		return if_null;
	if (etl_spi_coltype(col) != FLOAT8OID)
		elog(ERROR, "etl_ext: column %d is not double precision", col);
	return DatumGetFloat8(d);
}
