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
extern char *etl_deparse_delete(EtlRun *run);
extern char *etl_deparse_stage_select(EtlRun *run);
extern char *etl_deparse_transform_probe(EtlRun *run);
extern char *etl_deparse_dup_keys(EtlRun *run);
extern char *etl_deparse_dup_count(EtlRun *run);
extern char *etl_deparse_rn_batch(EtlRun *run);
extern char *etl_deparse_dup_per_row(EtlRun *run);
extern char *etl_deparse_stage_record(EtlRun *run);

#endif /* ETL_DEPARSE_H */
