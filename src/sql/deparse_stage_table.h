/*-------------------------------------------------------------------------
 *
 * deparse_stage_table.h
 *	  The statements that make, fill, index, mark and drop a run's stage
 *	  table, from explicit arguments.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_stage_table.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_STAGE_TABLE_H
#define ETL_DEPARSE_STAGE_TABLE_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "lib/stringinfo.h"

extern void etl_deparse_stage_columns(StringInfo cols, StringInfo qcols,
									  TupleDesc desc);
extern void etl_deparse_stage_name(StringInfo buf, int64 run_id);
extern void etl_deparse_stage_create(StringInfo buf, const char *stage_table,
									 const char *source_sql);
extern void etl_deparse_stage_insert(StringInfo buf, const char *stage_table,
									 const char *stage_columns,
									 const char *select_sql);
extern void etl_deparse_stage_index(StringInfo buf, const char *stage_table);
extern void etl_deparse_stage_analyze(StringInfo buf, const char *stage_table);
extern void etl_deparse_stage_drop(StringInfo buf, const char *stage_table);
extern void etl_deparse_stage_forget(StringInfo buf, const char *stage_table,
									 const int64 *rns, int count);
extern void etl_deparse_stage_taken(StringInfo buf, const char *stage_table,
									const char *filter);
extern void etl_deparse_stage_dead_letters(StringInfo buf,
										   const char *source_sql);
extern void etl_deparse_stage_hold(StringInfo buf, const char *stage_table,
								   const int64 *rns, int count);

#endif /* ETL_DEPARSE_STAGE_TABLE_H */
