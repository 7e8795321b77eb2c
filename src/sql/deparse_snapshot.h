/*-------------------------------------------------------------------------
 *
 * deparse_snapshot.h
 *	  The statements of mode snapshot.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_SNAPSHOT_H
#define ETL_DEPARSE_SNAPSHOT_H

#include "postgres.h"

#include "sql/batch_sql.h"

extern char *etl_deparse_snapshot_classify(const EtlBatchSql *b);
extern char *etl_deparse_snapshot_delete(const EtlBatchSql *b,
										 const char *soft_column);
extern char *etl_deparse_snapshot_revive(const EtlBatchSql *b,
										 const char *soft_column, bool staged);
extern char *etl_deparse_snapshot_vanished_keys(const EtlBatchSql *b);
extern char *etl_deparse_snapshot_signatures(const EtlBatchSql *b,
											 bool none_yet, bool repeats,
											 bool staged);

#endif /* ETL_DEPARSE_SNAPSHOT_H */
