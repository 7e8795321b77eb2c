/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  The only SPI wrapper of etl_ext: connect, execute with positional
 *	  arguments under a chosen snapshot, check the exact expected result
 *	  code, read values out.
 *
 *	  No other module calls SPI directly.  The connection is opened and
 *	  closed by the entry protocol (entry.c); values read with
 *	  etl_spi_datum() live until the next etl_spi_exec(), the
 *	  etl_spi_text()/etl_spi_int64() helpers copy them out.
 *
 * IDENTIFICATION
 *	  src/base/spi_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "base/settings.h"
#include "base/spi_util.h"

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
 * etl_spi_pin_path makes the pinned search_path (ETL_PINNED_SEARCH_PATH)
 * current again when it is not, in a GUC nest level of its own, and returns
 * that level (-1: it was current).  Code of a pipeline owner that ran
 * earlier in the same call may have changed search_path (set_config() in a
 * transform's function), and no name in a statement of etl_ext may resolve
 * through that: a statement is parsed, and analysed again when its plan is
 * revalidated, under the search_path current at the time.  End the level
 * with etl_spi_unpin_path().
 */
static int
etl_spi_pin_path(void)
{
	int nestlevel;

	if (namespace_search_path != NULL &&
		strcmp(namespace_search_path, ETL_PINNED_SEARCH_PATH) == 0)
		return -1;
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", ETL_PINNED_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
							 0, false);
	return nestlevel;
}

/*
 * etl_spi_unpin_path ends the level of etl_spi_pin_path(): after a
 * statement that succeeded, settings its code changed stay as they would
 * without the level (the pinned search_path does not); after an error, all
 * are undone.
 */
static void
etl_spi_unpin_path(int nestlevel, bool ok)
{
	if (nestlevel >= 0)
		AtEOXact_GUC(ok, nestlevel);
}

/*
 * etl_spi_prepare parses and analyses one statement (call it with the
 * pinned search_path current: etl_spi_pin_path()).
 */
static SPIPlanPtr
etl_spi_prepare(const char *sql, int nargs, Oid *types, int cursor_options)
{
	SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, types, cursor_options);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));
	return plan;
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
 *
 * Memory: the statement's plan lives in the SPI connection's procedure
 * context until freed; it is freed when the statement fails as well as when
 * it succeeds, so that statements failing under a caller that catches their
 * errors (bad-row isolation's probes) leave nothing behind until
 * the connection ends (etl_entry_end()).  SPI switches to its procedure context after each call:
 * the caller's memory context is current again on return, so that what the
 * caller allocates next goes where it chose (a context it resets, say).
 */
uint64
etl_spi_exec_opts(const char *sql, EtlArgs *args, int expected,
				  Snapshot snapshot, int cursor_options)
{
	MemoryContext cxt = CurrentMemoryContext;
	SPIPlanPtr volatile plan = NULL;
	volatile int rc = 0;
	int pin;
	int nargs = args ? args->n : 0;

	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}

	pin = etl_spi_pin_path();
	PG_TRY();
	{
		plan = etl_spi_prepare(sql, nargs, args ? args->types : NULL,
							   cursor_options);
		rc = SPI_execute_snapshot(plan, args ? args->values : NULL,
								  args ? args->nulls : NULL, snapshot,
								  InvalidSnapshot, false, true, 0);
		SPI_freeplan(plan);
		plan = NULL;
	}
	PG_CATCH();
	{
		if (plan != NULL)
			SPI_freeplan(plan);
		etl_spi_unpin_path(pin, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	etl_spi_unpin_path(pin, true);
	MemoryContextSwitchTo(cxt);

	if (rc != expected)
		elog(ERROR, "unexpected SPI result %s (expected %s) for: %s",
			 SPI_result_code_string(rc), SPI_result_code_string(expected),
			 sql);

	return SPI_processed;
}

/*
 * etl_spi_cursor_open opens a cursor over a read-only query with its
 * arguments.  With a snapshot (as in etl_spi_exec()) the cursor reads as of
 * that snapshot, with a command id advanced past what this transaction did
 * before.  The query runs, as its rows are fetched, as whoever is the
 * current user at each etl_spi_cursor_fetch().
 */
Portal
etl_spi_cursor_open(const char *sql, EtlArgs *args, Snapshot snapshot)
{
	Portal volatile portal = NULL;
	SPIPlanPtr volatile plan = NULL;
	int nargs = args ? args->n : 0;
	int pin = etl_spi_pin_path();

	PG_TRY();
	{
		plan = etl_spi_prepare(sql, nargs, args ? args->types : NULL, 0);
		if (snapshot != InvalidSnapshot)
		{
			CommandCounterIncrement();
			PushCopiedSnapshot(snapshot);
			UpdateActiveSnapshotCommandId();
		}
		portal = SPI_cursor_open(NULL, plan, args ? args->values : NULL,
								 args ? args->nulls : NULL,
								 snapshot != InvalidSnapshot);
		if (snapshot != InvalidSnapshot)
			PopActiveSnapshot();
		SPI_freeplan(plan);
		plan = NULL;
	}
	PG_CATCH();
	{
		if (plan != NULL)
			SPI_freeplan(plan);
		etl_spi_unpin_path(pin, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	etl_spi_unpin_path(pin, true);
	if (portal == NULL)
		elog(ERROR, "SPI_cursor_open failed: %s",
			 SPI_result_code_string(SPI_result));
	return portal;
}

/*
 * etl_spi_cursor_fetch fetches up to count more rows of a cursor into the
 * result set (the previous one is released) and returns how many came.
 */
uint64
etl_spi_cursor_fetch(Portal portal, long count)
{
	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}
	SPI_cursor_fetch(portal, true, count);
	return SPI_processed;
}

/*
 * etl_spi_cursor_close closes a cursor of etl_spi_cursor_open().
 */
void
etl_spi_cursor_close(Portal portal)
{
	SPI_cursor_close(portal);
}

/*
 * etl_spi_column_array returns a column of the whole last result set as an
 * array of the column's type (NULLs kept), in the current memory context:
 * it outlives the result set.
 */
Datum
etl_spi_column_array(int col)
{
	Oid type = etl_spi_coltype(col);
	uint64 n = SPI_processed;
	Datum *values;
	bool *nulls;
	int dims[1];
	int lbs[1] = { 1 };
	int16 typlen;
	bool typbyval;
	char typalign;
	uint64 i;

	if (n > (uint64) MaxArraySize)
		elog(ERROR,
			 "etl_ext: " UINT64_FORMAT " rows are too many for one array", n);
	values = palloc(sizeof(Datum) * Max(n, 1));
	nulls = palloc(sizeof(bool) * Max(n, 1));
	for (i = 0; i < n; i++)
		values[i] = etl_spi_datum(i, col, &nulls[i]);
	dims[0] = (int) n;
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(
		values, nulls, 1, dims, lbs, type, typlen, typbyval, typalign));
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
