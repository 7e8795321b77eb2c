/*-------------------------------------------------------------------------
 *
 * pipelines.c
 *	  Reading and writing the catalog tables of etl_ext (etl.pipelines,
 *	  etl.runs, etl.batches).
 *
 *	  Reads run as the caller (the catalogs are readable by PUBLIC).  Writes
 *	  run as the extension owner: callers have checked that the current user
 *	  may act on the pipeline.  All statements use positional arguments; the
 *	  caller has an SPI connection open and settings pinned.
 *
 * IDENTIFICATION
 *	  src/catalog/pipelines.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "base/security.h"
#include "base/settings.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"

const char *const etl_mode_names[] = { "timestamp", "serial",	"xid",
									   "cdc",		"snapshot", "full" };
const char *const etl_load_names[] = { "merge", "append", "delete_insert",
									   "partition_swap" };
const char *const etl_retry_policy_names[] = { "none", "linear", "exponential",
											   "exponential_jitter" };
const char *const etl_schema_policy_names[] = { "fail", "ignore",
												"append_new_columns" };

StaticAssertDecl(lengthof(etl_mode_names) == ETL_MODE_COUNT, "mode names");
StaticAssertDecl(lengthof(etl_load_names) == ETL_LOAD_COUNT, "load names");
StaticAssertDecl(lengthof(etl_retry_policy_names) == ETL_RETRY_COUNT,
				 "retry policy names");
StaticAssertDecl(lengthof(etl_schema_policy_names) == ETL_SCHEMA_COUNT,
				 "schema policy names");

#define PIPELINE_COLUMNS                                                      \
	"pipeline_id, name, owner::pg_catalog.oid, source, target, key, mode, "   \
	"watermark_column, overlap, transform, load, batch_size, "                \
	"error_threshold, max_attempts, retry_policy, retry_base_delay, "         \
	"retry_max_delay, on_schema_change, options, alert_after_failures, "      \
	"source_columns::pg_catalog.text, watermark"

/*
 * etl_name_lookup returns the index of value in names, or raises 22023
 * naming the setting ("what") and listing the valid values.
 */
int
etl_name_lookup(const char *const names[], int count, const char *value,
				const char *what)
{
	StringInfoData valid;
	int i;

	for (i = 0; i < count; i++)
		if (strcmp(names[i], value) == 0)
			return i;

	initStringInfo(&valid);
	for (i = 0; i < count; i++)
		appendStringInfo(&valid, "%s%s", i ? ", " : "", names[i]);
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid %s \"%s\"", what, value),
					errhint("Valid values are: %s.", valid.data)));
	return -1; /* keep compiler quiet */
}

/*
 * text_array_to_list turns a text[] datum into a list of C strings.
 */
static List *
text_array_to_list(Datum arr)
{
	Datum *elems;
	bool *nulls;
	int n;
	List *result = NIL;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	return result;
}

/*
 * list_to_text_array is the inverse of text_array_to_list.
 */
