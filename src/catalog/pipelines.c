/*-------------------------------------------------------------------------
 *
 * pipelines.c
 *	  Reading and writing the definitions of pipelines (etl.pipelines) and
 *	  the signatures of mode snapshot (etl.snapshot_signatures).
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "base/security.h"
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
 * etl_mode_lookup returns the mode of a name, or raises 22023 listing the
 * valid names.
 */
EtlMode
etl_mode_lookup(const char *name)
{
	return etl_name_lookup(etl_mode_names, ETL_MODE_COUNT, name, "mode");
}

/*
 * etl_load_lookup returns the load of a name, or raises 22023 listing the
 * valid names.
 */
EtlLoad
etl_load_lookup(const char *name)
{
	return etl_name_lookup(etl_load_names, ETL_LOAD_COUNT, name, "load");
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
	p->mode = etl_mode_lookup(etl_spi_text(row, Anum_pipeline_mode));
	p->watermark_column = etl_spi_text(row, Anum_pipeline_watermark_column);
	d = etl_spi_datum(row, Anum_pipeline_overlap, &isnull);
	p->overlap = DatumGetIntervalP(datumCopy(d, false, sizeof(Interval)));
	p->transform = etl_spi_text(row, Anum_pipeline_transform);
	p->load = etl_load_lookup(etl_spi_text(row, Anum_pipeline_load));
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
 * etl_catalog_load_runnable reads the pipeline named by argument arg of a
 * SQL-callable function (22004 when it is NULL) and checks that the caller
 * may run it.
 */
EtlPipeline *
etl_catalog_load_runnable(FunctionCallInfo fcinfo, int arg)
{
	EtlPipeline *p;

	if (PG_ARGISNULL(arg))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(arg)), false,
						 InvalidSnapshot);
	etl_check_pipeline_owner(p->name, p->owner, "run");
	return p;
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
