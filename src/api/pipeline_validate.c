/*-------------------------------------------------------------------------
 *
 * pipeline_validate.c
 *	  The validation of a pipeline's definition, for etl_create_pipeline and
 *	  etl_alter_pipeline (pipeline.c).
 *
 *	  Everything given is checked before anything is stored: the names, the
 *	  source and target (and the owner's privileges on them), the mode, its
 *	  watermark column and its type, the key, the transform (parsed and
 *	  analysed as the owner in a security-restricted operation, never
 *	  executed), every setting, and what load partition_swap needs of the
 *	  target (loads/swap_key.c).  Each refusal has its own SQLSTATE, a
 *	  message naming the culprit and a hint.  Relation names are
 *	  resolved with the caller's search_path and stored schema-qualified;
 *	  everything after runs under the pinned settings.
 *
 * IDENTIFICATION
 *	  src/api/pipeline_validate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_sequence.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "api/pipeline_validate.h"
#include "catalog/pipelines.h"
#include "loads/load_ops.h"
#include "modes/drift.h"
#include "modes/sequences.h"
#include "modes/track.h"
#include "modes/watermark.h"
#include "sql/columns.h"
#include "sql/names.h"
#include "sql/transform.h"

/*
 * etl_pipeline_check_name validates a pipeline name: not NULL, not empty, at
 * most 63 bytes (it becomes part of derived names such as the pg_cron job),
 * and free of control characters.
 */
void
etl_pipeline_check_name(const char *name)
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
 * etl_pipeline_resolve_relation resolves a relation name given by the caller
 * (search_path applies) and returns its OID.
 */
Oid
etl_pipeline_resolve_relation(const char *name, const char *role)
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
check_relations(EtlPipeline *p, EtlPipelineRelations *rels)
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

	need = etl_load_ops(p->load)->target_privileges;
	if (pg_class_aclmask(rels->target, user, need, ACLMASK_ALL) != need)
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to load target %s", p->target),
			 errdetail("Load %s needs SELECT, INSERT%s%s on it.",
					   etl_load_ops(p->load)->name,
					   (need & ACL_UPDATE) ? ", UPDATE" : "",
					   (need & ACL_DELETE) ? ", DELETE" : ""),
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
 * etl_pipeline_notice_unsafe_serial warns, in a NOTICE pointing to mode xid,
 * when a serial-mode pipeline's source has ids a run cannot wait for (a view,
 * a foreign table, ids from no sequence): a smaller id committed after a
 * larger one was loaded would be skipped.
 */
void
etl_pipeline_notice_unsafe_serial(EtlPipeline *p, Oid source)
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
	if (p->key == NIL && etl_load_ops(p->load)->needs_key)
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
	etl_load_require_unique_key(p, target);
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
	if (etl_load_ops(p->load)->needs_key || p->key != NIL ||
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
 * etl_pipeline_validate checks a whole definition (relations already resolved)
 * and normalises it for storage.  Runs under the pinned settings.
 */
void
etl_pipeline_validate(EtlPipeline *p, EtlPipelineRelations *rels)
{
	AttrNumber attnum;

	etl_pipeline_check_name(p->name);
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
	if (etl_load_ops(p->load)->check_definition != NULL)
		etl_load_ops(p->load)->check_definition(p, rels->source, rels->target);
	p->source_columns = etl_source_shape(rels->source);

	if (p->watermark != NULL && p->mode != ETL_MODE_XID &&
		p->mode != ETL_MODE_FULL)
		(void) etl_watermark_datum(p, p->watermark,
								   get_atttype(rels->source, attnum), -1);
}