static Datum
list_to_text_array(List *list)
{
	Datum *elems = palloc(sizeof(Datum) * Max(list_length(list), 1));
	ListCell *lc;
	int i = 0;

	foreach (lc, list)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(
		construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * pipeline_from_row reads row `row` of the last result set, selected with
 * PIPELINE_COLUMNS, into a pipeline allocated in the current memory context.
 */
static EtlPipeline *
pipeline_from_row(uint64 row)
{
	EtlPipeline *p;
	bool isnull;
	Datum d;

	p = palloc0(sizeof(EtlPipeline));
	p->id = etl_spi_int64(row, Anum_pipeline_id, 0);
	p->name = etl_spi_text(row, Anum_pipeline_name);
	p->owner =
		DatumGetObjectId(etl_spi_datum(row, Anum_pipeline_owner, &isnull));
	p->source = etl_spi_text(row, Anum_pipeline_source);
	p->target = etl_spi_text(row, Anum_pipeline_target);
	p->key =
		text_array_to_list(etl_spi_datum(row, Anum_pipeline_key, &isnull));
	p->mode = etl_name_lookup(etl_mode_names, ETL_MODE_COUNT,
							  etl_spi_text(row, Anum_pipeline_mode), "mode");
	p->watermark_column = etl_spi_text(row, Anum_pipeline_watermark_column);
	d = etl_spi_datum(row, Anum_pipeline_overlap, &isnull);
	p->overlap = DatumGetIntervalP(datumCopy(d, false, sizeof(Interval)));
	p->transform = etl_spi_text(row, Anum_pipeline_transform);
	p->load = etl_name_lookup(etl_load_names, ETL_LOAD_COUNT,
							  etl_spi_text(row, Anum_pipeline_load), "load");
	p->batch_size = etl_spi_int64(row, Anum_pipeline_batch_size, 0);
	d = etl_spi_datum(row, Anum_pipeline_error_threshold, &isnull);
	p->error_threshold = DatumGetNumericCopy(d);
	p->max_attempts =
		(int32) etl_spi_int64(row, Anum_pipeline_max_attempts, 1);
	p->retry_policy = etl_name_lookup(
		etl_retry_policy_names, ETL_RETRY_COUNT,
		etl_spi_text(row, Anum_pipeline_retry_policy), "retry_policy");
	d = etl_spi_datum(row, Anum_pipeline_retry_base_delay, &isnull);
	p->retry_base_delay =
		DatumGetIntervalP(datumCopy(d, false, sizeof(Interval)));
	d = etl_spi_datum(row, Anum_pipeline_retry_max_delay, &isnull);
	p->retry_max_delay =
		DatumGetIntervalP(datumCopy(d, false, sizeof(Interval)));
	p->on_schema_change = etl_name_lookup(
		etl_schema_policy_names, ETL_SCHEMA_COUNT,
		etl_spi_text(row, Anum_pipeline_on_schema_change), "on_schema_change");
	d = etl_spi_datum(row, Anum_pipeline_options, &isnull);
	p->options = DatumGetJsonbPCopy(d);
	p->alert_after_failures =
		(int32) etl_spi_int64(row, Anum_pipeline_alert_after_failures, 1);
	p->source_columns = etl_spi_text(row, Anum_pipeline_source_columns);
	p->watermark = etl_spi_text(row, Anum_pipeline_watermark);
	return p;
}

/*
 * etl_catalog_load reads a pipeline by name, or returns NULL when there is
 * none and missing_ok (otherwise 42704).  snapshot: see etl_spi_exec().  The
 * result is allocated in the current memory context.
 */
EtlPipeline *
etl_catalog_load(const char *name, bool missing_ok, Snapshot snapshot)
{
	EtlArgs args;

	etl_args_init(&args);
	etl_args_add_text(&args, name);
	if (etl_spi_exec(
			"SELECT " PIPELINE_COLUMNS
			" FROM etl.pipelines WHERE name OPERATOR(pg_catalog.=) $1",
			&args, SPI_OK_SELECT, snapshot) == 0)
	{
		if (missing_ok)
			return NULL;
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("pipeline \"%s\" does not exist", name),
			 errhint("SELECT name FROM etl.pipelines lists the pipelines.")));
	}
	return pipeline_from_row(0);
}

/*
 * etl_catalog_load_all reads every pipeline, in the order of their names,
 * as a list of EtlPipeline * allocated in the caller's memory context (the
 * current one when called, which SPI leaves for its own).
 */
