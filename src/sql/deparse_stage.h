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

#include "sql/batch_sql.h"

extern char *etl_deparse_stage_select(const EtlBatchSql *b);
extern char *etl_deparse_dup_count(const EtlBatchSql *b);
extern char *etl_deparse_dup_keys(const EtlBatchSql *b);
extern char *etl_deparse_dup_per_row(const EtlBatchSql *b);
extern char *etl_deparse_repeated_versions(const EtlBatchSql *b);
extern char *etl_deparse_transform_probe(const EtlBatchSql *b);
extern char *etl_deparse_stage_record(const EtlBatchSql *b);
extern char *etl_deparse_superseded(const EtlBatchSql *b, List *keys);

#endif /* ETL_DEPARSE_STAGE_H */
