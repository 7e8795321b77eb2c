/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *	  etl_create_pipeline, etl_alter_pipeline, etl_drop_pipeline and
 *	  etl_reset_watermark: defining pipelines, with full validation.  A drop
 *	  also removes the pipeline's pg_cron job (schedule.c).
 *
 *	  Everything given is checked before anything is stored: the names, the
 *	  source and target (and the owner's privileges on them), the mode, its
 *	  watermark column and its type, the key, the transform (parsed and
 *	  analysed as the owner in a security-restricted operation, never
 *	  executed), every setting, and what load partition_swap needs of the
 *	  target (swap.c).  Each refusal has its own
 *	  SQLSTATE, a message naming the culprit and a hint.  Relation names are
 *	  resolved with the caller's search_path and stored schema-qualified;
 *	  everything after runs under the pinned settings.
 *
 *	  alter, drop and reset take the pipeline's run lock and so wait for a
 *	  run in progress; a run never sees a definition change under it.  They
 *	  check ownership before they queue for the lock, and again once they
 *	  hold it.
 *
 * IDENTIFICATION
 *	  src/api/pipeline.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "api/pipeline.h"
#include "api/schedule.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "catalog/run_lock.h"
#include "catalog/unrecorded.h"
#include "checks/quality.h"
#include "loads/swap.h"
#include "modes/drift.h"
#include "modes/extract.h"
#include "modes/fdw.h"
#include "modes/sequences.h"
#include "modes/track.h"
#include "sql/columns.h"
#include "sql/names.h"

PG_FUNCTION_INFO_V1(etl_create_pipeline);
PG_FUNCTION_INFO_V1(etl_alter_pipeline);
PG_FUNCTION_INFO_V1(etl_alter_pipeline_force);
PG_FUNCTION_INFO_V1(etl_drop_pipeline);
PG_FUNCTION_INFO_V1(etl_reset_watermark);

/* argument positions shared by etl_create_pipeline and etl_alter_pipeline */
enum
{
	ARG_NAME,
	ARG_SOURCE,
	ARG_TARGET,
	ARG_KEY,
	ARG_MODE,
	ARG_WATERMARK_COLUMN,
	ARG_OVERLAP,
	ARG_TRANSFORM,
	ARG_LOAD,
	ARG_BATCH_SIZE,
	ARG_ERROR_THRESHOLD,
	ARG_MAX_ATTEMPTS,
	ARG_RETRY_POLICY,
	ARG_RETRY_BASE_DELAY,
	ARG_RETRY_MAX_DELAY,
	ARG_ON_SCHEMA_CHANGE,
	ARG_OPTIONS,
	ARG_ALERT_AFTER_FAILURES,
	NUM_DEFINITION_ARGS
};

/* relations of a definition, resolved with the caller's search_path */
typedef struct ResolvedRelations
{
	Oid source;
	Oid target;
} ResolvedRelations;

/*
 * arg_cstring returns a text argument as a C string, NULL for SQL NULL.
 */
static char *
arg_cstring(FunctionCallInfo fcinfo, int i)
{
	if (PG_ARGISNULL(i))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/*
 * check_name validates a pipeline name: not NULL, not empty, at most 63
 * bytes (it becomes part of derived names such as the pg_cron job), and
 * free of control characters.
 */
static void
check_name(const char *name)
{
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline name must not be NULL"),
				 errhint("Give the pipeline a name, e.g. name => 'orders'.")));
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline name must not be empty"),
				 errhint("Give the pipeline a name, e.g. name => 'orders'.")));
	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR, (errcode(ERRCODE_NAME_TOO_LONG),
						errmsg("pipeline name \"%s\" is too long", name),
						errdetail("It is %zu bytes long; the limit is %d.",
								  strlen(name), NAMEDATALEN - 1),
						errhint("Choose a shorter name.")));
	for (const char *c = name; *c; c++)
		if ((unsigned char) *c < 0x20 || *c == 0x7f)
			ereport(
				ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline name must not contain control characters"),
				 errhint("Use printable characters only.")));
}

/*
 * resolve_or_fail resolves a relation name given by the caller (search_path
 * applies) and returns its OID.
 */
static Oid
resolve_or_fail(const char *name, const char *role)
{
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s of a pipeline must not be NULL", role),
				 errhint("Name a table, e.g. %s => 'schema.table'.", role)));
	return etl_resolve_relation(name, role, false);
}

/*
 * check_relations checks the kinds of source and target and the pipeline
 * owner's privileges on them for the pipeline's load (the owner's, not the
 * caller's: a run has its owner's rights, whoever altered it).
 */
