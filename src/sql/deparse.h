/*-------------------------------------------------------------------------
 *
 * deparse.h
 *	  SQL text generation for the statements of a run.
 *
 * IDENTIFICATION
 *	  src/sql/deparse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_H
#define ETL_DEPARSE_H

#include "postgres.h"

#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/relcache.h"

#include "loads/swap.h"
#include "run/run.h"

extern char *etl_relation_sql(Oid relid);
extern void etl_deparse_as_target(StringInfo buf, EtlColumn *col,
								  const char *alias);
extern void etl_deparse_delta_cte(StringInfo buf, EtlRun *run);
extern char *etl_deparse_range_where(EtlRun *run);
extern char *etl_deparse_stats(EtlRun *run);
extern char *etl_deparse_cutoff(EtlRun *run);
extern char *etl_deparse_target_probe(EtlRun *run);
extern char *etl_deparse_insert(EtlRun *run, bool skip_existing);
extern char *etl_deparse_classify(EtlRun *run);
extern char *etl_deparse_update(EtlRun *run);
extern char *etl_deparse_revive(EtlRun *run);
extern char *etl_deparse_delete(EtlRun *run);
extern char *etl_deparse_delete_vanished(EtlRun *run);
extern char *etl_deparse_delete_all(EtlRun *run);
extern char *etl_deparse_cdc_delete(EtlRun *run);
extern char *etl_deparse_snapshot_classify(EtlRun *run);
extern char *etl_deparse_snapshot_delete(EtlRun *run, const char *soft_column);
extern char *etl_deparse_snapshot_revive(EtlRun *run, const char *soft_column);
extern char *etl_deparse_snapshot_vanished_keys(EtlRun *run);
extern char *etl_deparse_snapshot_signatures(EtlRun *run, bool none_yet,
											 bool repeats);
extern char *etl_deparse_cdc_bad_operations(EtlRun *run, const char *op);
extern char *etl_deparse_stage_select(EtlRun *run);
extern char *etl_deparse_transform_probe(EtlRun *run);
extern char *etl_deparse_dup_keys(EtlRun *run);
extern char *etl_deparse_dup_count(EtlRun *run);
extern char *etl_deparse_rn_batch(EtlRun *run);
extern char *etl_deparse_dup_per_row(EtlRun *run);
extern char *etl_deparse_repeated_versions(EtlRun *run);
extern char *etl_deparse_stage_record(EtlRun *run);
extern char *etl_deparse_superseded(EtlRun *run, List *keys);
extern bool etl_has_equality(Oid ltype, Oid rtype);

/* load partition_swap (swap.c) */
extern char *etl_deparse_swap_batch_create(EtlRun *run, const char *batch);
extern char *etl_deparse_swap_batch_shape(EtlRun *run, const char *batch);
extern char *etl_deparse_swap_batch_key(EtlRun *run, const char *batch);
extern char *etl_deparse_swap_fill(EtlRun *run, const char *batch,
								   EtlSwapKey *k, bool join_target,
								   bool creatable, int param);
extern char *etl_deparse_swap_period(const char *expr, EtlSwapKey *k,
									 int param);
extern char *etl_deparse_swap_groups(const char *batch, EtlSwapKey *k);
extern char *etl_deparse_swap_batch_index(const char *batch, EtlSwapKey *k);
extern char *etl_deparse_swap_movers(const char *batch);
extern char *etl_deparse_swap_filter(EtlSwapKey *k, bool is_new, int param);
extern char *etl_deparse_swap_keep(EtlRun *run, const char *staging,
								   const char *old, const char *batch);
extern char *etl_deparse_swap_add(EtlRun *run, const char *staging,
								  const char *batch, const char *filter,
								  int which);
extern char *etl_deparse_partition_bound(Relation parent,
										 PartitionBoundSpec *spec,
										 char **qual);
extern char *etl_deparse_swap_staging(const char *staging, Oid template,
									  const char *qual);
extern char *etl_deparse_swap_index(Oid index, const char *staging,
									const char *name);
extern char *etl_deparse_swap_constraint(Oid constraint, const char *staging,
										 const char *name);
extern char *etl_deparse_grant(const char *rel, AclMode privs, Oid grantee,
							   bool grant_option);
extern char *etl_deparse_revoke_all(const char *rel, Oid grantee);
extern char *etl_deparse_set_owner(const char *rel, Oid role);
extern char *etl_deparse_comment(const char *rel, const char *comment);
extern char *etl_deparse_lock(const char *rels, const char *mode);
extern char *etl_deparse_swap_step(EtlSwapStep step, const char *target,
								   const char *rel, const char *arg);

#endif /* ETL_DEPARSE_H */