List *
etl_catalog_load_all(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext old;
	List *result = NIL;
	uint64 n;

	n = etl_spi_exec("SELECT " PIPELINE_COLUMNS
					 " FROM etl.pipelines ORDER BY name",
					 NULL, SPI_OK_SELECT, InvalidSnapshot);
	old = MemoryContextSwitchTo(cxt);
	for (uint64 i = 0; i < n; i++)
		result = lappend(result, pipeline_from_row(i));
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * add_definition_args appends the 20 defining columns of a pipeline, in the
 * order of the INSERT and UPDATE below.
 */
static void
add_definition_args(EtlArgs *args, EtlPipeline *p)
{
	etl_args_add_text(args, p->name);
	etl_args_add(args, REGROLEOID, ObjectIdGetDatum(p->owner), false);
	etl_args_add_text(args, p->source);
	etl_args_add_text(args, p->target);
	etl_args_add(args, TEXTARRAYOID, list_to_text_array(p->key), false);
	etl_args_add_text(args, etl_mode_names[p->mode]);
	etl_args_add_text(args, p->watermark_column);
	etl_args_add(args, INTERVALOID, IntervalPGetDatum(p->overlap), false);
	etl_args_add_text(args, p->transform);
	etl_args_add_text(args, etl_load_names[p->load]);
	etl_args_add(args, INT8OID, Int64GetDatum(p->batch_size),
				 p->batch_size == 0);
	etl_args_add(args, NUMERICOID, NumericGetDatum(p->error_threshold), false);
	etl_args_add(args, INT4OID, Int32GetDatum(p->max_attempts), false);
	etl_args_add_text(args, etl_retry_policy_names[p->retry_policy]);
	etl_args_add(args, INTERVALOID, IntervalPGetDatum(p->retry_base_delay),
				 false);
	etl_args_add(args, INTERVALOID, IntervalPGetDatum(p->retry_max_delay),
				 false);
	etl_args_add_text(args, etl_schema_policy_names[p->on_schema_change]);
	etl_args_add(args, JSONBOID, JsonbPGetDatum(p->options), false);
	etl_args_add(args, INT4OID, Int32GetDatum(p->alert_after_failures), false);
	etl_args_add(
		args, JSONBOID,
		p->source_columns
			? DirectFunctionCall1(jsonb_in, CStringGetDatum(p->source_columns))
			: (Datum) 0,
		p->source_columns == NULL);
}

/*
 * etl_catalog_insert stores a new, validated pipeline and returns its id.
 */
int64
etl_catalog_insert(EtlPipeline *p)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	add_definition_args(&args, p);
	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"INSERT INTO etl.pipelines (name, owner, source, target, key,"
		" mode, watermark_column, overlap, transform, load, batch_size,"
		" error_threshold, max_attempts, retry_policy, retry_base_delay,"
		" retry_max_delay, on_schema_change, options, alert_after_failures,"
		" source_columns)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
		" $13, $14, $15, $16, $17, $18, $19, $20) RETURNING pipeline_id",
		&args, SPI_OK_INSERT_RETURNING, InvalidSnapshot);
	etl_restore_user(&sw);
	p->id = etl_spi_int64(0, 0, 0);
	return p->id;
}

/*
 * etl_catalog_update rewrites the definition and watermark of a pipeline.
 */
void
etl_catalog_update(EtlPipeline *p)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	add_definition_args(&args, p);
	etl_args_add_text(&args, p->watermark);
	etl_args_add_int8(&args, p->id);
	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"UPDATE etl.pipelines SET name = $1, owner = $2, source = $3,"
		" target = $4, key = $5, mode = $6, watermark_column = $7,"
		" overlap = $8, transform = $9, load = $10, batch_size = $11,"
		" error_threshold = $12, max_attempts = $13, retry_policy = $14,"
		" retry_base_delay = $15, retry_max_delay = $16,"
		" on_schema_change = $17, options = $18,"
		" alert_after_failures = $19, source_columns = $20, watermark = $21,"
		" updated_at = pg_catalog.now()"
		" WHERE pipeline_id OPERATOR(pg_catalog.=) $22",
		&args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_delete removes a pipeline with its runs, batches and dead
 * letters (foreign keys cascade) and its snapshot signatures.
 */
