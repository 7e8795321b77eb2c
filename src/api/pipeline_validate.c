/*-------------------------------------------------------------------------
 *
 * pipeline_validate.c
 *	  The validation of a pipeline's definition, for etl_create_pipeline and
 *	  etl_alter_pipeline (pipeline.c).
 *
 *	  Everything given is checked before anything is stored: the names, the
 *	  source and target (and the owner's privileges on them, as the load
 *	  needs them), the watermark column and its type, the key, the
 *	  transform (parsed and analysed as the owner in a security-restricted
 *	  operation, never executed), every setting, and what the mode and the
 *	  load need besides (the checks of their ops, modes/mode_*.c and
 *	  loads/load_*.c).  Each refusal has its own SQLSTATE, a
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

#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "api/pipeline_validate.h"
#include "catalog/pipelines.h"
#include "loads/load_ops.h"
#include "modes/drift.h"
#include "modes/mode.h"
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
 * etl_pipeline_notice_unsafe_serial warns, in a NOTICE, when a definition is
 * valid but risky for its mode (EtlModeOps.notice_definition: a serial-mode
 * source with ids a run cannot wait for).
 */
void
etl_pipeline_notice_unsafe_serial(EtlPipeline *p, Oid source)
{
	const EtlModeOps *mode = etl_mode_ops(p->mode);

	if (mode->notice_definition != NULL)
		mode->notice_definition(p, source);
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
	if (!interval_is_zero(p->overlap) && !etl_mode_ops(p->mode)->takes_overlap)
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
	const EtlModeOps *mode = etl_mode_ops(p->mode);
	AttrNumber attnum;

	etl_pipeline_check_name(p->name);
	check_relations(p, rels);

	if (mode->check_source != NULL)
		mode->check_source(p, rels->source);

	if (!mode->has_watermark_column)
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
	if (mode->check_watermark_column != NULL)
		mode->check_watermark_column(p, rels->source);

settings:
	check_settings(p);
	check_key(p, rels->target);
	check_keyless_overlap(p);
	if (mode->check_definition != NULL)
		mode->check_definition(p, rels->source, rels->target);

	if (p->transform != NULL)
		p->transform = etl_normalize_transform(p->name, p->transform);
	(void) etl_resolve_columns(p, rels->source, rels->target);
	if (etl_load_ops(p->load)->check_definition != NULL)
		etl_load_ops(p->load)->check_definition(p, rels->source, rels->target);
	p->source_columns = etl_source_shape(rels->source);

	if (p->watermark != NULL && mode->has_watermark_column &&
		!mode->watermark_is_snapshot)
		(void) etl_watermark_datum(p, p->watermark,
								   get_atttype(rels->source, attnum), -1);
}
