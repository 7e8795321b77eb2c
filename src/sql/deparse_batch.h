/*-------------------------------------------------------------------------
 *
 * deparse_batch.h
 *	  The batch as every statement of a run reads it, and the pieces of the
 *	  other builders.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_batch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_BATCH_H
#define ETL_DEPARSE_BATCH_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "sql/batch_sql.h"

extern char *etl_deparse_range_where(const EtlBatchSql *b);
extern char *etl_deparse_stats(const EtlBatchSql *b);
extern char *etl_deparse_cutoff(const EtlBatchSql *b);
extern char *etl_deparse_target_probe(const EtlBatchSql *b);
extern void etl_append_cdc_last_changes(StringInfo buf, const EtlBatchSql *b);
extern char *etl_deparse_cdc_op_test(const EtlBatchSql *b, const char *alias,
									 bool deletes);
extern void etl_deparse_delta_cte(StringInfo buf, const EtlBatchSql *b);
extern void etl_append_transform(StringInfo buf, const EtlBatchSql *b);
extern char *etl_deparse_rn_batch(const EtlBatchSql *b);
extern void etl_append_key_exprs(StringInfo buf, const EtlBatchSql *b,
								 const char *alias);
extern void etl_append_batch(StringInfo buf, const EtlBatchSql *b);
extern void etl_append_keys_present(StringInfo buf, const EtlBatchSql *b);
extern void etl_append_row_hash(StringInfo buf, const EtlBatchSql *b,
								const char *alias);
extern void etl_append_audit_values(StringInfo buf, const EtlBatchSql *b,
									const char *alias);
extern void etl_deparse_as_target(StringInfo buf, EtlColumn *col,
								  const char *alias);
extern void etl_append_key_match(StringInfo buf, const EtlBatchSql *batch,
								 const char *a, const char *b);
extern void etl_append_key_row(StringInfo buf, const EtlBatchSql *b,
							   const char *alias);
extern Oid etl_key_equality(Oid type);
extern void etl_append_equality(StringInfo buf, Oid type, const char *lhs,
								const char *rhs);
extern bool etl_has_equality(Oid ltype, Oid rtype);
extern char *etl_stage_filter(const EtlBatchSql *b, const char *alias);

#endif /* ETL_DEPARSE_BATCH_H */