void
etl_catalog_delete(EtlPipeline *p)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_become_extension_owner(&sw);
	etl_spi_exec("DELETE FROM etl.snapshot_signatures"
				 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
				 &args, SPI_OK_DELETE, InvalidSnapshot);
	etl_spi_exec("DELETE FROM etl.pipelines"
				 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
				 &args, SPI_OK_DELETE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_forget_signatures deletes the snapshot signatures of the keys
 * whose hashes key_hashes (bytea[]) holds, of one pipeline.  Signatures are
 * written as the extension owner from values the run computed as the
 * pipeline owner and keeps in C memory: no role but the extension owner
 * writes etl.snapshot_signatures.
 */
void
etl_catalog_forget_signatures(int64 pipeline_id, Datum key_hashes)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, pipeline_id);
	etl_args_add(&args, BYTEAARRAYOID, key_hashes, false);
	etl_become_extension_owner(&sw);
	etl_spi_exec("DELETE FROM etl.snapshot_signatures AS s"
				 " WHERE s.pipeline_id OPERATOR(pg_catalog.=) $1"
				 " AND s.key_hash OPERATOR(pg_catalog.=) ANY ($2)",
				 &args, SPI_OK_DELETE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_remember_signatures stores the signatures of one pipeline's
 * keys: key_hashes, row_hashes (bytea[]) and keys (jsonb[]) are parallel
 * arrays.  With all_new (the pipeline has no signature yet) they are
 * inserted, otherwise an existing signature of the key is replaced.
 */
void
etl_catalog_remember_signatures(int64 pipeline_id, Datum key_hashes,
								Datum row_hashes, Datum keys, bool all_new)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, pipeline_id);
	etl_args_add(&args, BYTEAARRAYOID, key_hashes, false);
	etl_args_add(&args, BYTEAARRAYOID, row_hashes, false);
	etl_args_add(&args, JSONBARRAYOID, keys, false);
	etl_become_extension_owner(&sw);
	etl_spi_exec(psprintf("INSERT INTO etl.snapshot_signatures AS s"
						  " (pipeline_id, key_hash, row_hash, key)"
						  " SELECT $1, u.kh, u.rh, u.k FROM ROWS FROM ("
						  "pg_catalog.unnest($2), pg_catalog.unnest($3),"
						  " pg_catalog.unnest($4)) AS u(kh, rh, k)%s",
						  all_new ? ""
								  : " ON CONFLICT (pipeline_id, key_hash) DO"
									" UPDATE SET row_hash = EXCLUDED.row_hash,"
									" key = EXCLUDED.key"),
				 &args, SPI_OK_INSERT, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_set_watermark stores a new watermark (NULL: none).
 */
void
etl_catalog_set_watermark(EtlPipeline *p, const char *watermark)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_text(&args, watermark);
	etl_become_extension_owner(&sw);
	etl_spi_exec("UPDATE etl.pipelines SET watermark = $2,"
				 " updated_at = pg_catalog.now()"
				 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
				 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_next_run_id draws a run id.
 */
int64
etl_catalog_next_run_id(void)
{
	EtlUserSwitch sw;

	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"SELECT "
		"pg_catalog.nextval('etl.runs_run_id_seq'::pg_catalog.regclass)",
		NULL, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	return etl_spi_int64(0, 0, 0);
}

/*
 * add_ms appends a stage duration; negative means not measured (NULL).
 */
static void
add_ms(EtlArgs *args, double ms)
{
	etl_args_add(args, FLOAT8OID, Float8GetDatum(ms), ms < 0);
}

/*
 * etl_catalog_record_run inserts the row of etl.runs of a finished run.
 */
void
etl_catalog_record_run(EtlRunRecord *r)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, r->run_id);
	etl_args_add_int8(&args, r->pipeline_id);
	etl_args_add_text(&args, r->pipeline);
	etl_args_add_text(&args, r->status);
	etl_args_add_int8(&args, r->rows_extracted);
	etl_args_add_int8(&args, r->rows_inserted);
	etl_args_add_int8(&args, r->rows_updated);
	etl_args_add_int8(&args, r->rows_deleted);
	etl_args_add_int8(&args, r->rows_unchanged);
	etl_args_add_int8(&args, r->rows_rejected);
	etl_args_add_text(&args, r->watermark_from);
	etl_args_add_text(&args, r->watermark_to);
	etl_args_add(&args, INT4OID, Int32GetDatum(r->attempts), false);
	etl_args_add(&args, TIMESTAMPTZOID, TimestampTzGetDatum(r->started_at),
				 false);
	etl_args_add(&args, TIMESTAMPTZOID, TimestampTzGetDatum(r->finished_at),
				 false);
	etl_args_add_text(&args, r->error);
	etl_args_add_text(&args, r->sqlstate);
	etl_args_add_text(&args, r->error_class);
	etl_args_add(&args, REGROLEOID, ObjectIdGetDatum(r->run_by), false);
	etl_args_add_text(&args, r->triggered_by);
	add_ms(&args, r->extract_ms);
	add_ms(&args, r->transform_ms);
	add_ms(&args, r->check_ms);
	add_ms(&args, r->load_ms);
	etl_args_add(
		&args, JSONBOID,
		r->attempt_errors
			? DirectFunctionCall1(jsonb_in, CStringGetDatum(r->attempt_errors))
			: (Datum) 0,
		r->attempt_errors == NULL);

	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"INSERT INTO etl.runs (run_id, pipeline_id, pipeline, status,"
		" rows_extracted, rows_inserted, rows_updated, rows_deleted,"
		" rows_unchanged, rows_rejected, watermark_from, watermark_to,"
		" attempts, started_at, finished_at, duration, error, sqlstate,"
		" error_class, run_by, triggered_by, extract_ms, transform_ms,"
		" check_ms, load_ms, attempt_errors)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
		" $13, $14, $15, $15 OPERATOR(pg_catalog.-) $14, $16, $17, $18,"
		" $19, $20, $21, $22, $23, $24, $25)",
		&args, SPI_OK_INSERT, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_record_batch inserts a row of the batch log for a run; its
 * rows are those of its range, past the run's starting watermark (rows an
 * overlap re-read lie before it).
 */
