/*-------------------------------------------------------------------------
 *
 * errors.c
 *	  Error classes by SQLSTATE, and etl_error_class(sqlstate).
 *
 *	  transient		connection exceptions (class 08), serialization
 *					failure (40001), deadlock (40P01), lock not available
 *					(55P03, lock_timeout), cannot connect now (57P03), too
 *					many connections (53300): retried inside the run with the
 *					pipeline's backoff.
 *	  recoverable	data exceptions (class 22) and integrity constraint
 *					violations (class 23): the row that caused it is isolated
 *					and becomes a dead letter; the rest of the batch loads.
 *	  fatal			everything else: the run fails.
 *
 * IDENTIFICATION
 *	  src/base/errors.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "base/errors.h"

PG_FUNCTION_INFO_V1(etl_error_class_sql);

/*
 * etl_error_class classifies an error code.
 */
EtlErrorClass
etl_error_class(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:
			return ETL_ERROR_TRANSIENT;
		case ERRCODE_DATA_EXCEPTION:
		case ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION:
			return ETL_ERROR_RECOVERABLE;
		default:
			break;
	}
	switch (sqlerrcode)
	{
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_LOCK_NOT_AVAILABLE:
		case ERRCODE_CANNOT_CONNECT_NOW:
		case ERRCODE_TOO_MANY_CONNECTIONS:
			return ETL_ERROR_TRANSIENT;
		default:
			return ETL_ERROR_FATAL;
	}
}

/*
 * etl_error_class_name returns the name stored in the catalogs.
 */
const char *
etl_error_class_name(EtlErrorClass c)
{
	switch (c)
	{
		case ETL_ERROR_TRANSIENT:
			return "transient";
		case ETL_ERROR_RECOVERABLE:
			return "recoverable";
		default:
			return "fatal";
	}
}

/*
 * etl_error_class(sqlstate text) RETURNS text: the class etl_ext gives an
 * error code.  Raises 22023 for text that is not a SQLSTATE.
 */
Datum
etl_error_class_sql(PG_FUNCTION_ARGS)
{
	char *s = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strlen(s) != 5 ||
		strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 5)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("\"%s\" is not a SQLSTATE", s),
						errhint("A SQLSTATE is five digits or upper-case "
								"letters, e.g. 40001.")));
	PG_RETURN_TEXT_P(cstring_to_text(etl_error_class_name(
		etl_error_class(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])))));
}
