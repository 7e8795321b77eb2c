/*-------------------------------------------------------------------------
 *
 * deparse_load.h
 *	  The statements of the loads merge, append and delete_insert, and the
 *	  deletes of modes full and cdc.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_load.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_LOAD_H
#define ETL_DEPARSE_LOAD_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "sql/batch_sql.h"

extern char *etl_deparse_insert(const EtlBatchSql *b, bool skip_existing);
extern void etl_append_changed(StringInfo buf, const EtlBatchSql *b,
							   const char *alias);
extern char *etl_deparse_classify(const EtlBatchSql *b);
extern char *etl_deparse_update(const EtlBatchSql *b);
extern char *etl_deparse_revive(const EtlBatchSql *b);
extern char *etl_deparse_delete(const EtlBatchSql *b);
extern char *etl_deparse_delete_changed(const EtlBatchSql *b);
extern char *etl_deparse_delete_vanished(const EtlBatchSql *b);
extern char *etl_deparse_delete_all(const EtlBatchSql *b);
extern char *etl_deparse_cdc_delete(const EtlBatchSql *b);
extern char *etl_deparse_cdc_bad_operations(const EtlBatchSql *b,
											const char *op);

#endif /* ETL_DEPARSE_LOAD_H */
