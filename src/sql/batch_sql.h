/*-------------------------------------------------------------------------
 *
 * batch_sql.h
 *	  What the SQL builders of a run's batch read: the descriptor of the
 *	  batch (its source, relations, range flags, staged rows, held-only,
 *	  dedupe, the column map) and the numbering of the statements' positional
 *	  parameters.  The state of a run (sql/run_state.h) fills it.
 *
 * IDENTIFICATION
 *	  src/sql/batch_sql.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_BATCH_SQL_H
#define ETL_BATCH_SQL_H

#include "postgres.h"

#include "catalog/pipelines.h"
#include "sql/columns.h"

/*
 * Positional arguments shared by every statement of a run (extract, stats
 * and load): each statement references those it needs.
 */
typedef enum EtlRunParam
{
	ETL_PARAM_FROM = 1,		 /* lower bound, exclusive (watermark - overlap) */
	ETL_PARAM_HI,			 /* safe upper bound */
	ETL_PARAM_CUTOFF,		 /* batch_size cut, inclusive */
	ETL_PARAM_RUN_ID,		 /* value of _etl_run_id */
	ETL_PARAM_LOADED_AT,	 /* value of _etl_loaded_at */
	ETL_PARAM_LO,			 /* stored watermark, exclusive */
	ETL_PARAM_OFFSET,		 /* batch_size - 1 */
	ETL_PARAM_RN_LO,		 /* staged rows: first row number */
	ETL_PARAM_RN_HI,		 /* staged rows: last row number */
	ETL_PARAM_PREV_SNAPSHOT, /* mode xid: the previous run's snapshot */
	ETL_PARAM_PIPELINE_ID,	 /* the pipeline's id */
	ETL_NPARAMS = ETL_PARAM_PIPELINE_ID
} EtlRunParam;

/*
 * The batch a statement reads and writes, as the builders see it: which
 * parameters of EtlRunParam exist (the range flags), whether it is read from
 * the source's range or from staged rows $ETL_PARAM_RN_LO ..
 * $ETL_PARAM_RN_HI (stage_table), which of those (held_only), whether one
 * row per key is kept (dedupe), and the relations and columns, quoted.
 */
typedef struct EtlBatchSql
{
	EtlPipeline *p;	   /* the definition: watermark column, key */
	EtlColumnMap *map; /* the columns and the EtlBatchSource */

	Oid source_relid;
	Oid target_relid;
	const char *source_sql; /* quoted, qualified */
	const char *target_sql;
	char source_relkind;

	/* the range: which bounds the statement has as parameters */
	Oid wm_type;
	bool has_lo;
	bool has_from;
	bool from_inclusive; /* >= $ETL_PARAM_FROM (a backfill range) */
	bool rereads;		 /* from lies before lo: an overlap re-reads */
	bool has_hi;
	bool hi_inclusive;
	bool has_cutoff;

	/* whether the target is empty: 1 yes, 0 no, -1 not known */
	int target_empty;

	/* staged rows (NULL stage_table: the batch is the source's range) */
	const char *stage_table;	 /* quoted name in pg_temp */
	const char *stage_columns;	 /* the source's columns, quoted */
	const char *stage_columns_s; /* the same, each qualified by etl_s. */
	bool stage_held_only;		 /* the held rows only */
	bool dedupe;				 /* keep one row per key */
} EtlBatchSql;

#endif /* ETL_BATCH_SQL_H */
