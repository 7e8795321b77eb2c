/*-------------------------------------------------------------------------
 *
 * observe.c
 *	  What etl.status shows beyond the catalogs: the lag of a pipeline.
 *
 * IDENTIFICATION
 *	  src/observe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "columns.h"
#include "deparse.h"
#include "extract.h"
#include "security.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(etl_lag);

/*
 * etl_lag(pipeline text) RETURNS text
 *
 * The distance from a pipeline's watermark to the newest value of its
 * watermark column in the source: an interval in mode timestamp, a number in
 * mode serial, the transaction ids assigned since the previous run's snapshot
 * in mode xid, 0 when caught up.  NULL before the first run, for an unknown
 * pipeline, or when the caller may not read the source (the query runs with
 * the caller's rights).
 */
Datum
etl_lag(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	EtlPipeline *p;
	Oid source;
	AttrNumber attnum;
	int nestlevel;
	text *result = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	etl_spi_connect();
	nestlevel = etl_pin_settings();
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), true,
						 InvalidSnapshot);
	if (p != NULL && p->watermark != NULL && p->mode == ETL_MODE_XID)
	{
		/* transaction ids assigned since the previous run's snapshot */
		EtlArgs args;
		char *lag;

		etl_args_init(&args);
		etl_args_add_text(&args, etl_xid_watermark_parse(p, p->watermark));
		etl_spi_exec("SELECT GREATEST(pg_catalog.pg_snapshot_xmax("
					 "pg_catalog.pg_current_snapshot())::pg_catalog.text::"
					 "pg_catalog.numeric - pg_catalog.pg_snapshot_xmax("
					 "$1::pg_catalog.pg_snapshot)::pg_catalog.text::"
					 "pg_catalog.numeric, 0)::pg_catalog.text",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
		lag = etl_spi_text(0, 0);
		if (lag != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(callercxt);

			result = cstring_to_text(lag);
			MemoryContextSwitchTo(old);
		}
	}
	else if (p != NULL && p->watermark != NULL &&
			 p->watermark_column != NULL &&
			 OidIsValid(source =
							etl_resolve_relation(p->source, "source", true)) &&
			 pg_class_aclcheck(source, GetUserId(), ACL_SELECT) ==
				 ACLCHECK_OK &&
			 (attnum = get_attnum(source, p->watermark_column)) !=
				 InvalidAttrNumber)
	{
		Oid type = get_atttype(source, attnum);
		const char *zero =
			p->mode == ETL_MODE_TIMESTAMP ? "'0'::pg_catalog.interval" : "0";
		EtlArgs args;
		char *sql;
		char *lag;

		etl_args_init(&args);
		etl_args_add(&args, type,
					 etl_watermark_datum(p, p->watermark, type, -1), false);
		sql = psprintf("SELECT GREATEST(pg_catalog.max(%s) - $1, "
					   "%s)::pg_catalog.text FROM %s",
					   quote_identifier(p->watermark_column), zero,
					   etl_relation_sql(source));
		etl_spi_exec(sql, &args, SPI_OK_SELECT, InvalidSnapshot);
		lag = etl_spi_text(0, 0);
		if (lag != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(callercxt);

			result = cstring_to_text(lag);
			MemoryContextSwitchTo(old);
		}
	}
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
