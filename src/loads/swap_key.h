/*-------------------------------------------------------------------------
 *
 * swap_key.h
 *	  Load partition_swap: the partition key, the routing of rows to
 *	  partitions and the batch table, which both phases use.
 *
 * IDENTIFICATION
 *	  src/loads/swap_key.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SWAP_KEY_H
#define ETL_SWAP_KEY_H

#include "postgres.h"

#include "utils/rel.h"

#include "sql/deparse_swap.h"
#include "sql/run_state.h"

/* how the batch's rows find their partition: the target's bounds now */
typedef struct EtlSwapRoute
{
	int nbounds;
	Datum *bounds; /* range: the finite bounds in order; list: the values */
	int nparts;
	Oid *parts;		  /* range: nbounds + 1, the partition of each bucket (0:
				 * a gap); list: nbounds, the partition of each value */
	Oid null_part;	  /* list: the partition that takes NULL, or 0 */
	Oid default_part; /* or 0 */
} EtlSwapRoute;

extern void etl_swap_key(EtlPipeline *p, Relation rel, EtlSwapKey *k);
extern void etl_swap_check_partition(EtlPipeline *p, Oid part, bool rebuilt);
extern void etl_swap_check_definition(EtlPipeline *p, Oid source, Oid target);
extern void etl_swap_route(Relation rel, EtlSwapKey *k, EtlSwapRoute *r);
extern void etl_swap_route_args(EtlSwapKey *k, EtlSwapRoute *r, EtlArgs *args);
extern char *etl_swap_batch(EtlRun *run, bool create);

#endif /* ETL_SWAP_KEY_H */