static void
check_relations(EtlPipeline *p, ResolvedRelations *rels)
{
	char skind = get_rel_relkind(rels->source);
	char tkind = get_rel_relkind(rels->target);
	Oid user = p->owner;
	AclMode need;

	if (skind != RELKIND_RELATION && skind != RELKIND_VIEW &&
		skind != RELKIND_MATVIEW && skind != RELKIND_FOREIGN_TABLE &&
		skind != RELKIND_PARTITIONED_TABLE)
		ereport(
			ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("source %s is not a table, view, materialized view or "
					"foreign table",
					p->source),
			 errhint(
				 "Point source at a relation the pipeline can SELECT from.")));
	if (tkind != RELKIND_RELATION && tkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("target %s is not a table", p->target),
						errhint("The target must be an existing plain or "
								"partitioned table.")));
	if (rels->source == rels->target)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("source and target of pipeline \"%s\" are the "
							   "same relation %s",
							   p->name, p->source),
						errhint("A run must not write to its own source.")));

	if (pg_class_aclcheck(rels->source, user, ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read source %s", p->source),
				 errdetail("Role \"%s\" lacks SELECT on it.",
						   GetUserNameFromId(user, false)),
				 errhint("A pipeline runs with its owner's rights: GRANT "
						 "SELECT ON %s TO %s.",
						 p->source,
						 quote_identifier(GetUserNameFromId(user, false)))));

	need = ACL_SELECT | ACL_INSERT;
	if (p->load == ETL_LOAD_MERGE)
		need |= ACL_UPDATE;
	if (p->load == ETL_LOAD_DELETE_INSERT)
		need |= ACL_DELETE;
	if (pg_class_aclmask(rels->target, user, need, ACLMASK_ALL) != need)
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to load target %s", p->target),
			 errdetail("Load %s needs SELECT, INSERT%s%s on it.",
					   etl_load_names[p->load],
					   p->load == ETL_LOAD_MERGE ? ", UPDATE" : "",
					   p->load == ETL_LOAD_DELETE_INSERT ? ", DELETE" : ""),
			 errhint(
				 "A pipeline runs with its owner's rights: grant them to %s.",
				 quote_identifier(GetUserNameFromId(user, false)))));
}

/*
 * check_serial_sequence refuses a serial-mode watermark column whose values
 * come from a sequence that caches more than one value per backend: ids
 * would then commit far out of order and the wait for writers could not
 * cover them.
 */
static void
check_serial_sequence(EtlPipeline *p, Oid relid)
{
	const char *unsafe;
	List *seqs = etl_column_sequences(relid, p->watermark_column, &unsafe);
	ListCell *lc;

	foreach (lc, seqs)
	{
		Oid seqid = lfirst_oid(lc);
		HeapTuple tup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
		int64 cache;

		if (!HeapTupleIsValid(tup))
			continue;
		cache = ((Form_pg_sequence) GETSTRUCT(tup))->seqcache;
		ReleaseSysCache(tup);
		if (cache > 1)
			ereport(
				ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("watermark column \"%s\" of %s draws from sequence "
						"%s, which caches " INT64_FORMAT " values",
						p->watermark_column, p->source,
						etl_relation_sql(seqid), cache),
				 errdetail("With a cache, ids commit out of order across "
						   "sessions and mode serial could skip rows."),
				 errhint("ALTER SEQUENCE %s CACHE 1, or use mode => 'xid' "
						 "(exact change tracking).",
						 etl_relation_sql(seqid))));
	}
}

/*
 * notice_unsafe_serial warns, in a NOTICE pointing to mode xid, when a
 * serial-mode pipeline's source has ids a run cannot wait for (a view, a
 * foreign table, ids from no sequence): a smaller id committed after a
 * larger one was loaded would be skipped.
 */
static void
notice_unsafe_serial(EtlPipeline *p, Oid source)
{
	const char *unsafe;

	if (p->mode != ETL_MODE_SERIAL)
		return;
	(void) etl_column_sequences(source, p->watermark_column, &unsafe);
	if (unsafe == NULL)
		return;
	ereport(NOTICE,
			(errmsg("pipeline \"%s\" may skip ids of %s that commit after a "
					"larger one was loaded",
					p->name, p->source),
			 errdetail("%s", unsafe),
			 errhint("Use mode => 'xid' on the table that is written "
					 "(SELECT etl_track_changes(...)) for exact capture.")));
}

/*
 * interval_is_negative tells whether an interval is below zero.
 */
static bool
interval_is_negative(Interval *iv)
{
	Interval zero = { 0 };

	return DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(iv),
											IntervalPGetDatum(&zero)));
}

/*
 * interval_is_zero tells whether an interval is zero.
 */
static bool
interval_is_zero(Interval *iv)
{
	return iv->time == 0 && iv->day == 0 && iv->month == 0;
}

/*
 * check_settings validates the numeric and interval settings.
 */
