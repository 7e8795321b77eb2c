/*-------------------------------------------------------------------------
 *
 * swap.h
 *	  Load partition_swap: rebuilding the partitions a batch touches and
 *	  swapping them into a partitioned target.
 *
 * IDENTIFICATION
 *	  src/loads/swap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SWAP_H
#define ETL_SWAP_H

#include "postgres.h"

#include "utils/rel.h"

#include "loads/counts.h"
#include "sql/run_state.h"

extern void etl_swap_check_definition(EtlPipeline *p, Oid source, Oid target);
extern void etl_swap_load(EtlRun *run, EtlLoadCounts *c);
extern void etl_swap_finish(EtlRun *run);

/* what a swap refuses (swap_guard.c) */
extern void etl_swap_check_target(EtlPipeline *p, Relation rel);
extern void etl_swap_check_lock_slots(EtlPipeline *p, int nparts,
									  int64 needed);
extern void etl_swap_lock_slots_error(EtlPipeline *p, int nparts,
									  int64 needed);
extern bool etl_swap_out_of_lock_slots(ErrorData *edata);

#endif /* ETL_SWAP_H */
