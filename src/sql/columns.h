/*-------------------------------------------------------------------------
 *
 * columns.h
 *	  The transform's analysis: which columns a batch has, how they map to
 *	  the target, and the SQL that produces them from etl_delta.
 *
 * IDENTIFICATION
 *	  src/sql/columns.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_COLUMNS_H
#define ETL_COLUMNS_H

#include "postgres.h"

#include "nodes/parsenodes.h"

#include "catalog/pipelines.h"

/* names of the audit columns a target may carry */
#define ETL_COL_ROW_HASH "_etl_row_hash"
#define ETL_COL_RUN_ID "_etl_run_id"
#define ETL_COL_LOADED_AT "_etl_loaded_at"

/* one column of the batch, i.e. one output column of the transform */
typedef struct EtlColumn
{
	char *name;		   /* output name == target column name */
	AttrNumber attnum; /* in the target */
	Oid src_type;	   /* type the transform produces */
	int32 src_typmod;
	Oid tgt_type; /* type of the target column */
	int32 tgt_typmod;
	bool tgt_notnull; /* the target column is NOT NULL */
	bool is_key;
} EtlColumn;

/*
 * What the SQL builders (and the loads) need of a pipeline's mode and load
 * besides its columns, filled from their ops (etl_resolve_columns() in
 * modes/mode.c): they read these fields, never the mode or the load.
 */
typedef struct EtlBatchSource
{
	/* the batch is the whole source (not a range of what changed) */
	bool whole_source;
	/* the range: rows the previous run's snapshot did not see committed */
	bool by_snapshot;
	/* the batch: each key's last change row of the range, deletes left out */
	bool last_changes;
	/* of the rows of one key in a batch, the first is kept (else the last) */
	bool keep_first;
	/* quoted column stamped for a vanished key (NULL: the row is deleted) */
	const char *soft_delete_column;
	/* source columns never loaded: named with this prefix (NULL: none) */
	const char *omit_prefix;
	/* and this one (NULL: none) */
	const char *omit_column;
} EtlBatchSource;

typedef struct EtlColumnMap
{
	List *columns;		 /* EtlColumn *, in target column order */
	char *transform_sql; /* SELECT over etl_delta producing them */
	bool one_to_one;	 /* one batch row per extracted row */
	bool row_local;		 /* each batch row from one extracted row alone */
	int delta_loc;		 /* row_local: where etl_delta is read in */
	int delta_len;		 /* transform_sql, and how long the name is */
	bool delta_aliased;	 /* whether it has an alias there */
	bool key_nullable;	 /* a key column of the target may hold NULL */
	bool key_unique;	 /* no two batch rows can share a key */
	bool has_row_hash;	 /* target audit columns present */
	bool has_run_id;
	bool has_loaded_at;
	EtlBatchSource source; /* what the mode and the load make of the batch */
} EtlColumnMap;

extern EtlColumnMap *etl_map_columns(EtlPipeline *p, Oid source_relid,
									 Oid target_relid, bool check_perms,
									 const EtlBatchSource *source);
extern Oid etl_resolve_relation(const char *name, const char *role,
								bool missing_ok);
extern List *etl_primary_key_columns(Oid relid);
extern void etl_require_unique_key(EtlPipeline *p, Oid target_relid);
extern bool etl_is_audit_column(const char *name);

#endif /* ETL_COLUMNS_H */
