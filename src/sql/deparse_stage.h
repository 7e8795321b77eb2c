/*-------------------------------------------------------------------------
 *
 * deparse_stage.h
 *	  The statements that read a run's batch from its stage.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_stage.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_STAGE_H
#define ETL_DEPARSE_STAGE_H

#include "postgres.h"

#include "nodes/pg_list.h"

#include "sql/run_state.h"

extern char *etl_deparse_stage_select(EtlRun *run);
extern char *etl_deparse_dup_count(EtlRun *run);
extern char *etl_deparse_dup_keys(EtlRun *run);
extern char *etl_deparse_dup_per_row(EtlRun *run);
extern char *etl_deparse_repeated_versions(EtlRun *run);
extern char *etl_deparse_transform_probe(EtlRun *run);
extern char *etl_deparse_stage_record(EtlRun *run);
extern char *etl_deparse_superseded(EtlRun *run, List *keys);

#endif /* ETL_DEPARSE_STAGE_H */