void
etl_catalog_record_batch(EtlRunRecord *r, const char *kind, const char *status)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, r->run_id);
	etl_args_add_int8(&args, r->pipeline_id);
	etl_args_add_text(&args, r->pipeline);
	etl_args_add_text(&args, kind);
	etl_args_add_text(&args, r->watermark_from);
	etl_args_add_text(&args, r->watermark_to);
	etl_args_add_text(&args, status);
	etl_args_add_int8(&args, Max(r->rows_new, 0));

	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"INSERT INTO etl.batches (run_id, pipeline_id, pipeline, kind,"
		" range_from, range_to, status, rows)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		&args, SPI_OK_INSERT, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_finish_batch sets the status of a batch row written by
 * etl_batch_start (a step of catch-up or backfill) from its run, with the
 * rows of its range (see etl_catalog_record_batch).
 */
void
etl_catalog_finish_batch(int64 batch_id, EtlRunRecord *r, const char *status,
						 const char *error)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, batch_id);
	etl_args_add_int8(&args, r->run_id);
	etl_args_add_text(&args, status);
	etl_args_add_int8(&args, Max(r->rows_new, 0));
	etl_args_add_int8(&args, r->pipeline_id);
	etl_args_add_text(&args, r->watermark_from);
	etl_args_add_text(&args, r->watermark_to);
	etl_args_add_text(&args, error);
	etl_become_extension_owner(&sw);
	/* a catch-up step learns its range from its run */
	etl_spi_exec("UPDATE etl.batches SET run_id = $2, status = $3, rows = $4,"
				 " range_from = COALESCE(range_from, $6),"
				 " range_to = COALESCE(range_to, $7), error = $8,"
				 " updated_at = pg_catalog.now()"
				 " WHERE batch_id OPERATOR(pg_catalog.=) $1"
				 " AND pipeline_id OPERATOR(pg_catalog.=) $5",
				 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_complete_batch marks a step's batch row completed.
 */
void
etl_catalog_complete_batch(int64 batch_id, EtlRunRecord *r)
{
	etl_catalog_finish_batch(batch_id, r, "completed", NULL);
}

/*
 * set_pipeline_locktag fills the tag of a pipeline's run lock.
 */
static void
set_pipeline_locktag(LOCKTAG *tag, int64 pipeline_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (pipeline_id >> 32),
						 (uint32) pipeline_id, ETL_LOCKTAG_CLASS);
}

/*
 * etl_lock_pipeline takes the run lock of a pipeline (ExclusiveLock, held
 * until the end of the transaction).  Runs try it without waiting: a false
 * result means another backend runs the pipeline.  alter, drop and
 * reset_watermark wait for it, so they never change a pipeline under a
 * running run.
 */
bool
etl_lock_pipeline(int64 pipeline_id, bool wait)
{
	LOCKTAG tag;

	set_pipeline_locktag(&tag, pipeline_id);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) !=
		   LOCKACQUIRE_NOT_AVAIL;
}

/*
 * etl_catalog_lock_key takes a KEY SHARE lock on a pipeline's row (held
 * until the end of the transaction) and returns false when the row is gone,
 * dropped by a transaction that committed while this one waited.  A drop
 * deletes the row, so it waits for the holder, and the holder for a drop in
 * progress; runs, alter and reset never conflict with it.
 */
bool
etl_catalog_lock_key(int64 pipeline_id)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_int8(&args, pipeline_id);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT 1 FROM etl.pipelines"
					 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
					 " FOR KEY SHARE",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	return n > 0;
}

/*
 * etl_catalog_try_lock_key takes a KEY SHARE lock on a pipeline's row, as
 * etl_catalog_lock_key(), without waiting: false when the row is gone or a
 * drop in progress has deleted it (alter and reset, which do not change
 * the row's key, never conflict with it).  A caller that then writes a row
 * referring to the pipeline cannot be made to wait for a drop, nor fail on
 * the foreign key once it commits.
 */