static void
check_settings(EtlPipeline *p)
{
	Numeric zero = int64_to_numeric(0);
	Numeric hundred = int64_to_numeric(100);

	if (numeric_is_nan(p->error_threshold) ||
		DatumGetBool(DirectFunctionCall2(numeric_lt,
										 NumericGetDatum(p->error_threshold),
										 NumericGetDatum(zero))) ||
		DatumGetBool(DirectFunctionCall2(numeric_gt,
										 NumericGetDatum(p->error_threshold),
										 NumericGetDatum(hundred))))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("error_threshold must be between 0 and 100"),
						errdetail("It is the percentage of rejected rows "
								  "above which a run fails."),
						errhint("Use e.g. error_threshold => 5.")));
	if (p->max_attempts < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("max_attempts must be at least 1"),
						errhint("max_attempts => 1 means no retry.")));
	if (p->alert_after_failures < 1)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("alert_after_failures must be at least 1"),
			 errdetail("It is the number of consecutive failed runs after "
					   "which each failure is announced on etl_events."),
			 errhint("alert_after_failures => 1 announces every failure.")));
	if (interval_is_negative(p->retry_base_delay) ||
		interval_is_negative(p->retry_max_delay))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("retry delays must not be negative")));
	if (DatumGetBool(DirectFunctionCall2(
			interval_gt, IntervalPGetDatum(p->retry_base_delay),
			IntervalPGetDatum(p->retry_max_delay))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retry_base_delay must not exceed retry_max_delay"),
				 errhint("Raise retry_max_delay or lower retry_base_delay.")));
	if (interval_is_negative(p->overlap))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("overlap must not be negative")));
	if (!interval_is_zero(p->overlap) && p->mode != ETL_MODE_TIMESTAMP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("overlap only applies to mode timestamp"),
				 errhint("Remove overlap, or use mode => 'timestamp'.")));
	if (!JB_ROOT_IS_OBJECT(p->options) || JB_ROOT_IS_SCALAR(p->options))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("options must be a JSON object"),
						errhint("Use e.g. options => '{}'.")));
}

/*
 * check_key validates the key (defaulting it to the target's primary key).
 */
static void
check_key(EtlPipeline *p, Oid target)
{
	ListCell *lc;

	if (p->key == NIL)
		p->key = etl_primary_key_columns(target);
	if (p->key == NIL && p->load != ETL_LOAD_APPEND)
		ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
						errmsg("target %s has no primary key and pipeline "
							   "\"%s\" names no key",
							   p->target, p->name),
						errhint("Pass key => ARRAY['column', ...], or add a "
								"primary key to the target.")));
	foreach (lc, p->key)
	{
		const char *k = lfirst(lc);
		ListCell *lc2;

		if (get_attnum(target, k) == InvalidAttrNumber)
			ereport(
				ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("key column \"%s\" does not exist in target %s", k,
						p->target),
				 errhint("Name columns of the target in key => ARRAY[...].")));
		for_each_cell(lc2, p->key,
					  lnext(p->key, lc)) if (strcmp(k, lfirst(lc2)) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("key column \"%s\" is named more than once", k)));
	}
	etl_require_unique_key(p, target);
}

/*
 * check_keyless_overlap refuses an overlap for a pipeline that appends
 * without a key (the key defaulted already): each run re-reads the overlap
 * window, and such a load inserts every row it reads, so every re-read row
 * would be loaded again, run after run.
 */
static void
check_keyless_overlap(EtlPipeline *p)
{
	if (p->load != ETL_LOAD_APPEND || p->key != NIL ||
		interval_is_zero(p->overlap))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
			 errmsg("pipeline \"%s\" appends without a key and cannot have "
					"an overlap",
					p->name),
			 errdetail("An overlap re-reads the rows of a window before the "
					   "watermark at every run, and load append without a "
					   "key inserts every row it reads: each re-read row "
					   "would be in the target again."),
			 errhint("Give it a key (key => ARRAY['column', ...], or a "
					 "primary key on the target), which skips the rows "
					 "loaded before, or leave overlap out.")));
}

/*
 * check_xid_source checks what mode xid needs: a local table whose changes
 * etl_track_changes() tracks, and no batch_size (a run takes everything
 * committed since the previous run's snapshot).  The watermark column is
 * _etl_xid, whether named or not.
 */
static void
check_xid_source(EtlPipeline *p, Oid source)
{
	char kind = get_rel_relkind(source);

	if (p->watermark_column == NULL)
		p->watermark_column = pstrdup(ETL_COL_XID);
	else if (strcmp(p->watermark_column, ETL_COL_XID) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mode xid tracks changes through column \"%s\", not "
						"\"%s\"",
						ETL_COL_XID, p->watermark_column),
				 errhint("Leave watermark_column out with mode => 'xid'.")));
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("mode xid needs a local table as source, and %s is "
						"not one",
						p->source),
				 errdetail("Transaction ids are only meaningful for the "
						   "tables of this cluster."),
				 errhint("Use mode => 'timestamp' with an overlap for views "
						 "and foreign tables.")));
	if (get_attnum(source, ETL_COL_XID) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("source %s does not track its changes", p->source),
				 errdetail("Mode xid reads the column \"%s\" that "
						   "etl_track_changes() adds.",
						   ETL_COL_XID),
				 errhint("Run SELECT etl_track_changes(%s); as the owner of "
						 "the table.",
						 quote_literal_cstr(p->source))));
	if (p->batch_size > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("batch_size does not apply to mode xid"),
				 errdetail("A run takes every change committed since the "
						   "previous run's snapshot."),
				 errhint("Leave batch_size out.")));
}

