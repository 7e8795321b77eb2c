/*-------------------------------------------------------------------------
 *
 * swap_guard.h
 *	  What load partition_swap refuses.
 *
 * IDENTIFICATION
 *	  src/loads/swap_guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SWAP_GUARD_H
#define ETL_SWAP_GUARD_H

#include "postgres.h"

#include "utils/rel.h"

#include "catalog/pipelines.h"

extern void etl_swap_check_target(EtlPipeline *p, Relation rel);
extern void etl_swap_check_lock_slots(EtlPipeline *p, int nparts,
									  int64 needed);
extern void etl_swap_lock_slots_error(EtlPipeline *p, int nparts,
									  int64 needed);
extern bool etl_swap_out_of_lock_slots(ErrorData *edata);

#endif /* ETL_SWAP_GUARD_H */
