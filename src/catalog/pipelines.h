/*-------------------------------------------------------------------------
 *
 * pipelines.h
 *	  The definitions of pipelines (etl.pipelines) mirrored in C, and the
 *	  only code that reads or writes them.
 *
 * IDENTIFICATION
 *	  src/catalog/pipelines.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_PIPELINES_H
#define ETL_PIPELINES_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/snapshot.h"

typedef enum EtlMode
{
	ETL_MODE_TIMESTAMP,
	ETL_MODE_SERIAL,
	ETL_MODE_XID,
	ETL_MODE_CDC,
	ETL_MODE_SNAPSHOT,
	ETL_MODE_FULL,
	ETL_MODE_COUNT
} EtlMode;

typedef enum EtlLoad
{
	ETL_LOAD_MERGE,
	ETL_LOAD_APPEND,
	ETL_LOAD_DELETE_INSERT,
	ETL_LOAD_PARTITION_SWAP,
	ETL_LOAD_COUNT
} EtlLoad;

typedef enum EtlRetryPolicy
{
	ETL_RETRY_NONE,
	ETL_RETRY_LINEAR,
	ETL_RETRY_EXPONENTIAL,
	ETL_RETRY_EXPONENTIAL_JITTER,
	ETL_RETRY_COUNT
} EtlRetryPolicy;

typedef enum EtlSchemaPolicy
{
	ETL_SCHEMA_FAIL,
	ETL_SCHEMA_IGNORE,
	ETL_SCHEMA_APPEND_NEW_COLUMNS,
	ETL_SCHEMA_COUNT
} EtlSchemaPolicy;

extern const char *const etl_mode_names[];

/* mode cdc: default watermark and operation columns, loaded never */
#define ETL_CDC_PREFIX "_cdc_"
#define ETL_CDC_DEFAULT_LSN "_cdc_lsn"
#define ETL_CDC_DEFAULT_OP "_cdc_operation"

/* the change-tracking column of mode xid (etl_track_changes) */
#define ETL_COL_XID "_etl_xid"
extern const char *const etl_load_names[];
extern const char *const etl_retry_policy_names[];
extern const char *const etl_schema_policy_names[];

/* one row of etl.pipelines */
typedef struct EtlPipeline
{
	int64 id; /* 0 until stored */
	char *name;
	Oid owner;
	char *source; /* qualified, quoted relation name */
	char *target; /* qualified, quoted relation name */
	List *key;	  /* list of char * column names */
	EtlMode mode;
	char *watermark_column; /* NULL when the mode has none */
	Interval *overlap;
	char *transform; /* NULL: default transform */
	EtlLoad load;
	int64 batch_size; /* 0: no limit (NULL in the catalog) */
	Numeric error_threshold;
	int32 max_attempts;
	EtlRetryPolicy retry_policy;
	Interval *retry_base_delay;
	Interval *retry_max_delay;
	EtlSchemaPolicy on_schema_change;
	Jsonb *options;
	int32 alert_after_failures;
	char *source_columns; /* JSON: the source's columns when last validated */
	char *watermark;	  /* NULL before the first run */
} EtlPipeline;

/* columns of etl.pipelines in the order etl_catalog_load() selects them */
enum
{
	Anum_pipeline_id,
	Anum_pipeline_name,
	Anum_pipeline_owner,
	Anum_pipeline_source,
	Anum_pipeline_target,
	Anum_pipeline_key,
	Anum_pipeline_mode,
	Anum_pipeline_watermark_column,
	Anum_pipeline_overlap,
	Anum_pipeline_transform,
	Anum_pipeline_load,
	Anum_pipeline_batch_size,
	Anum_pipeline_error_threshold,
	Anum_pipeline_max_attempts,
	Anum_pipeline_retry_policy,
	Anum_pipeline_retry_base_delay,
	Anum_pipeline_retry_max_delay,
	Anum_pipeline_on_schema_change,
	Anum_pipeline_options,
	Anum_pipeline_alert_after_failures,
	Anum_pipeline_source_columns,
	Anum_pipeline_watermark,
	Natts_pipeline
};

extern int etl_name_lookup(const char *const names[], int count,
						   const char *value, const char *what);
extern EtlMode etl_mode_lookup(const char *name);
extern EtlLoad etl_load_lookup(const char *name);
extern EtlPipeline *etl_catalog_load(const char *name, bool missing_ok,
									 Snapshot snapshot);
extern EtlPipeline *etl_catalog_load_runnable(FunctionCallInfo fcinfo,
											  int arg);
extern List *etl_catalog_load_all(void);
extern int64 etl_catalog_insert(EtlPipeline *p);
extern void etl_catalog_update(EtlPipeline *p);
extern void etl_catalog_delete(EtlPipeline *p);
extern void etl_catalog_forget_signatures(int64 pipeline_id, Datum key_hashes);
extern void etl_catalog_remember_signatures(int64 pipeline_id,
											Datum key_hashes, Datum row_hashes,
											Datum keys, bool all_new);
extern void etl_catalog_set_watermark(EtlPipeline *p, const char *watermark);
extern char *etl_option_text(EtlPipeline *p, const char *key,
							 const char *dflt);

#endif /* ETL_PIPELINES_H */