/*
 * check_cdc_source checks what mode cdc needs of the change rows: an
 * operation column of a string type, and the key columns under the
 * target's names (deletes match on them).
 */
static void
check_cdc_source(EtlPipeline *p, Oid source)
{
	char *op = etl_option_text(p, "op_column", ETL_CDC_DEFAULT_OP);
	AttrNumber attnum = get_attnum(source, op);
	ListCell *lc;

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("operation column \"%s\" does not exist in source %s",
						op, p->source),
				 errdetail("Mode cdc reads each change row's operation (c, "
						   "r, i, u or d) from it."),
				 errhint("Name it with options => '{\"op_column\": "
						 "\"...\"}'.")));
	if (TypeCategory(get_atttype(source, attnum)) != TYPCATEGORY_STRING)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("operation column \"%s\" of %s is of type %s, not a "
						"string type",
						op, p->source,
						format_type_be(get_atttype(source, attnum)))));
	if (p->key == NIL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mode cdc needs a key"),
						errdetail("Only the last change of each key counts, "
								  "and deletes find their rows by key."),
						errhint("Pass key => ARRAY['column', ...], or give "
								"the target a primary key.")));
	foreach (lc, p->key)
		if (get_attnum(source, lfirst(lc)) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" does not exist in source %s",
							(char *) lfirst(lc), p->source),
					 errdetail("In mode cdc the change rows carry the key "
							   "under the target's column names."),
					 errhint("Rename the column in the change table, or "
							 "choose another key.")));
}

/*
 * check_snapshot checks what mode snapshot needs: a key (signatures are
 * kept per key) and, with options.delete_mode 'soft', a timestamp column in
 * the target to stamp vanished rows with.
 */
static void
check_snapshot(EtlPipeline *p, Oid target)
{
	char *mode = etl_option_text(p, "delete_mode", "hard");

	if (p->key == NIL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mode snapshot needs a key"),
						errdetail("It keeps one signature per key to find "
								  "changed and vanished rows."),
						errhint("Pass key => ARRAY['column', ...], or give "
								"the target a primary key.")));
	if (strcmp(mode, "soft") == 0)
	{
		char *col = etl_option_text(p, "soft_delete_column", "_deleted_at");
		AttrNumber attnum = get_attnum(target, col);
		Oid type = attnum != InvalidAttrNumber ? get_atttype(target, attnum)
											   : InvalidOid;

		if (type != TIMESTAMPTZOID && type != TIMESTAMPOID)
			ereport(
				ERROR,
				(errcode(attnum == InvalidAttrNumber
							 ? ERRCODE_UNDEFINED_COLUMN
							 : ERRCODE_DATATYPE_MISMATCH),
				 errmsg("soft delete column \"%s\" of target %s %s", col,
						p->target,
						attnum == InvalidAttrNumber ? "does not exist"
													: "is not a timestamp"),
				 errdetail("With delete_mode soft, rows whose key left the "
						   "source get the run's start time in it."),
				 errhint("ALTER TABLE %s ADD COLUMN %s timestamptz; or name "
						 "another column with options => "
						 "'{\"soft_delete_column\": ...}'.",
						 p->target, quote_identifier(col))));
	}
	else if (strcmp(mode, "hard") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid delete_mode \"%s\" of pipeline \"%s\"",
							   mode, p->name),
						errhint("Valid values are: hard, soft.")));
}

/*
 * check_full checks what mode full allows: no watermark (column), no
 * batch_size (the whole source replaces the target).
 */
static void
check_full(EtlPipeline *p)
{
	if (p->watermark_column != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mode %s reads the whole source and takes no "
						"watermark_column",
						etl_mode_names[p->mode]),
				 errhint("Leave watermark_column out with mode => '%s'.",
						 etl_mode_names[p->mode])));
	if (p->batch_size > 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("batch_size does not apply to mode %s",
							   etl_mode_names[p->mode]),
						errdetail("Each run reads the whole source, in one "
								  "transaction."),
						errhint("Leave batch_size out.")));
	p->watermark = NULL;
}

/*
 * validate checks a whole definition (relations already resolved) and
 * normalises it for storage.  Runs under the pinned settings.
 */
