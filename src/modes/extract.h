/*-------------------------------------------------------------------------
 *
 * extract.h
 *	  The range a run extracts: stored watermark, safe upper bound, batch cut.
 *
 * IDENTIFICATION
 *	  src/modes/extract.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_EXTRACT_H
#define ETL_EXTRACT_H

#include "postgres.h"

#include "sql/run_state.h"

extern bool etl_watermark_type_ok(EtlMode mode, Oid type);
extern void etl_check_watermark_type(EtlPipeline *p, Oid type);
extern bool etl_watermark_is_finite(Oid type, Datum value);
extern void etl_check_watermark_finite(EtlPipeline *p, const char *text,
									   Oid type, Datum value, bool stored);
extern Datum etl_watermark_datum(EtlPipeline *p, const char *text, Oid type,
								 int32 typmod);
extern bool etl_xid_watermark_is_local(const char *watermark);
extern char *etl_xid_watermark_parse(EtlPipeline *p, const char *watermark);
extern char *etl_xid_watermark_with(const char *snap, const uint64 *xids,
									int n);
extern void etl_check_backfill_mode(EtlPipeline *p);
extern void etl_check_keyless_reload(EtlPipeline *p, const char *action,
									 bool force, const char *forced_call);
extern void etl_extract_begin(EtlRun *run);
extern void etl_extract_stats(EtlRun *run);
extern void etl_extract_end(EtlRun *run);

#endif /* ETL_EXTRACT_H */
