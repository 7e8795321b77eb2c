/*-------------------------------------------------------------------------
 *
 * load_partition_swap.c
 *	  Load partition_swap: the partitions the batch touches are rebuilt in
 *	  staging tables and swapped in with DROP / ATTACH, with merge's
 *	  semantics and counts.  Staged chunks (bad-row isolation, dead-letter
 *	  replay) only gather their rows; the finish swaps.  The machinery is in
 *	  swap.c (phase A), swap_build.c (phase B), swap_key.c and swap_guard.c.
 *
 * IDENTIFICATION
 *	  src/loads/load_partition_swap.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/acl.h"

#include "loads/load_ops.h"
#include "loads/swap.h"
#include "loads/swap_build.h"
#include "loads/swap_key.h"
#include "modes/track.h"

/*
 * swap_check_definition checks what partition_swap needs of a definition:
 * a partitioned target it can rebuild (etl_swap_check_definition()), and
 * no change tracking on it (etl_track_refuse_swap()).
 */
static void
swap_check_definition(EtlPipeline *p, Oid source, Oid target)
{
	etl_swap_check_definition(p, source, target);
	etl_track_refuse_swap(p, target);
}

/*
 * A partitioned target's unique indexes must include its partition key, so
 * a key without it is never unique there: partition_swap keeps keys unique
 * itself (its batch table's unique index, the rebuilt partitions), and
 * needs no unique index of the target.
 */
const EtlLoadOps etl_load_partition_swap = {
	.name = "partition_swap",
	.target_privileges = ACL_SELECT | ACL_INSERT,
	.needs_key = true,
	.key_needs_unique_index = false,
	.keeps_first_version = false,
	.classifies = true,
	.recheck_empty = false,
	.check_definition = swap_check_definition,
	.load = etl_swap_load,
	.finish = etl_swap_finish,
};
