/*-------------------------------------------------------------------------
 *
 * watermark.h
 *	  Watermarks: their types, values and text.
 *
 * IDENTIFICATION
 *	  src/modes/watermark.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_WATERMARK_H
#define ETL_WATERMARK_H

#include "postgres.h"

#include "catalog/pipelines.h"

extern bool etl_watermark_type_ok(EtlMode mode, Oid type);
extern int etl_watermark_domain_detail(Oid type);
extern void etl_check_watermark_type(EtlPipeline *p, Oid type);
extern Datum etl_watermark_datum(EtlPipeline *p, const char *text, Oid type,
								 int32 typmod);
extern bool etl_watermark_is_finite(Oid type, Datum value);
extern void etl_check_watermark_finite(EtlPipeline *p, const char *text,
									   Oid type, Datum value, bool stored);
extern bool etl_xid_watermark_is_local(const char *watermark);
extern char *etl_xid_watermark_parse(EtlPipeline *p, const char *watermark);
extern char *etl_xid_watermark_with(const char *snap, const uint64 *xids,
									int n);
extern void etl_check_backfill_mode(EtlPipeline *p);
extern void etl_check_keyless_reload(EtlPipeline *p, const char *action,
									 bool force, const char *forced_call);

#endif /* ETL_WATERMARK_H */