static void
validate(EtlPipeline *p, ResolvedRelations *rels)
{
	AttrNumber attnum;

	check_name(p->name);
	check_relations(p, rels);

	if (p->mode == ETL_MODE_XID)
		check_xid_source(p, rels->source);
	if (p->mode == ETL_MODE_CDC && p->watermark_column == NULL)
		p->watermark_column = pstrdup(ETL_CDC_DEFAULT_LSN);

	if (p->mode == ETL_MODE_FULL || p->mode == ETL_MODE_SNAPSHOT)
	{
		check_full(p);
		attnum = InvalidAttrNumber;
		goto settings;
	}
	if (p->watermark_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mode %s needs a watermark_column",
						etl_mode_names[p->mode]),
				 errhint("Name the source column that grows with every "
						 "change, e.g. watermark_column => 'updated_at'.")));
	attnum = get_attnum(rels->source, p->watermark_column);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("watermark column \"%s\" does not exist in source %s",
						p->watermark_column, p->source),
				 errhint("Name a column of the source in watermark_column.")));
	etl_check_watermark_type(p, get_atttype(rels->source, attnum));
	if (p->mode == ETL_MODE_SERIAL)
		check_serial_sequence(p, rels->source);
	if (p->mode == ETL_MODE_XID && p->watermark != NULL)
		p->watermark = psprintf(UINT64_FORMAT "/%s", GetSystemIdentifier(),
								etl_xid_watermark_parse(p, p->watermark));

settings:
	check_settings(p);
	check_key(p, rels->target);
	check_keyless_overlap(p);
	if (p->mode == ETL_MODE_CDC)
		check_cdc_source(p, rels->source);
	if (p->mode == ETL_MODE_SNAPSHOT)
		check_snapshot(p, rels->target);

	if (p->transform != NULL)
		p->transform = etl_normalize_transform(p->name, p->transform);
	(void) etl_resolve_columns(p, rels->source, rels->target);
	if (p->load == ETL_LOAD_PARTITION_SWAP)
	{
		etl_swap_check_definition(p, rels->source, rels->target);
		etl_track_refuse_swap(p, rels->target);
	}
	p->source_columns = etl_source_shape(rels->source);

	if (p->watermark != NULL && p->mode != ETL_MODE_XID &&
		p->mode != ETL_MODE_FULL)
		(void) etl_watermark_datum(p, p->watermark,
								   get_atttype(rels->source, attnum), -1);
}

/*
 * apply_args copies the non-NULL definition arguments into p.
 */
static void
apply_args(FunctionCallInfo fcinfo, EtlPipeline *p)
{
	char *s;

	if ((s = arg_cstring(fcinfo, ARG_SOURCE)) != NULL)
		p->source = s;
	if ((s = arg_cstring(fcinfo, ARG_TARGET)) != NULL)
		p->target = s;
	if (!PG_ARGISNULL(ARG_KEY))
	{
		ArrayType *arr = PG_GETARG_ARRAYTYPE_P(ARG_KEY);
		Datum *elems;
		bool *nulls;
		int n;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems,
						  &nulls, &n);
		if (n == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("key must name at least one column"),
							errhint("Pass key => ARRAY['column'], or leave it "
									"out to use the target's primary key.")));
		p->key = NIL;
		for (int i = 0; i < n; i++)
		{
			if (nulls[i] || VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])) == 0)
				ereport(
					ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg(
						 "key must not contain NULL or empty column names")));
			p->key = lappend(p->key, TextDatumGetCString(elems[i]));
		}
	}
	if ((s = arg_cstring(fcinfo, ARG_MODE)) != NULL)
		p->mode = etl_name_lookup(etl_mode_names, ETL_MODE_COUNT, s, "mode");
	if ((s = arg_cstring(fcinfo, ARG_WATERMARK_COLUMN)) != NULL)
		p->watermark_column = s;
	if (!PG_ARGISNULL(ARG_OVERLAP))
		p->overlap = PG_GETARG_INTERVAL_P(ARG_OVERLAP);
	if ((s = arg_cstring(fcinfo, ARG_TRANSFORM)) != NULL)
		p->transform = (s[strspn(s, " \t\r\n\f\v")] == '\0') ? NULL : s;
	if ((s = arg_cstring(fcinfo, ARG_LOAD)) != NULL)
		p->load = etl_name_lookup(etl_load_names, ETL_LOAD_COUNT, s, "load");
	if (!PG_ARGISNULL(ARG_BATCH_SIZE))
	{
		p->batch_size = PG_GETARG_INT64(ARG_BATCH_SIZE);
		if (p->batch_size <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("batch_size must be positive"),
					 errdetail("It is " INT64_FORMAT ".", p->batch_size),
					 errhint("Give the most source rows one run may take, or "
							 "NULL for no limit.")));
	}
	if (!PG_ARGISNULL(ARG_ERROR_THRESHOLD))
		p->error_threshold = PG_GETARG_NUMERIC(ARG_ERROR_THRESHOLD);
	if (!PG_ARGISNULL(ARG_MAX_ATTEMPTS))
		p->max_attempts = PG_GETARG_INT32(ARG_MAX_ATTEMPTS);
	if ((s = arg_cstring(fcinfo, ARG_RETRY_POLICY)) != NULL)
		p->retry_policy = etl_name_lookup(etl_retry_policy_names,
										  ETL_RETRY_COUNT, s, "retry_policy");
	if (!PG_ARGISNULL(ARG_RETRY_BASE_DELAY))
		p->retry_base_delay = PG_GETARG_INTERVAL_P(ARG_RETRY_BASE_DELAY);
	if (!PG_ARGISNULL(ARG_RETRY_MAX_DELAY))
		p->retry_max_delay = PG_GETARG_INTERVAL_P(ARG_RETRY_MAX_DELAY);
	if ((s = arg_cstring(fcinfo, ARG_ON_SCHEMA_CHANGE)) != NULL)
		p->on_schema_change = etl_name_lookup(
			etl_schema_policy_names, ETL_SCHEMA_COUNT, s, "on_schema_change");
	if (!PG_ARGISNULL(ARG_OPTIONS))
		p->options = PG_GETARG_JSONB_P(ARG_OPTIONS);
	if (!PG_ARGISNULL(ARG_ALERT_AFTER_FAILURES))
		p->alert_after_failures = PG_GETARG_INT32(ARG_ALERT_AFTER_FAILURES);
}

