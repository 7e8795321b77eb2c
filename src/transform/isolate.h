/*-------------------------------------------------------------------------
 *
 * isolate.h
 *	  Bad-row isolation: loading a batch in subtransactions and bisecting
 *	  the parts that fail with a data error down to single rows.
 *
 * IDENTIFICATION
 *	  src/transform/isolate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_ISOLATE_H
#define ETL_ISOLATE_H

#include "postgres.h"

#include "loads/counts.h"
#include "sql/run_state.h"
#include "transform/stage.h"

extern void etl_load_isolated(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks,
							  EtlLoadCounts *total);
extern void etl_isolate_transform(EtlRun *run, int64 nrows,
								  EtlIsolateHooks *hooks);
extern void etl_isolation_release(EtlRun *run);

#endif /* ETL_ISOLATE_H */
