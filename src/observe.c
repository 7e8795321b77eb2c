/*-------------------------------------------------------------------------
 *
 * observe.c
 *	  What etl.status shows beyond the catalogs: the lag of a pipeline.
 *
 *	  The lag reads the newest value of the watermark column from the
 *	  source, which may be a view (or a table with policies) of the pipeline
 *	  owner: reading it runs the owner's code.  So it is read as the owner
 *	  inside a security-restricted operation, as a run does, never with the
 *	  rights of whoever looks at etl.status (a superuser, a monitoring role,
 *	  a pg_cron job).
 *
 * IDENTIFICATION
 *	  src/observe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "columns.h"
#include "deparse.h"
#include "extract.h"
#include "isolate.h"
#include "security.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(etl_lag);

/* what lag_query needs and finds */
typedef struct LagQuery
{
	EtlPipeline *p;
	char *lag; /* the result, NULL: SQL NULL */
} LagQuery;

/*
 * may_see_lag tells whether the current user may see a pipeline's lag: it
 * has the privileges of the pipeline's owner, or may read the source or its
 * watermark column.  Only ACLs are looked at; nothing is executed.
 */
static bool
may_see_lag(EtlPipeline *p, Oid source, AttrNumber attnum)
{
	Oid user = GetUserId();

	return has_privs_of_role(user, p->owner) ||
		   pg_class_aclcheck(source, user, ACL_SELECT) == ACLCHECK_OK ||
		   pg_attribute_aclcheck(source, attnum, user, ACL_SELECT) ==
			   ACLCHECK_OK;
}

/*
 * lag_query finds the lag of a pipeline (the body of a subtransaction):
 * the source is looked up with the caller's rights (a schema the caller
 * may not use is a permission error), and read as the pipeline owner in a
 * security-restricted operation.  Leaves lq->lag NULL when the caller may
 * not see it, the watermark column no longer suits the mode, or a mode
 * xid watermark was taken in another cluster.
 */
static void
lag_query(EtlRun *run, void *arg)
{
	LagQuery *lq = arg;
	EtlPipeline *p = lq->p;
	const char *zero;
	EtlUserSwitch sw = { 0 };
	EtlArgs args;
	Oid source;
	AttrNumber attnum;
	Oid type;

	source = etl_resolve_relation(p->source, "source", true);
	if (!OidIsValid(source))
		return;
	attnum = get_attnum(source, p->watermark_column);
	if (attnum == InvalidAttrNumber || !may_see_lag(p, source, attnum))
		return;
	type = get_atttype(source, attnum);
	if (!etl_watermark_type_ok(p->mode, type))
		return;

	if (p->mode == ETL_MODE_XID)
	{
		/* another cluster's snapshot (a restore): unknown until rebased */
		if (!etl_xid_watermark_is_local(p->watermark))
			return;
		/* transaction ids assigned since the previous run's snapshot */
		etl_args_init(&args);
		etl_args_add_text(&args, etl_xid_watermark_parse(p, p->watermark));
		etl_spi_exec("SELECT GREATEST(pg_catalog.pg_snapshot_xmax("
					 "pg_catalog.pg_current_snapshot())::pg_catalog.text::"
					 "pg_catalog.numeric OPERATOR(pg_catalog.-) "
					 "pg_catalog.pg_snapshot_xmax("
					 "$1::pg_catalog.pg_snapshot)::pg_catalog.text::"
					 "pg_catalog.numeric, 0)::pg_catalog.text",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
		lq->lag = etl_spi_text(0, 0);
		return;
	}
	zero = type == TIMESTAMPTZOID || type == TIMESTAMPOID
			   ? "'0'::pg_catalog.interval"
			   : "0";

	etl_become_owner(&sw, p->owner);
	etl_args_init(&args);
	etl_args_add(&args, type, etl_watermark_datum(p, p->watermark, type, -1),
				 false);
	etl_spi_exec(psprintf("SELECT GREATEST(pg_catalog.max(%s)"
						  " OPERATOR(pg_catalog.-) $1, "
						  "%s)::pg_catalog.text FROM %s",
						  quote_identifier(p->watermark_column), zero,
						  etl_relation_sql(source)),
				 &args, SPI_OK_SELECT, InvalidSnapshot);
	lq->lag = etl_spi_text(0, 0);
	etl_restore_user(&sw);
}

/*
 * etl_lag(pipeline text) RETURNS text
 *
 * The distance from a pipeline's watermark to the newest value of its
 * watermark column in the source: an interval in mode timestamp (and cdc by
 * a timestamp), a number in modes serial and cdc, the transaction ids
 * assigned since the previous run's snapshot in mode xid, 0 when caught
 * up.  Read with the rights of the pipeline owner
 * in a security-restricted operation.  NULL before the first run, for an
 * unknown pipeline, when the caller may not read the source (and is not a
 * member of the owner's role), or when the owner may not read it (any
 * permission error while reading it).
 */
Datum
etl_lag(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	EtlPipeline *p;
	int nestlevel;
	text *result = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	etl_spi_connect();
	nestlevel = etl_pin_settings();
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), true,
						 InvalidSnapshot);
	if (p != NULL && p->watermark != NULL && p->watermark_column != NULL &&
		SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p->owner)))
	{
		LagQuery lq = { p, NULL };
		ErrorData *edata = etl_in_subxact(lag_query, NULL, &lq, false);

		if (edata != NULL)
		{
			if (edata->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE)
				ReThrowError(edata);
			lq.lag = NULL;
		}
		if (lq.lag != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(callercxt);

			result = cstring_to_text(lq.lag);
			MemoryContextSwitchTo(old);
		}
	}
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