/*
 * default_pipeline returns a definition with the defaults of
 * etl_create_pipeline, used where a caller passes an explicit NULL.
 */
static EtlPipeline *
default_pipeline(void)
{
	EtlPipeline *p = palloc0(sizeof(EtlPipeline));

	p->mode = ETL_MODE_TIMESTAMP;
	p->overlap = palloc0(sizeof(Interval));
	p->load = ETL_LOAD_MERGE;
	p->error_threshold = int64_to_numeric(10);
	p->max_attempts = 3;
	p->alert_after_failures = 1;
	p->retry_policy = ETL_RETRY_EXPONENTIAL_JITTER;
	p->retry_base_delay = palloc0(sizeof(Interval));
	p->retry_base_delay->time = USECS_PER_SEC;
	p->retry_max_delay = palloc0(sizeof(Interval));
	p->retry_max_delay->time = 5 * USECS_PER_MINUTE;
	p->on_schema_change = ETL_SCHEMA_FAIL;
	p->options =
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	p->owner = GetUserId();
	return p;
}

/*
 * store_relation_names replaces the given relation names by their
 * schema-qualified, quoted form.
 */
static void
store_relation_names(EtlPipeline *p, ResolvedRelations *rels)
{
	p->source = etl_relation_sql(rels->source);
	p->target = etl_relation_sql(rels->target);
}

/*
 * etl_create_pipeline(name, source, target, key, mode, ...) RETURNS bigint
 *
 * Validates a new pipeline and stores it; returns its id.  Refusals store
 * nothing.
 */
Datum
etl_create_pipeline(PG_FUNCTION_ARGS)
{
	EtlPipeline *p = default_pipeline();
	ResolvedRelations rels;
	int nestlevel;
	int64 id;

	p->name = arg_cstring(fcinfo, ARG_NAME);
	check_name(p->name);
	etl_refuse_on_standby("etl_create_pipeline", etl_pipeline_object(p->name));
	apply_args(fcinfo, p);

	/* names given by the caller resolve with the caller's search_path */
	rels.source = resolve_or_fail(p->source, "source");
	rels.target = resolve_or_fail(p->target, "target");
	store_relation_names(p, &rels);

	etl_spi_connect();
	nestlevel = etl_pin_settings();

	if (etl_catalog_load(p->name, true, InvalidSnapshot) != NULL)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("pipeline \"%s\" already exists", p->name),
						errhint("Choose another name, or change it with "
								"etl_alter_pipeline().")));

	validate(p, &rels);
	id = etl_catalog_insert(p);
	etl_fdw_defaults(p, rels.source);
	notice_unsafe_serial(p, rels.source);

	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_INT64(id);
}

/*
 * lock_and_load checks that the current user may act on a pipeline, takes
 * its run lock (waiting for a run in progress), reads it as now committed
 * and checks again.  The first check reads the definition without the
 * lock, so that a role that may not act on the pipeline never queues for
 * its lock: queued behind a run, it would make every new run of the
 * pipeline return 'skipped' until it got the lock and failed.
 */
static EtlPipeline *
lock_and_load(const char *name, const char *action)
{
	EtlPipeline *p = etl_catalog_load(name, false, InvalidSnapshot);
	int64 id = p->id;

	etl_check_pipeline_owner(p->name, p->owner, action);
	(void) etl_lock_pipeline(id, true);
	{
		Snapshot snap = RegisterSnapshot(GetLatestSnapshot());

		p = etl_catalog_load(name, false, snap);
		UnregisterSnapshot(snap);
	}
	if (p->id != id)
		ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						errmsg("pipeline \"%s\" was dropped and created again "
							   "while waiting for its run lock",
							   name),
						errhint("Try again.")));
	etl_check_pipeline_owner(p->name, p->owner, action);
	return p;
}

