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

extern void etl_extract_begin(EtlRun *run);
extern void etl_extract_stats(EtlRun *run);
extern bool etl_extract_range_stats(EtlRun *run);
extern void etl_extract_range(EtlRun *run);
extern void etl_extract_end(EtlRun *run);

#endif /* ETL_EXTRACT_H */