bool
etl_catalog_try_lock_key(int64 pipeline_id)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_int8(&args, pipeline_id);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT 1 FROM etl.pipelines"
					 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
					 " FOR KEY SHARE SKIP LOCKED",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	return n > 0;
}

/*
 * etl_pipeline_lock_holder returns the pid of the backend holding a
 * pipeline's run lock, or 0.
 */
int
etl_pipeline_lock_holder(int64 pipeline_id)
{
	LOCKTAG tag;
	LockData *data = GetLockStatusData();

	set_pipeline_locktag(&tag, pipeline_id);
	for (int i = 0; i < data->nelements; i++)
	{
		LockInstanceData *li = &data->locks[i];

		if (memcmp(&li->locktag, &tag, sizeof(LOCKTAG)) == 0 &&
			(li->holdMask & LOCKBIT_ON(ExclusiveLock)) != 0 &&
			li->pid != MyProcPid)
			return li->pid;
	}
	return 0;
}

/*
 * json_text appends a JSON string, or null.
 */
static void
json_text(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ", \"%s\": ", key);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * json_ms appends a stage duration, or null when not measured.
 */
static void
json_ms(StringInfo buf, const char *key, double ms)
{
	if (ms < 0)
		appendStringInfo(buf, ", \"%s\": null", key);
	else
		appendStringInfo(buf, ", \"%s\": %.3f", key, ms);
}

/*
 * etl_run_record_json appends a run as a JSON object with the columns of
 * etl.runs (what the autonomous writer inserts for a failed run).
 */
void
etl_run_record_json(StringInfo buf, EtlRunRecord *r)
{
	appendStringInfo(
		buf, "{\"run_id\": " INT64_FORMAT ", \"pipeline_id\": " INT64_FORMAT,
		r->run_id, r->pipeline_id);
	json_text(buf, "pipeline", r->pipeline);
	json_text(buf, "status", r->status);
	appendStringInfo(
		buf,
		", \"rows_extracted\": " INT64_FORMAT
		", \"rows_inserted\": " INT64_FORMAT
		", \"rows_updated\": " INT64_FORMAT ", \"rows_deleted\": " INT64_FORMAT
		", \"rows_unchanged\": " INT64_FORMAT
		", \"rows_rejected\": " INT64_FORMAT ", \"attempts\": %d",
		Max(r->rows_extracted, 0), r->rows_inserted, r->rows_updated,
		r->rows_deleted, r->rows_unchanged, r->rows_rejected, r->attempts);
	json_text(buf, "watermark_from", r->watermark_from);
	json_text(buf, "watermark_to", r->watermark_to);
	json_text(buf, "started_at", timestamptz_to_str(r->started_at));
	json_text(buf, "finished_at", timestamptz_to_str(r->finished_at));
	json_text(buf, "duration",
			  psprintf(INT64_FORMAT " microseconds",
					   r->finished_at - r->started_at));
	json_text(buf, "error", r->error);
	json_text(buf, "sqlstate", r->sqlstate);
	json_text(buf, "error_class", r->error_class);
	json_text(buf, "run_by",
			  quote_identifier(GetUserNameFromId(r->run_by, false)));
	json_text(buf, "triggered_by", r->triggered_by);
	json_ms(buf, "extract_ms", r->extract_ms);
	json_ms(buf, "transform_ms", r->transform_ms);
	json_ms(buf, "check_ms", r->check_ms);
	json_ms(buf, "load_ms", r->load_ms);
	appendStringInfo(buf, ", \"attempt_errors\": %s}",
					 r->attempt_errors ? r->attempt_errors : "null");
}

/*
 * etl_option_text returns the text value of a key of the pipeline's
 * options, or dflt when absent or null; raises 22023 when it is not a
 * string.
 */
char *
etl_option_text(EtlPipeline *p, const char *key, const char *dflt)
{
	JsonbValue k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&p->options->root, JB_FOBJECT, &k);
	if (v == NULL || v->type == jbvNull)
		return dflt ? pstrdup(dflt) : NULL;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of pipeline \"%s\" must be a string",
						key, p->name),
				 errhint("Use e.g. options => '{\"%s\": \"%s\"}'.", key,
						 dflt ? dflt : "...")));
	return pnstrdup(v->val.string.val, v->val.string.len);
}