/*
 * etl_lock_and_load_pipeline is lock_and_load for other modules: the
 * pipeline as committed once its run lock is held, after checking twice
 * that the current user may act on it.
 */
EtlPipeline *
etl_lock_and_load_pipeline(const char *name, const char *action)
{
	return lock_and_load(name, action);
}

/*
 * alter_pipeline is etl_alter_pipeline: fcinfo holds the definition
 * arguments (ARG_*); force lets a change of mode or watermark column reset
 * the watermark of a pipeline that appends without a key (see
 * etl_check_keyless_reload).
 */
static Datum
alter_pipeline(FunctionCallInfo fcinfo, bool force)
{
	char *name = arg_cstring(fcinfo, ARG_NAME);
	EtlPipeline *p;
	EtlMode old_mode;
	char *old_wm_col;
	char *old_target;
	ResolvedRelations rels;
	int nestlevel;
	bool reset;
	bool had_watermark;
	bool source_given = !PG_ARGISNULL(ARG_SOURCE);
	bool target_given = !PG_ARGISNULL(ARG_TARGET);

	check_name(name);
	etl_refuse_on_standby("etl_alter_pipeline", etl_pipeline_object(name));
	etl_spi_connect();

	/* new relation names resolve with the caller's search_path */
	rels.source =
		source_given
			? resolve_or_fail(arg_cstring(fcinfo, ARG_SOURCE), "source")
			: InvalidOid;
	rels.target =
		target_given
			? resolve_or_fail(arg_cstring(fcinfo, ARG_TARGET), "target")
			: InvalidOid;

	nestlevel = etl_pin_settings();
	p = lock_and_load(name, "alter");
	etl_check_role_exists(p->name, p->owner);
	old_mode = p->mode;
	old_wm_col = p->watermark_column;
	old_target = p->target;
	apply_args(fcinfo, p);
	if (p->mode != old_mode && PG_ARGISNULL(ARG_WATERMARK_COLUMN))
		p->watermark_column = NULL; /* the new mode's default, or none */
	if (!source_given)
		rels.source = etl_resolve_relation(p->source, "source", false);
	if (!target_given)
		rels.target = etl_resolve_relation(p->target, "target", false);
	else if (PG_ARGISNULL(ARG_KEY))
		p->key = NIL; /* a new target without a new key: its primary key */
	store_relation_names(p, &rels);

	reset = p->mode != old_mode ||
			(old_wm_col == NULL) != (p->watermark_column == NULL) ||
			(old_wm_col && strcmp(old_wm_col, p->watermark_column) != 0);
	had_watermark = p->watermark != NULL;
	if (reset)
		p->watermark = NULL;

	validate(p, &rels);

	/*
	 * A reset makes the next run read the source from the beginning: an
	 * append without a key would load the rows it loaded into this target
	 * again (mode full replaces them instead).
	 */
	if (reset && had_watermark && p->mode != ETL_MODE_FULL &&
		strcmp(old_target, p->target) == 0)
		etl_check_keyless_reload(
			p, "change the mode or watermark column of", force,
			psprintf("etl_alter_pipeline(%s, ..., force => true)",
					 quote_literal_cstr(p->name)));
	etl_checks_validate_all(p, rels.source, rels.target);
	etl_catalog_update(p);
	if (source_given || reset)
		notice_unsafe_serial(p, rels.source);
	etl_fdw_defaults(p, rels.source);
	if (reset && had_watermark)
		ereport(NOTICE, (errmsg("watermark of pipeline \"%s\" reset", p->name),
						 errdetail("Mode or watermark column changed; the "
								   "next run starts from the beginning.")));

	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_INT64(p->id);
}

/*
 * etl_alter_pipeline(name, source, ...) RETURNS bigint
 *
 * Changes the given settings (NULL = unchanged; transform => '' restores
 * the default transform), validates the whole definition again and stores
 * it.  Changing mode or watermark_column resets the watermark; for a
 * pipeline that appends without a key and has loaded rows that is refused
 * (etl_alter_pipeline_force allows it).
 */
Datum
etl_alter_pipeline(PG_FUNCTION_ARGS)
{
	return alter_pipeline(fcinfo, false);
}

/*
 * etl_alter_pipeline_force(name, force, source, ...) RETURNS bigint
 *
 * etl_alter_pipeline with force as its second argument (a function of its
 * own, so that calls without force keep resolving to the other): with
 * force true, a change of mode or watermark column also resets the
 * watermark of a pipeline that appends without a key.
 */
