/*-------------------------------------------------------------------------
 *
 * deparse.h
 *	  SQL text generation for the statements of a run.
 *
 * IDENTIFICATION
 *	  src/deparse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_H
#define ETL_DEPARSE_H

#include "postgres.h"

#include "run.h"

extern char *etl_relation_sql(Oid relid);
extern void etl_deparse_delta_cte(StringInfo buf, EtlRun *run);
extern char *etl_deparse_range_where(EtlRun *run);
extern char *etl_deparse_stats(EtlRun *run);
extern char *etl_deparse_cutoff(EtlRun *run);
extern char *etl_deparse_target_probe(EtlRun *run);
extern char *etl_deparse_insert(EtlRun *run, bool skip_existing);
extern char *etl_deparse_classify(EtlRun *run);
extern char *etl_deparse_update(EtlRun *run);
extern char *etl_deparse_delete(EtlRun *run);
extern char *etl_deparse_delete_vanished(EtlRun *run);
extern char *etl_deparse_delete_all(EtlRun *run);
extern char *etl_deparse_cdc_delete(EtlRun *run);
extern char *etl_deparse_snapshot_classify(EtlRun *run);
extern char *etl_deparse_snapshot_delete(EtlRun *run, const char *soft_column);
extern char *etl_deparse_snapshot_revive(EtlRun *run, const char *soft_column);
extern char *etl_deparse_snapshot_forget(EtlRun *run);
extern char *etl_deparse_snapshot_remember(EtlRun *run);
extern char *etl_deparse_cdc_bad_operations(EtlRun *run, const char *op);
extern char *etl_deparse_stage_select(EtlRun *run);
extern char *etl_deparse_transform_probe(EtlRun *run);
extern char *etl_deparse_stage_record(EtlRun *run);
extern char *etl_deparse_superseded(EtlRun *run, List *keys);
extern bool etl_has_equality(Oid ltype, Oid rtype);

#endif /* ETL_DEPARSE_H */
