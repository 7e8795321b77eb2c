/*-------------------------------------------------------------------------
 *
 * check_define.c
 *	  Quality checks: their definitions, read from etl.checks and
 *	  validated against a pipeline's batch.
 *
 *	  Kinds: the kind table (check_kinds.c).  Severities: critical (the
 *	  run fails, nothing loads), warning (recorded, the batch loads),
 *	  quarantine (row-level kinds: the failing rows become dead letters,
 *	  the rest loads).
 *
 *	  A check is validated when it is added (and again when the pipeline is
 *	  altered, and when it runs): its kind, its column among the batch's
 *	  columns, its severity (quarantine: row-level kinds, row-local
 *	  transforms), then what its kind's entry validates (check_params.c:
 *	  the column's type, its params, the referenced table and column, its
 *	  expression).  Validation runs as the pipeline owner in a
 *	  security-restricted operation (etl_check_resolve()), since reading
 *	  params as values of the column's type can run the owner's code.
 *
 * IDENTIFICATION
 *	  src/checks/check_define.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "checks/check.h"
#include "checks/check_kinds.h"
#include "checks/check_params.h"
#include "checks/quality.h"
#include "modes/mode.h"
#include "sql/columns.h"

const char *const etl_check_severity_names[] = { "critical", "warning",
												 "quarantine" };
StaticAssertDecl(lengthof(etl_check_severity_names) == SEV_COUNT,
				 "severity names");

typedef struct CheckErrorArg
{
	EtlCheck *check;
	EtlCheckScope *scope; /* its text: the parsed text, for positions */
} CheckErrorArg;

/*
 * check_error_callback names the check in errors raised while validating
 * it, and reports positions in its expression as internal positions.
 */
static void
check_error_callback(void *arg)
{
	CheckErrorArg *a = arg;
	int pos = geterrposition();

	if (pos > 0 && a->scope->text)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(a->scope->text);
	}
	errcontext("check \"%s\" of pipeline \"%s\"", a->check->name,
			   a->scope->p->name);
}

/*
 * find_column returns the batch column of a check, or raises 42703.
 */
static EtlColumn *
find_column(EtlCheck *c, EtlPipeline *p, EtlColumnMap *map)
{
	ListCell *lc;
	StringInfoData names;

	initStringInfo(&names);
	foreach (lc, map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (strcmp(col->name, c->column) == 0)
			return col;
		appendStringInfo(&names, "%s%s", names.len ? ", " : "", col->name);
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("pipeline \"%s\" loads no column \"%s\" for check \"%s\"",
					p->name, c->column, c->name),
			 errhint("Checks see the batch's columns: %s.", names.data)));
	return NULL; /* keep compiler quiet */
}

/*
 * resolve_check_inner does the work of etl_check_resolve().
 */
static void
resolve_check_inner(EtlCheck *c, EtlCheckScope *scope)
{
	EtlPipeline *p = scope->p;
	EtlColumnMap *map = scope->map;

	if (c->kind->has_column && c->column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("check kind %s needs a column_name", c->kind->name),
				 errhint("Pass column_name => 'the batch column to check'.")));
	if (!c->kind->has_column && c->column != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("check kind %s takes no column_name", c->kind->name),
				 errhint("Leave column_name out.")));
	if (c->severity == SEV_QUARANTINE && !c->kind->row_level)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("check kind %s judges the whole batch and "
							   "cannot quarantine rows",
							   c->kind->name),
						errhint("Use severity => 'critical' or 'warning'.")));
	if (c->severity == SEV_QUARANTINE && !map->row_local)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("check \"%s\" cannot quarantine rows of pipeline "
						"\"%s\"",
						c->name, p->name),
				 errdetail("Its transform is not row-local: a batch row may "
						   "come from several source rows (aggregates, "
						   "DISTINCT, window functions ...), so no source "
						   "row can be set aside for a failing batch row."),
				 errhint("Use severity => 'critical' or 'warning', or a "
						 "transform that computes each row from one source "
						 "row.")));
	if (!JB_ROOT_IS_OBJECT(c->params) || JB_ROOT_IS_SCALAR(c->params))
		etl_check_bad_param(c, "params must be a JSON object",
							"Use e.g. params => '{}'.");
	if (c->column)
	{
		c->col = find_column(c, p, map);
		c->coltype = c->col->src_type;
	}

	if (c->kind->validate != NULL)
		c->kind->validate(c, scope);
}

/*
 * etl_check_resolve validates a check against its pipeline and batch columns
 * and fills what its kind needs.  Raises a precise error for anything that
 * does not fit.  Runs as the pipeline owner in a security-restricted
 * operation, whoever calls: converting params to the column's type runs its
 * input function (a domain's CHECK constraints may call the owner's
 * functions), and analysing an expression may too (sql/transform.c).
 */
void
etl_check_resolve(EtlCheck *c, EtlPipeline *p, EtlColumnMap *map,
				  Oid source_relid)
{
	ErrorContextCallback errcb;
	EtlCheckScope scope = { p, map, source_relid, NULL };
	CheckErrorArg errarg = { c, &scope };
	EtlUserSwitch sw = { 0 };

	errcb.callback = check_error_callback;
	errcb.arg = &errarg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	etl_become_owner(&sw, p->owner);
	resolve_check_inner(c, &scope);
	etl_restore_user(&sw);
	error_context_stack = errcb.previous;
}

/*
 * load_checks reads the checks of a pipeline (unresolved).
 */
static List *
load_checks(int64 pipeline_id)
{
	EtlArgs args;
	List *result = NIL;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_int8(&args, pipeline_id);
	n = etl_spi_exec(
		"SELECT name, kind, column_name, params, severity FROM etl.checks"
		" WHERE pipeline_id OPERATOR(pg_catalog.=) $1 ORDER BY check_id",
		&args, SPI_OK_SELECT, InvalidSnapshot);
	for (uint64 i = 0; i < n; i++)
	{
		EtlCheck *c = palloc0(sizeof(EtlCheck));
		bool isnull;

		c->name = etl_spi_text(i, 0);
		c->kind = etl_check_kind_lookup(etl_spi_text(i, 1));
		c->column = etl_spi_text(i, 2);
		c->params = DatumGetJsonbPCopy(etl_spi_datum(i, 3, &isnull));
		c->severity = etl_name_lookup(etl_check_severity_names, SEV_COUNT,
									  etl_spi_text(i, 4), "severity");
		result = lappend(result, c);
	}
	return result;
}

/*
 * etl_checks_load reads and returns the checks of a pipeline, unresolved
 * (etl_run_checks resolves them against the run's batch).
 */
List *
etl_checks_load(int64 pipeline_id)
{
	return load_checks(pipeline_id);
}

/*
 * etl_checks_validate_all validates the stored checks of a pipeline against
 * its (new) definition: etl_alter_pipeline refuses a change that would
 * break one.
 */
void
etl_checks_validate_all(EtlPipeline *p, Oid source_relid, Oid target_relid)
{
	List *checks;
	EtlColumnMap *map;
	ListCell *lc;

	if (p->id == 0)
		return;
	checks = load_checks(p->id);
	if (checks == NIL)
		return;
	map = etl_resolve_columns(p, source_relid, target_relid);
	foreach (lc, checks)
		etl_check_resolve(lfirst(lc), p, map, source_relid);
}