Datum
etl_alter_pipeline_force(PG_FUNCTION_ARGS)
{
	LOCAL_FCINFO(inner, NUM_DEFINITION_ARGS);
	bool force = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);

	InitFunctionCallInfoData(*inner, fcinfo->flinfo, NUM_DEFINITION_ARGS,
							 fcinfo->fncollation, NULL, NULL);
	inner->args[ARG_NAME] = fcinfo->args[0];
	for (int i = ARG_NAME + 1; i < NUM_DEFINITION_ARGS; i++)
		inner->args[i] = fcinfo->args[i + 1];
	return alter_pipeline(inner, force);
}

/*
 * etl_drop_pipeline(name) RETURNS boolean
 *
 * Drops a pipeline with its runs, batches and dead letters, after any run
 * in progress has finished, and removes its pg_cron job (schedule.c).
 */
Datum
etl_drop_pipeline(PG_FUNCTION_ARGS)
{
	char *name = arg_cstring(fcinfo, 0);
	EtlPipeline *p;
	int nestlevel;

	check_name(name);
	etl_refuse_on_standby("etl_drop_pipeline", etl_pipeline_object(name));
	etl_spi_connect();
	nestlevel = etl_pin_settings();
	p = lock_and_load(name, "drop");
	etl_catalog_delete(p);
	etl_cron_drop_job(p);
	/* failure records waiting in files go with the pipeline */
	etl_unrecorded_remove_at_commit(etl_unrecorded_list(p->id));
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_BOOL(true);
}

/*
 * etl_reset_watermark(name, value [, force]) RETURNS text
 *
 * Sets the watermark of a pipeline: value must be a finite value of the
 * watermark column's type (and, in mode timestamp, not in the future); NULL
 * makes the next run start from the beginning.  A pipeline that appends
 * without a key and has loaded rows is refused unless force (the rows past
 * the new watermark would be loaded twice).  Returns the stored watermark.
 */
Datum
etl_reset_watermark(PG_FUNCTION_ARGS)
{
	char *name = arg_cstring(fcinfo, 0);
	char *value = arg_cstring(fcinfo, 1);
	bool force = PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	MemoryContext callercxt = CurrentMemoryContext;
	EtlPipeline *p;
	int nestlevel;
	char *stored = NULL;
	text *result = NULL;

	check_name(name);
	etl_refuse_on_standby("etl_reset_watermark", etl_pipeline_object(name));
	etl_spi_connect();
	nestlevel = etl_pin_settings();
	p = lock_and_load(name, "reset the watermark of");
	if (p->watermark != NULL)
		etl_check_keyless_reload(
			p, "reset the watermark of", force,
			psprintf("etl_reset_watermark(%s, %s, force => true)",
					 quote_literal_cstr(p->name),
					 value ? quote_literal_cstr(value) : "NULL"));

	if (value != NULL && p->watermark_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline \"%s\" of mode %s has no watermark to set",
						p->name, etl_mode_names[p->mode]),
				 errdetail("Modes snapshot and full read the whole source at "
						   "each run."),
				 errhint("Reset it with NULL, or give it a watermark column "
						 "with etl_alter_pipeline().")));
	if (value != NULL && p->mode == ETL_MODE_XID)
		stored = psprintf(UINT64_FORMAT "/%s", GetSystemIdentifier(),
						  etl_xid_watermark_parse(p, value));
	else if (value != NULL)
	{
		Oid source = etl_resolve_relation(p->source, "source", false);
		AttrNumber attnum = get_attnum(source, p->watermark_column);
		Oid type;
		int32 typmod;
		Oid collid;
		Oid typoutput;
		bool varlena;
		Datum d;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
							errmsg("watermark column \"%s\" of pipeline "
								   "\"%s\" no longer exists in %s",
								   p->watermark_column, p->name, p->source)));
		get_atttypetypmodcoll(source, attnum, &type, &typmod, &collid);
		/* exactly a built-in type: a domain's checks would run here */
		etl_check_watermark_type(p, type);
		d = etl_watermark_datum(p, value, type, typmod);
		etl_check_watermark_finite(p, value, type, d, false);
		if (p->mode == ETL_MODE_TIMESTAMP)
		{
			TimestampTz ts = type == TIMESTAMPTZOID
								 ? DatumGetTimestampTz(d)
								 : DatumGetTimestampTz(DirectFunctionCall1(
									   timestamp_timestamptz, d));

			if (ts > GetCurrentTimestamp())
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("watermark \"%s\" of pipeline \"%s\" is in "
								"the future",
								value, p->name),
						 errhint("Rows past the watermark are loaded by the "
								 "next run: give the last value loaded, or "
								 "NULL to reload everything.")));
		}
		getTypeOutputInfo(type, &typoutput, &varlena);
		stored = OidOutputFunctionCall(typoutput, d);
	}
	etl_catalog_set_watermark(p, stored);
	if (stored != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(callercxt);

		result = cstring_to_text(stored);
		MemoryContextSwitchTo(old);
	}

	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
