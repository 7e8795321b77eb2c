/*-------------------------------------------------------------------------
 *
 * deparse_source.h
 *	  The statements a mode runs on a run's source and target outside the
 *	  batch: the largest watermark value, the first row without a position,
 *	  the columns schema drift adds to the target.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_source.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_SOURCE_H
#define ETL_DEPARSE_SOURCE_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

extern void etl_deparse_source_max(StringInfo buf, const char *source_sql,
								   const char *column);
extern bool etl_deparse_unpositioned_row(StringInfo buf,
										 const char *source_sql,
										 const char *column, Oid type,
										 bool notnull);
extern void etl_deparse_source_count(StringInfo buf, const char *source_sql,
									 const char *column);
extern void etl_deparse_analyze(StringInfo buf, const char *relation_sql);
extern void etl_deparse_add_columns(StringInfo buf, const char *target_sql,
									List *definitions);

#endif /* ETL_DEPARSE_SOURCE_H */
