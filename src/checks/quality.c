/*-------------------------------------------------------------------------
 *
 * quality.c
 *	  Quality checks: etl_add_check, etl_drop_check, and their evaluation
 *	  on every batch before it loads.
 *
 *	  Kinds: not_null, unique (within the batch and against the target's
 *	  other rows), accepted_values, positive, range, foreign_key, z_score,
 *	  row_count, expression, freshness.  Severities: critical (the run
 *	  fails, nothing loads), warning (recorded, the batch loads), quarantine
 *	  (row-level kinds: the failing rows become dead letters, the rest
 *	  loads).
 *
 *	  One pass: all checks of a pipeline compile into a single aggregate
 *	  query over the batch (the transform over etl_delta) -- count(*) FILTER
 *	  (WHERE <the row fails>) per row-level check, with foreign keys as
 *	  hashed IN (SELECT ...) probes, etl_dup_count for uniqueness within
 *	  the batch, etl_zstats (count, mean, stddev, min and max in one
 *	  aggregate, the value converted once) for z-scores -- which may run in
 *	  parallel.  Only a unique check against the target adds one join per
 *	  check, freshness one look at the source's newest value, and only a
 *	  failing check pays for its sample keys (and a z-score for its count).
 *
 *	  Quarantine: the batch is staged (isolate.c) and the transform run once
 *	  per staged row, carrying its row number (etl_deparse_rn_batch()); the
 *	  rows whose output fails a quarantine check are set aside by that
 *	  number -- dead letters holding the source row, deleted from the stage
 *	  the load then reads -- never by a key matched again (a transform may
 *	  change keys, keys may be NULL or absent).  This needs a row-local
 *	  transform, which is checked when the check is added.  Replayed dead
 *	  letters go through the same (etl_checks_replay()).
 *
 *	  The evaluation only reads (etl_run_checks(), in a subtransaction of
 *	  the run, so that a data error of the transform can be isolated);
 *	  etl_checks_judge() then fails the run or quarantines.
 *
 *	  A check is validated when it is added (and again when the pipeline is
 *	  altered, and when it runs): its kind, its column among the batch's
 *	  columns with a suitable type, its params, the referenced table and
 *	  column, its expression (parsed and analysed as one boolean expression
 *	  over the batch's columns, never executed), its severity (quarantine:
 *	  row-level kinds, row-local transforms).  Validation runs as the
 *	  pipeline owner in a security-restricted operation (resolve_check),
 *	  since reading params as values of the column's type can run the
 *	  owner's code.
 *
 * IDENTIFICATION
 *	  src/checks/quality.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "parser/parser.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "catalog/runs.h"
#include "checks/quality.h"
#include "sql/columns.h"
#include "sql/deparse_batch.h"
#include "sql/names.h"
#include "sql/run_state.h"

PG_FUNCTION_INFO_V1(etl_add_check);
PG_FUNCTION_INFO_V1(etl_drop_check);
PG_FUNCTION_INFO_V1(etl_check_sql);

typedef enum EtlCheckKind
{
	CK_NOT_NULL,
	CK_UNIQUE,
	CK_ACCEPTED_VALUES,
	CK_POSITIVE,
	CK_RANGE,
	CK_FOREIGN_KEY,
	CK_Z_SCORE,
	CK_ROW_COUNT,
	CK_EXPRESSION,
	CK_FRESHNESS,
	CK_COUNT
} EtlCheckKind;

static const char *const check_kind_names[] = {
	"not_null",	   "unique",  "accepted_values", "positive",   "range",
	"foreign_key", "z_score", "row_count",		 "expression", "freshness"
};
StaticAssertDecl(lengthof(check_kind_names) == CK_COUNT, "check kind names");

/* kinds that look at one column, and kinds that judge single rows */
static const bool kind_has_column[] = { 1, 1, 1, 1, 1, 1, 1, 0, 0, 0 };
static const bool kind_row_level[] = { 1, 1, 1, 1, 1, 1, 1, 0, 1, 0 };

typedef enum EtlSeverity
{
	SEV_CRITICAL,
	SEV_WARNING,
	SEV_QUARANTINE,
	SEV_COUNT
} EtlSeverity;

static const char *const severity_names[] = { "critical", "warning",
											  "quarantine" };

/* one check, with what its kind needs resolved against the batch */
/*
 * How a foreign key check probes the referenced values (fk_probe()):
 * FK_SUBPLAN a hashed IN (SELECT ...) subplan (a large referenced table, or
 * one whose column has another type than the batch's); FK_INT_SET
 * etl_not_in(), a set of int8 each process reads once (integer columns);
 * FK_ARRAY "= ANY" over the values read once per run into an array
 * parameter (other types with a hashable equality).
 */
typedef enum EtlFkProbe
{
	FK_SUBPLAN = 0,
	FK_INT_SET,
	FK_ARRAY
} EtlFkProbe;

typedef struct EtlCheck
{
	char *name;
	EtlCheckKind kind;
	char *column; /* NULL for row_count, expression, freshness */
	Jsonb *params;
	EtlSeverity severity;

	EtlColumn *col; /* the batch column, NULL without one */
	Oid coltype;	/* the batch column's type */
	Datum values;	/* accepted_values: text[] */
	char *min;		/* range: bounds as text, or NULL */
	char *max;
	double threshold; /* z_score */
	int64 rc_min;	  /* row_count, -1: none */
	int64 rc_max;
	char *ref_table; /* foreign_key: quoted qualified name */
	char *ref_column;
	Oid ref_relid;
	AttrNumber ref_attnum;
	Oid ref_type;	   /* the referenced column's type */
	EtlFkProbe fk;	   /* how the referenced values are probed */
	Datum ref_values;  /* FK_ARRAY: the array of the referenced values */
	char *expr;		   /* expression: its text */
	Interval *max_age; /* freshness */
	int param_no;	   /* first positional argument of its params */
} EtlCheck;

/* what a check found in one batch */
typedef struct EtlCheckResult
{
	EtlCheck *check;
	bool passed;
	int64 failing;
	StringInfo observed; /* a JSON object */
	double mean;		 /* z_score: of the batch's finite values */
	double stddev;
} EtlCheckResult;

typedef struct CheckErrorArg
{
	EtlCheck *check;
	const char *pipeline;
	const char *text; /* the parsed text, for syntax positions */
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

	if (pos > 0 && a->text)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(a->text);
	}
	errcontext("check \"%s\" of pipeline \"%s\"", a->check->name, a->pipeline);
}

/*
 * jfield_text returns params->key as text (a JSON string's contents, or a
 * number's text), NULL when absent or JSON null; *type gets its JSON type.
 */
static char *
jfield_text(Jsonb *params, const char *key, const char **type)
{
	EtlArgs args;

	etl_args_init(&args);
	etl_args_add(&args, JSONBOID, JsonbPGetDatum(params), false);
	etl_args_add_text(&args, key);
	etl_spi_exec(
		"SELECT pg_catalog.jsonb_typeof($1 OPERATOR(pg_catalog.->) $2),"
		" $1 OPERATOR(pg_catalog.->>) $2",
		&args, SPI_OK_SELECT, InvalidSnapshot);
	*type = etl_spi_text(0, 0);
	if (*type != NULL && strcmp(*type, "null") == 0)
		*type = NULL;
	return *type ? etl_spi_text(0, 1) : NULL;
}

/*
 * bad_param raises 22023 for a check parameter of the wrong shape.
 */
static void
bad_param(EtlCheck *c, const char *what, const char *hint)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("check \"%s\" (%s): %s", c->name,
						   check_kind_names[c->kind], what),
					errhint("%s", hint)));
}

/*
 * cast_check_value checks that text converts to the column's type (the
 * type's own error otherwise, with the check named).
 */
static void
cast_check_value(EtlCheck *c, const char *text)
{
	Oid typinput;
	Oid typioparam;

	getTypeInputInfo(c->coltype, &typinput, &typioparam);
	PG_TRY();
	{
		(void) OidInputFunctionCall(typinput, (char *) text, typioparam, -1);
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(CurTransactionContext);
		edata = CopyErrorData();
		FlushErrorState();
		edata->detail =
			psprintf("A parameter of check \"%s\" is not a value of type %s.",
					 c->name, format_type_be(c->coltype));
		ReThrowError(edata);
	}
	PG_END_TRY();
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
 * require_comparable refuses a unique check on a column whose values cannot
 * be compared: the exact recount and the duplicate samples group and sort
 * the batch's values (a default btree operator class: equality and
 * ordering), and the look for clashes with the target compares them with
 * the target column's values (equality of its type).  json, point and the
 * like have none (42883).
 */
static void
require_comparable(EtlCheck *c)
{
	TypeCacheEntry *src =
		lookup_type_cache(c->coltype, TYPECACHE_EQ_OPR | TYPECACHE_LT_OPR);
	TypeCacheEntry *tgt =
		lookup_type_cache(c->col->tgt_type, TYPECACHE_EQ_OPR);
	Oid bad = InvalidOid;

	if (!OidIsValid(src->eq_opr) || !OidIsValid(src->lt_opr))
		bad = c->coltype;
	else if (!OidIsValid(tgt->eq_opr))
		bad = c->col->tgt_type;
	if (OidIsValid(bad))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("check \"%s\" (unique) cannot compare values of type "
						"%s",
						c->name, format_type_be(bad)),
				 errdetail("Finding duplicates needs a type with equality "
						   "and ordering (a default btree operator class); "
						   "column \"%s\" has none.",
						   c->column),
				 errhint("Cast the column in the transform to a comparable "
						 "type (json to jsonb or text), or check another "
						 "column.")));
}

/*
 * require_numeric refuses a column whose type is not numeric.
 */
static void
require_numeric(EtlCheck *c)
{
	char category;
	bool preferred;

	get_type_category_preferred(getBaseType(c->coltype), &category,
								&preferred);
	if (category != TYPCATEGORY_NUMERIC)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("check \"%s\" (%s) needs a numeric column, "
							   "\"%s\" is of type %s",
							   c->name, check_kind_names[c->kind], c->column,
							   format_type_be(c->coltype)),
						errhint("Cast the column in the transform, or check "
								"another column.")));
}

/*
 * resolve_foreign_key parses params.references, "schema.table(column)".
 */
static void
resolve_foreign_key(EtlCheck *c, EtlPipeline *p)
{
	const char *type;
	char *ref = jfield_text(c->params, "references", &type);
	char *open;
	char *close;
	char *tabname;
	char *colname;
	Oid relid;
	AttrNumber attnum;
	List *cols;

	if (ref == NULL || strcmp(type, "string") != 0)
		bad_param(c, "params.references must be a string",
				  "Use e.g. params => '{\"references\": "
				  "\"dw.dim_customers(customer_id)\"}'.");
	open = strrchr(ref, '(');
	close = strrchr(ref, ')');
	if (open == NULL || close == NULL || close < open || close[1] != '\0')
		bad_param(
			c,
			psprintf("params.references \"%s\" is not schema.table(column)",
					 ref),
			"Use e.g. params => '{\"references\": "
			"\"dw.dim_customers(customer_id)\"}'.");
	tabname = pnstrdup(ref, open - ref);
	colname = pnstrdup(open + 1, close - open - 1);
	relid = etl_resolve_relation(tabname, "referenced", true);
	if (!OidIsValid(relid))
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("table \"%s\" referenced by check \"%s\" does not exist",
					tabname, c->name),
			 errhint("Create it, or schema-qualify its name in "
					 "params.references.")));
	if (!SplitIdentifierString(colname, ',', &cols) || list_length(cols) != 1)
		bad_param(c, psprintf("\"%s\" is not one column name", colname),
				  "Name one column between the parentheses.");
	colname = linitial(cols);
	attnum = get_attnum(relid, colname);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("column \"%s\" referenced by check \"%s\" does "
							   "not exist in %s",
							   colname, c->name, tabname),
						errhint("Name a column of the referenced table.")));
	if (pg_class_aclcheck(relid, p->owner, ACL_SELECT) != ACLCHECK_OK)
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to read %s, referenced by check \"%s\"",
					tabname, c->name),
			 errhint("GRANT SELECT ON %s TO the pipeline's owner.", tabname)));
	c->ref_table = etl_relation_sql(relid);
	c->ref_column = pstrdup(colname);
	c->ref_relid = relid;
	c->ref_attnum = attnum;
	c->ref_type = get_atttype(relid, attnum);
	c->fk = FK_SUBPLAN;
}

/*
 * A foreign key whose referenced table has at most this many rows probes
 * its values in memory: etl_not_in's set of int8 costs about a third of a
 * hashed IN (SELECT ...) subplan per batch row, "= ANY" over a constant
 * array somewhat more.  Larger tables keep the subplan (each process would
 * hold their values; an array travels in the plan to every parallel
 * worker).
 */
#define FK_ARRAY_MAX_ROWS 250000

/*
 * fk_probe chooses how foreign key check c probes the referenced values
 * (EtlFkProbe): by a set or an array when the referenced table is small
 * and its column has the batch column's type, with a hashable equality.
 */
static EtlFkProbe
fk_probe(EtlCheck *c)
{
	TypeCacheEntry *tc;
	Relation rel;
	double reltuples;

	if (c->ref_type != c->coltype)
		return FK_SUBPLAN;
	/* a collation of its own on the referenced column: compare as before */
	if (type_is_collatable(c->coltype))
	{
		Oid type;
		int32 typmod;
		Oid collation;

		get_atttypetypmodcoll(c->ref_relid, c->ref_attnum, &type, &typmod,
							  &collation);
		if (collation != DEFAULT_COLLATION_OID)
			return FK_SUBPLAN;
	}
	tc = lookup_type_cache(c->coltype, TYPECACHE_EQ_OPR | TYPECACHE_HASH_PROC);
	if (!OidIsValid(tc->eq_opr) || !OidIsValid(tc->hash_proc) ||
		!op_hashjoinable(tc->eq_opr, c->coltype) ||
		!OidIsValid(get_array_type(c->coltype)))
		return FK_SUBPLAN;
	/*
	 * a table never analyzed (reltuples -1) is judged by its pages, as if
	 * they were full of the narrowest rows; resolve_fk_probe() counts
	 */
	rel = table_open(c->ref_relid, AccessShareLock);
	reltuples = rel->rd_rel->reltuples;
	if (reltuples < 0)
		reltuples =
			(double) RelationGetNumberOfBlocks(rel) * (BLCKSZ / (double) 32);
	table_close(rel, AccessShareLock);
	if (reltuples > FK_ARRAY_MAX_ROWS)
		return FK_SUBPLAN;
	if (c->coltype == INT2OID || c->coltype == INT4OID ||
		c->coltype == INT8OID)
		return FK_INT_SET;
	return FK_ARRAY;
}

/*
 * resolve_fk_probe sets c->fk for a run, under the run's snapshot, as the
 * pipeline owner: the referenced values (NULLs left out: a NULL referenced
 * value matches nothing) are counted, and more than FK_ARRAY_MAX_ROWS of
 * them (statistics out of date) fall back to the subplan; for FK_ARRAY
 * they are read into c->ref_values, for FK_INT_SET each process reads them
 * itself (etl_not_in), under the same snapshot.
 */
static void
resolve_fk_probe(EtlRun *run, EtlCheck *c)
{
	bool isnull;
	Datum d;

	c->fk = fk_probe(c);
	if (c->fk == FK_SUBPLAN)
		return;
	etl_spi_exec(
		psprintf("SELECT %s, "
				 "pg_catalog.count(*) FROM (SELECT %s AS v FROM %s "
				 "WHERE %s IS NOT NULL LIMIT %d) AS etl_r",
				 c->fk == FK_ARRAY ? "pg_catalog.array_agg(etl_r.v)" : "NULL",
				 quote_identifier(c->ref_column), c->ref_table,
				 quote_identifier(c->ref_column), FK_ARRAY_MAX_ROWS + 1),
		NULL, SPI_OK_SELECT, run->snapshot);
	if (etl_spi_int64(0, 1, 0) > FK_ARRAY_MAX_ROWS)
	{
		c->fk = FK_SUBPLAN;
		return;
	}
	if (c->fk == FK_INT_SET)
		return;
	d = etl_spi_datum(0, 0, &isnull);
	c->ref_values = isnull ? PointerGetDatum(construct_empty_array(c->coltype))
						   : datumCopy(d, false, -1);
}

/*
 * resolve_expression validates params.sql: one boolean expression over the
 * batch's columns, parsed and analysed against typed NULL columns, never
 * executed.
 */
static void
resolve_expression(EtlCheck *c, EtlColumnMap *map, CheckErrorArg *errarg)
{
	const char *type;
	char *expr = jfield_text(c->params, "sql", &type);
	char *text;
	List *raw;
	SelectStmt *sel;
	StringInfoData cols;
	ListCell *lc;
	List *fromraw;
	RangeSubselect *sub;
	RawStmt *rs;
	Query *q;
	TargetEntry *te;

	if (expr == NULL || strcmp(type, "string") != 0 || expr[0] == '\0')
		bad_param(c, "params.sql must be a non-empty string",
				  "Use e.g. params => '{\"sql\": \"total_amount < 1e6\"}'.");
	text = psprintf("SELECT %s", expr);
	errarg->text = text;
	raw = raw_parser(text, RAW_PARSE_DEFAULT);

	/*
	 * A semicolon ends the statement early ("total > 0;" parses as one
	 * statement of which the semicolon is not part): the expression is
	 * embedded in other statements, where it would be a syntax error.
	 */
	if (list_length(raw) == 1 && linitial_node(RawStmt, raw)->stmt_len != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("check \"%s\" (expression): params.sql must be "
						"one expression, without a semicolon",
						c->name),
				 errdetail("It is \"%s\".", expr),
				 errhint("Remove the semicolon: the expression is "
						 "evaluated inside etl_ext's own statements.")));
	sel = (SelectStmt *) linitial_node(RawStmt, raw)->stmt;
	if (list_length(raw) != 1 || !IsA(sel, SelectStmt) ||
		list_length(sel->targetList) != 1 || sel->fromClause ||
		sel->whereClause || sel->groupClause || sel->havingClause ||
		sel->windowClause || sel->distinctClause || sel->sortClause ||
		sel->limitCount || sel->limitOffset || sel->lockingClause ||
		sel->withClause || sel->intoClause || sel->valuesLists ||
		sel->op != SETOP_NONE ||
		((ResTarget *) linitial(sel->targetList))->name != NULL)
		ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR),
						errmsg("check \"%s\" (expression): params.sql must be "
							   "one expression",
							   c->name),
						errdetail("It is \"%s\".", expr),
						errhint("Write a boolean expression over the batch's "
								"columns, e.g. total_amount < 1e6.")));

	/* FROM (SELECT NULL::type AS column, ...) AS etl_b */
	initStringInfo(&cols);
	foreach (lc, map->columns)
	{
		EtlColumn *col = lfirst(lc);

		appendStringInfo(&cols, "%sNULL::%s AS %s", cols.len ? ", " : "",
						 format_type_extended(col->src_type, col->src_typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY),
						 quote_identifier(col->name));
	}
	fromraw = raw_parser(psprintf("SELECT %s", cols.data), RAW_PARSE_DEFAULT);
	sub = makeNode(RangeSubselect);
	sub->subquery = linitial_node(RawStmt, fromraw)->stmt;
	sub->alias = makeAlias("etl_b", NIL);
	sel->fromClause = list_make1(sub);

	rs = makeNode(RawStmt);
	rs->stmt = (Node *) sel;
	rs->stmt_location = -1;
	q = parse_analyze_fixedparams(rs, text, NULL, 0, NULL);
	te = linitial_node(TargetEntry, q->targetList);
	if (q->hasAggs || q->hasWindowFuncs || q->hasTargetSRFs)
		ereport(
			ERROR,
			(errcode(ERRCODE_GROUPING_ERROR),
			 errmsg("check \"%s\" (expression) must not use aggregate, window "
					"or set-returning functions",
					c->name),
			 errhint(
				 "The expression is evaluated on each row of the batch.")));
	if (exprType((Node *) te->expr) != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("check \"%s\" (expression) must be boolean, \"%s\" is "
						"of type %s",
						c->name, expr,
						format_type_be(exprType((Node *) te->expr))),
				 errhint("Write a condition that every good row meets.")));
	c->expr = expr;
}

/*
 * resolve_check validates a check against its pipeline and batch columns
 * and fills what its kind needs.  Raises a precise error for anything that
 * does not fit.  Runs as the pipeline owner in a security-restricted
 * operation, whoever calls: converting params to the column's type runs its
 * input function (a domain's CHECK constraints may call the owner's
 * functions), and analysing an expression may too (columns.c).
 */
static void resolve_check_inner(EtlCheck *c, EtlPipeline *p, EtlColumnMap *map,
								Oid source_relid, CheckErrorArg *errarg);

static void
resolve_check(EtlCheck *c, EtlPipeline *p, EtlColumnMap *map, Oid source_relid)
{
	ErrorContextCallback errcb;
	CheckErrorArg errarg = { c, p->name, NULL };
	EtlUserSwitch sw = { 0 };

	errcb.callback = check_error_callback;
	errcb.arg = &errarg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	etl_become_owner(&sw, p->owner);
	resolve_check_inner(c, p, map, source_relid, &errarg);
	etl_restore_user(&sw);
	error_context_stack = errcb.previous;
}

/*
 * resolve_check_inner does the work of resolve_check().
 */
static void
resolve_check_inner(EtlCheck *c, EtlPipeline *p, EtlColumnMap *map,
					Oid source_relid, CheckErrorArg *errarg)
{
	const char *type;
	char *s;

	if (kind_has_column[c->kind] && c->column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("check kind %s needs a column_name",
						check_kind_names[c->kind]),
				 errhint("Pass column_name => 'the batch column to check'.")));
	if (!kind_has_column[c->kind] && c->column != NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("check kind %s takes no column_name",
							   check_kind_names[c->kind]),
						errhint("Leave column_name out.")));
	if (c->severity == SEV_QUARANTINE && !kind_row_level[c->kind])
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("check kind %s judges the whole batch and "
							   "cannot quarantine rows",
							   check_kind_names[c->kind]),
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
		bad_param(c, "params must be a JSON object",
				  "Use e.g. params => '{}'.");
	if (c->column)
	{
		c->col = find_column(c, p, map);
		c->coltype = c->col->src_type;
	}

	c->rc_min = c->rc_max = -1;
	switch (c->kind)
	{
		case CK_NOT_NULL:
			break;
		case CK_UNIQUE:
			require_comparable(c);
			break;
		case CK_ACCEPTED_VALUES:
		{
			EtlArgs args;
			bool isnull;

			s = jfield_text(c->params, "values", &type);
			if (s == NULL || strcmp(type, "array") != 0)
				bad_param(c, "params.values must be a JSON array",
						  "Use e.g. params => '{\"values\": [\"pending\", "
						  "\"completed\"]}'.");
			etl_args_init(&args);
			etl_args_add(&args, JSONBOID, JsonbPGetDatum(c->params), false);
			etl_spi_exec(
				"SELECT pg_catalog.array_agg(v), "
				"pg_catalog.bool_or(pg_catalog.jsonb_typeof(e) IN ('object', "
				"'array'))"
				" FROM pg_catalog.jsonb_array_elements($1 "
				"OPERATOR(pg_catalog.->) 'values') e,"
				" LATERAL (SELECT e OPERATOR(pg_catalog.#>>) '{}') v(v)",
				&args, SPI_OK_SELECT, InvalidSnapshot);
			if (etl_spi_isnull(0, 0))
				bad_param(c, "params.values must not be empty",
						  "Give at least one accepted value.");
			if (DatumGetBool(etl_spi_datum(0, 1, &isnull)))
				bad_param(c, "params.values must hold scalar values",
						  "Give strings or numbers.");
			c->values = datumCopy(etl_spi_datum(0, 0, &isnull), false, -1);
			{
				ArrayType *arr = DatumGetArrayTypeP(c->values);
				Datum *elems;
				bool *nulls;
				int n;

				deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &nulls, &n);
				for (int i = 0; i < n; i++)
					if (!nulls[i])
						cast_check_value(c, TextDatumGetCString(elems[i]));
			}
			break;
		}
		case CK_POSITIVE:
			require_numeric(c);
			break;
		case CK_RANGE:
			c->min = jfield_text(c->params, "min", &type);
			if (c->min && strcmp(type, "number") != 0 &&
				strcmp(type, "string") != 0)
				bad_param(c, "params.min must be a number or a string",
						  "Use e.g. params => '{\"min\": 0}'.");
			c->max = jfield_text(c->params, "max", &type);
			if (c->max && strcmp(type, "number") != 0 &&
				strcmp(type, "string") != 0)
				bad_param(c, "params.max must be a number or a string",
						  "Use e.g. params => '{\"max\": 100}'.");
			if (c->min == NULL && c->max == NULL)
				bad_param(
					c, "params needs min, max or both",
					"Use e.g. params => '{\"min\": 0, \"max\": 100000}'.");
			if (c->min)
				cast_check_value(c, c->min);
			if (c->max)
				cast_check_value(c, c->max);
			break;
		case CK_FOREIGN_KEY:
			resolve_foreign_key(c, p);
			break;
		case CK_Z_SCORE:
			require_numeric(c);
			s = jfield_text(c->params, "threshold", &type);
			c->threshold = 3.0;
			if (s != NULL)
			{
				if (strcmp(type, "number") != 0 ||
					(c->threshold = strtod(s, NULL)) <= 0 ||
					!isfinite(c->threshold))
					bad_param(c, "params.threshold must be a positive number",
							  "Use e.g. params => '{\"threshold\": 3}'.");
			}
			break;
		case CK_ROW_COUNT:
		{
			const char *keys[2] = { "min", "max" };
			int64 *vals[2] = { &c->rc_min, &c->rc_max };

			for (int i = 0; i < 2; i++)
			{
				s = jfield_text(c->params, keys[i], &type);
				if (s == NULL)
					continue;
				if (strcmp(type, "number") != 0 ||
					strspn(s, "0123456789") != strlen(s))
					bad_param(
						c,
						psprintf("params.%s must be a whole number of rows",
								 keys[i]),
						"Use e.g. params => '{\"min\": 1}'.");
				*vals[i] = strtoi64(s, NULL, 10);
			}
			if (c->rc_min < 0 && c->rc_max < 0)
				bad_param(c, "params needs min, max or both",
						  "Use e.g. params => '{\"min\": 1}'.");
			break;
		}
		case CK_EXPRESSION:
			resolve_expression(c, map, errarg);
			break;
		case CK_FRESHNESS:
		{
			Oid wmtype;

			s = jfield_text(c->params, "max_age", &type);
			if (s == NULL || strcmp(type, "string") != 0)
				bad_param(c, "params.max_age must be an interval, as a string",
						  "Use e.g. params => '{\"max_age\": \"2 hours\"}'.");
			c->max_age = DatumGetIntervalP(DirectFunctionCall3(
				interval_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
				Int32GetDatum(-1)));
			wmtype = p->watermark_column
						 ? get_atttype(
							   source_relid,
							   get_attnum(source_relid, p->watermark_column))
						 : InvalidOid;
			if (wmtype != TIMESTAMPTZOID && wmtype != TIMESTAMPOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("check \"%s\" (freshness) needs a pipeline "
								"whose watermark column is a timestamp",
								c->name),
						 errhint("Freshness compares the newest watermark "
								 "value of the source with now().")));
			break;
		}
		default:
			break;
	}
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
		c->kind = etl_name_lookup(check_kind_names, CK_COUNT,
								  etl_spi_text(i, 1), "check kind");
		c->column = etl_spi_text(i, 2);
		c->params = DatumGetJsonbPCopy(etl_spi_datum(i, 3, &isnull));
		c->severity = etl_name_lookup(severity_names, SEV_COUNT,
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
		resolve_check(lfirst(lc), p, map, source_relid);
}

/* ------------------------------------------------------------------------
 * Evaluation
 * ------------------------------------------------------------------------
 */

/* the values a z-score leaves out: they have no distance from a mean */
#define Z_NONFINITE "'{NaN,Infinity,-Infinity}'::pg_catalog.float8[]"

/*
 * append_fail_predicate writes the condition under which a batch row (alias
 * etl_b) fails a row-level check (not unique, which is judged by sets).
 */
static void
append_fail_predicate(StringInfo buf, EtlCheck *c, double mean, double stddev)
{
	const char *col = c->column ? quote_identifier(c->column) : NULL;
	char *type = c->column ? format_type_extended(c->coltype, -1,
												  FORMAT_TYPE_FORCE_QUALIFY)
						   : NULL;

	switch (c->kind)
	{
		case CK_NOT_NULL:
			appendStringInfo(buf, "etl_b.%s IS NULL", col);
			break;
		case CK_ACCEPTED_VALUES:
			appendStringInfo(buf, "etl_b.%s <> ALL (CAST($%d AS %s[]))", col,
							 c->param_no, type);
			break;
		case CK_POSITIVE:
			appendStringInfo(buf, "etl_b.%s <= 0", col);
			break;
		case CK_RANGE:
			appendStringInfoChar(buf, '(');
			if (c->min)
				appendStringInfo(buf, "etl_b.%s < CAST($%d AS %s)", col,
								 c->param_no, type);
			if (c->min && c->max)
				appendStringInfoString(buf, " OR ");
			if (c->max)
				appendStringInfo(buf, "etl_b.%s > CAST($%d AS %s)", col,
								 c->param_no + 1, type);
			appendStringInfoChar(buf, ')');
			break;
		case CK_FOREIGN_KEY:
			if (c->fk == FK_INT_SET)
			{
				appendStringInfo(
					buf,
					"etl_b.%s IS NOT NULL AND etl_internal.etl_not_in("
					"etl_b.%s::pg_catalog.int8, "
					"%s::pg_catalog.regclass, %s)",
					col, col, quote_literal_cstr(c->ref_table),
					quote_literal_cstr(c->ref_column));
				break;
			}
			if (c->fk == FK_ARRAY)
			{
				appendStringInfo(
					buf,
					"etl_b.%s IS NOT NULL AND NOT (etl_b.%s = ANY "
					"($%d::%s))",
					col, col, c->param_no,
					format_type_extended(get_array_type(c->coltype), -1,
										 FORMAT_TYPE_FORCE_QUALIFY));
				break;
			}
			appendStringInfo(
				buf,
				"etl_b.%s IS NOT NULL AND NOT (etl_b.%s IN "
				"(SELECT etl_r.%s FROM %s AS etl_r WHERE etl_r.%s "
				"IS NOT NULL))",
				col, col, quote_identifier(c->ref_column), c->ref_table,
				quote_identifier(c->ref_column));
			break;
		case CK_Z_SCORE:
			/* non-finite values (NaN, +-Infinity) neither count nor fail */
			Assert(isfinite(mean) && isfinite(stddev) && stddev > 0);
			appendStringInfo(
				buf,
				"etl_b.%s::pg_catalog.float8 <> ALL (" Z_NONFINITE
				") AND pg_catalog.abs(etl_b.%s::pg_catalog.float8 - "
				"%.17g) / %.17g > %.17g",
				col, col, mean, stddev, c->threshold);
			break;
		case CK_EXPRESSION:
			appendStringInfo(buf, "(\n%s\n) IS NOT TRUE", c->expr);
			break;
		default:
			appendStringInfoString(buf, "false");
			break;
	}
}

/*
 * add_check_args appends the positional arguments of a check's params and
 * remembers where they start.
 */
static void
add_check_args(EtlArgs *args, EtlCheck *c)
{
	c->param_no = args->n + 1;
	if (c->kind == CK_ACCEPTED_VALUES)
		etl_args_add(args, TEXTARRAYOID, c->values, false);
	else if (c->kind == CK_RANGE)
	{
		etl_args_add_text(args, c->min);
		etl_args_add_text(args, c->max);
	}
	else if (c->kind == CK_FOREIGN_KEY && c->fk == FK_ARRAY)
		etl_args_add(args, get_array_type(c->coltype), c->ref_values,
					 c->ref_values == (Datum) 0);
}

/*
 * batch_from appends "FROM <transform> AS etl_b" (with the delta CTE first).
 */
static char *
batch_query(EtlRun *run, const char *select_list, const char *tail)
{
	StringInfoData buf;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, run);
	appendStringInfo(&buf, "SELECT %s FROM (\n%s\n) AS etl_b%s", select_list,
					 run->map->transform_sql, tail ? tail : "");
	return buf.data;
}

/*
 * key_object returns jsonb_build_object('k1', etl_b.k1, ...) of the key.
 */
static char *
key_object(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "pg_catalog.jsonb_build_object(");
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(&buf, "%s%s, etl_b.%s", first ? "" : ", ",
						 quote_literal_cstr(col->name),
						 quote_identifier(col->name));
		first = false;
	}
	if (first)
		appendStringInfoString(&buf, "'row', etl_b.*");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * sample_keys returns a JSON array of up to 10 keys of rows failing pred.
 */
static char *
sample_keys(EtlRun *run, EtlArgs *args, const char *pred)
{
	char *sql;

	sql = batch_query(run, psprintf("%s AS k", key_object(run)),
					  psprintf(" WHERE %s LIMIT 10", pred));
	sql = psprintf("SELECT COALESCE(pg_catalog.jsonb_agg(s.k), "
				   "'[]')::pg_catalog.text FROM (%s) s",
				   sql);
	etl_spi_exec(sql, args, SPI_OK_SELECT, run->snapshot);
	return etl_spi_text(0, 0);
}

/*
 * new_result starts the result of a check.
 */
static EtlCheckResult *
new_result(EtlCheck *c)
{
	EtlCheckResult *r = palloc0(sizeof(EtlCheckResult));

	r->check = c;
	r->passed = true;
	r->observed = makeStringInfo();
	appendStringInfoChar(r->observed, '{');
	return r;
}

/* a staged row that failed a check */
typedef struct FailedRow
{
	int64 rn;
	ErrorData *edata;
	char *record;
} FailedRow;

/*
 * append_clash_predicate writes the condition under which batch row etl_b
 * has the value of unique check c that a target row of another key holds
 * (false without a key): the batch values converted as the load stores
 * them.
 */
static void
append_clash_predicate(StringInfo buf, EtlRun *run, EtlCheck *c)
{
	StringInfoData bkeys;
	StringInfoData xkeys;
	ListCell *lc;

	initStringInfo(&bkeys);
	initStringInfo(&xkeys);
	foreach (lc, run->map->columns)
	{
		EtlColumn *kc = lfirst(lc);

		if (!kc->is_key)
			continue;
		if (bkeys.len > 0)
			appendStringInfoString(&bkeys, ", ");
		etl_deparse_as_target(&bkeys, kc, "etl_b");
		appendStringInfo(&xkeys, "%setl_x.%s", xkeys.len ? ", " : "",
						 quote_identifier(kc->name));
	}
	if (bkeys.len == 0)
	{
		appendStringInfoString(buf, "false");
		return;
	}
	appendStringInfo(buf, "EXISTS (SELECT FROM %s AS etl_x WHERE etl_x.%s = ",
					 run->target_sql, quote_identifier(c->column));
	etl_deparse_as_target(buf, c->col, "etl_b");
	appendStringInfo(buf, " AND ROW(%s) IS DISTINCT FROM ROW(%s))", xkeys.data,
					 bkeys.data);
}

/*
 * unique_against_target counts batch rows whose value of the checked column
 * another target row (another key) already has.
 */
static int64
unique_against_target(EtlRun *run, EtlCheck *c, EtlArgs *args)
{
	StringInfoData tail;

	initStringInfo(&tail);
	appendStringInfoString(&tail, " WHERE ");
	append_clash_predicate(&tail, run, c);
	etl_spi_query_parallel(batch_query(run, "pg_catalog.count(*)", tail.data),
						   args, run->snapshot);
	return etl_spi_int64(0, 0, 0);
}

/*
 * reject_failing_rows takes the staged rows whose batch rows fail one of
 * the given checks (EtlCheckResult *, their params in args) out of the
 * batch: each goes to hooks->rejected, stage "check", with the first check
 * it fails, and leaves the stage.  Rows are known by their row number in
 * the stage, which the transform carries (etl_deparse_rn_batch()), never
 * by a key matched again: a transform may change keys, keys may be NULL or
 * absent.  A unique check fails the rows whose value repeats in the batch
 * or belongs to a target row of another key.  Returns how many were taken.
 */
static int64
reject_failing_rows(EtlRun *run, List *failed, EtlArgs *args,
					EtlIsolateHooks *hooks)
{
	StringInfoData sql;
	ListCell *lc;
	uint64 n;
	FailedRow *rows;

	etl_stage_batch(run);
	initStringInfo(&sql);
	etl_deparse_delta_cte(&sql, run);
	appendStringInfoString(
		&sql,
		"SELECT etl_q.etl_rn, etl_q.etl_check,"
		" pg_catalog.to_jsonb(etl_d)::pg_catalog.text FROM"
		" (SELECT DISTINCT ON (etl_f.etl_rn) etl_f.etl_rn, etl_f.etl_check"
		" FROM (SELECT etl_b.etl_rn, CASE");
	foreach (lc, failed)
	{
		EtlCheckResult *r = lfirst(lc);
		EtlCheck *c = r->check;

		if (c->kind == CK_UNIQUE)
		{
			const char *col = quote_identifier(c->column);

			appendStringInfo(
				&sql,
				" WHEN etl_b.%s IN (SELECT etl_d.%s FROM (\n%s\n) AS etl_d"
				" GROUP BY 1 HAVING pg_catalog.count(*) > 1) OR ",
				col, col, run->map->transform_sql);
			append_clash_predicate(&sql, run, c);
		}
		else
		{
			appendStringInfoString(&sql, " WHEN ");
			append_fail_predicate(&sql, c, r->mean, r->stddev);
		}
		appendStringInfo(&sql, " THEN %d", foreach_current_index(lc));
	}
	appendStringInfo(&sql,
					 " END AS etl_check FROM (\n%s\n) AS etl_b) AS etl_f"
					 " WHERE etl_f.etl_check IS NOT NULL"
					 " ORDER BY etl_f.etl_rn, etl_f.etl_check) AS etl_q"
					 " CROSS JOIN LATERAL (SELECT %s FROM pg_temp.%s AS etl_s"
					 " WHERE etl_s.etl_rn = etl_q.etl_rn) AS etl_d"
					 " ORDER BY etl_q.etl_rn",
					 etl_deparse_rn_batch(run), run->stage_columns_s,
					 run->stage_table);
	n = etl_spi_exec(sql.data, args, SPI_OK_SELECT, run->snapshot);

	/* the result set goes with the next statement: copy it out first */
	rows = palloc0(sizeof(FailedRow) * Max(n, 1));
	for (uint64 j = 0; j < n; j++)
	{
		EtlCheckResult *r = list_nth(failed, (int) etl_spi_int64(j, 1, 0));

		rows[j].rn = etl_spi_int64(j, 0, 0);
		rows[j].record = etl_spi_text(j, 2);
		rows[j].edata = palloc0(sizeof(ErrorData));
		rows[j].edata->sqlerrcode = ERRCODE_CHECK_VIOLATION;
		rows[j].edata->message = psprintf(r->check->severity == SEV_QUARANTINE
											  ? "quarantined by check \"%s\""
											  : "failed check \"%s\"",
										  r->check->name);
	}
	for (uint64 j = 0; j < n; j++)
	{
		hooks->rejected(run, rows[j].rn, "check", rows[j].edata,
						rows[j].record, hooks->arg);
		etl_stage_forget(run, rows[j].rn);
	}
	return (int64) n;
}

/*
 * check_pass_sql returns the one aggregate query that evaluates the checks
 * over the batch: count(*) first, then per check its column(s); first_col
 * gets each check's first column.  Appends the checks' params to args.
 */
static char *
check_pass_sql(EtlRun *run, List *checks, EtlArgs *args, int *first_col)
{
	StringInfoData sel;
	ListCell *lc;
	int ncol = 1;
	int i = 0;

	initStringInfo(&sel);
	appendStringInfoString(&sel, "pg_catalog.count(*)");
	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);
		const char *col = c->column ? quote_identifier(c->column) : NULL;

		add_check_args(args, c);
		first_col[i++] = ncol;
		switch (c->kind)
		{
			case CK_UNIQUE:
				appendStringInfo(
					&sel, ",\n  etl_internal.etl_dup_count(etl_b.%s)", col);
				ncol++;
				break;
			case CK_Z_SCORE:
			{
				/*
				 * one aggregate over the finite values: the planner computes
				 * it once for the four columns, converting the value once
				 */
				char *z = psprintf(
					"(etl_internal.etl_zstats(etl_b.%s::pg_catalog.float8))",
					col);

				appendStringInfo(&sel,
								 ",\n  %s[2],\n  %s[3],\n  %s[4],\n  %s[5]", z,
								 z, z, z);
				ncol += 4;
				break;
			}
			case CK_ROW_COUNT:
			case CK_FRESHNESS:
				break;
			default:
				appendStringInfoString(
					&sel, ",\n  pg_catalog.count(*) FILTER (WHERE ");
				append_fail_predicate(&sel, c, 0, 0);
				appendStringInfoChar(&sel, ')');
				ncol++;
				break;
		}
	}
	return batch_query(run, sel.data, NULL);
}

/*
 * etl_run_checks evaluates the pipeline's checks (from etl_checks_load) on
 * the run's batch, before it loads, and keeps their results in
 * run->check_results (and the rows it counted in run->check_rows); it only
 * reads, so that a data error of the transform can be caught around it.
 * etl_checks_judge() acts on the results.  Runs as the pipeline owner.
 */
void
etl_run_checks(EtlRun *run, List *checks)
{
	EtlArgs args;
	ListCell *lc;
	char *pass_sql;
	int nchecks;
	int *first_col;
	int64 nrows;
	List *results = NIL;
	int i;

	run->check_results = NIL;
	if (checks == NIL)
		return;
	nchecks = list_length(checks);
	first_col = palloc0(sizeof(int) * nchecks);

	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);

		resolve_check(c, run->p, run->map, run->source_relid);
		if (c->kind == CK_FOREIGN_KEY)
			resolve_fk_probe(run, c);
	}

	/* the one aggregate pass */
	etl_run_args(run, &args);
	pass_sql = check_pass_sql(run, checks, &args, first_col);
	etl_spi_query_parallel(pass_sql, &args, run->snapshot);
	nrows = etl_spi_int64(0, 0, 0);
	if (run->rec.rows_extracted < 0 && run->map->one_to_one)
		run->rec.rows_extracted = nrows;

	/* judge each check; the result set of the pass is read first */
	i = 0;
	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);
		EtlCheckResult *r = new_result(c);
		int col = first_col[i];

		switch (c->kind)
		{
			case CK_ROW_COUNT:
				r->failing = 0;
				r->passed = !(c->rc_min >= 0 && nrows < c->rc_min) &&
							!(c->rc_max >= 0 && nrows > c->rc_max);
				appendStringInfo(r->observed, "\"rows\": " INT64_FORMAT,
								 nrows);
				if (c->rc_min >= 0)
					appendStringInfo(r->observed, ", \"min\": " INT64_FORMAT,
									 c->rc_min);
				if (c->rc_max >= 0)
					appendStringInfo(r->observed, ", \"max\": " INT64_FORMAT,
									 c->rc_max);
				break;
			case CK_Z_SCORE:
			{
				bool isnull;
				double mean;
				double sd;
				double lo;
				double hi;
				double maxz;

				if (etl_spi_isnull(0, col + 1) ||
					DatumGetFloat8(etl_spi_datum(0, col + 1, &isnull)) == 0)
				{
					appendStringInfo(
						r->observed,
						"\"threshold\": %g, \"note\": \"no spread: every "
						"finite value is the same, or fewer than two\"",
						c->threshold);
					break;
				}
				mean = etl_spi_float8(0, col, 0);
				sd = etl_spi_float8(0, col + 1, 0);
				lo = etl_spi_float8(0, col + 2, 0);
				hi = etl_spi_float8(0, col + 3, 0);
				maxz = Max(hi - mean, mean - lo) / sd;
				if (!isfinite(mean) || !isfinite(sd) || !isfinite(maxz))
				{
					/* finite values whose spread overflows double precision */
					appendStringInfo(
						r->observed,
						"\"threshold\": %g, \"note\": \"no finite spread: the "
						"values are too large for double precision\"",
						c->threshold);
					break;
				}
				r->mean = mean;
				r->stddev = sd;
				r->passed = maxz <= c->threshold;
				appendStringInfo(r->observed,
								 "\"mean\": %.17g, \"stddev\": %.17g, "
								 "\"max_z\": %.17g, \"threshold\": %g",
								 mean, sd, maxz, c->threshold);
				break;
			}
			case CK_FRESHNESS:
				break;
			case CK_UNIQUE:
				r->failing = etl_spi_int64(0, col, -1); /* NULL: unknown */
				r->passed = r->failing == 0;
				break;
			default:
				r->failing = etl_spi_int64(0, col, 0);
				r->passed = r->failing == 0;
				break;
		}
		results = lappend(results, r);
		i++;
	}

	/* what needs its own query: freshness, uniqueness against the target,
	 * counts and samples of what failed */
	i = 0;
	foreach (lc, results)
	{
		EtlCheckResult *r = lfirst(lc);
		EtlCheck *c = r->check;
		StringInfoData pred;

		if (c->kind == CK_FRESHNESS)
		{
			TimestampTz newest;
			TimestampTz limit;

			etl_spi_exec(
				psprintf("SELECT pg_catalog.max(%s)::pg_catalog.timestamptz "
						 "FROM %s",
						 quote_identifier(run->p->watermark_column),
						 run->source_sql),
				NULL, SPI_OK_SELECT, run->snapshot);
			limit = DatumGetTimestampTz(
				DirectFunctionCall2(timestamptz_mi_interval,
									TimestampTzGetDatum(GetCurrentTimestamp()),
									IntervalPGetDatum(c->max_age)));
			if (etl_spi_isnull(0, 0))
			{
				r->passed = false;
				appendStringInfoString(r->observed, "\"newest\": null");
			}
			else
			{
				bool isnull;

				newest = DatumGetTimestampTz(etl_spi_datum(0, 0, &isnull));
				r->passed = newest >= limit;
				appendStringInfoString(r->observed, "\"newest\": ");
				escape_json(r->observed, timestamptz_to_str(newest));
			}
			appendStringInfoString(r->observed, ", \"max_age\": ");
			escape_json(r->observed,
						DatumGetCString(DirectFunctionCall1(
							interval_out, IntervalPGetDatum(c->max_age))));
		}
		else if (c->kind == CK_UNIQUE)
		{
			const char *col = quote_identifier(c->column);
			int64 clash = 0;

			/*
			 * etl_dup_count never counts too few: recount when it found any,
			 * or when it could not tell (NULL, -1 here: the batch had more
			 * distinct values than work_mem holds)
			 */
			if (r->failing != 0)
			{
				etl_spi_exec(
					batch_query(run,
								psprintf("pg_catalog.count(etl_b.%s) - "
										 "pg_catalog.count(DISTINCT etl_b.%s)",
										 col, col),
								NULL),
					&args, SPI_OK_SELECT, run->snapshot);
				r->failing = etl_spi_int64(0, 0, 0);
			}
			appendStringInfo(r->observed,
							 "\"duplicates_in_batch\": " INT64_FORMAT,
							 r->failing);
			if (run->target_empty != 1)
			{
				clash = unique_against_target(run, c, &args);
				appendStringInfo(r->observed,
								 ", \"clashing_with_target\": " INT64_FORMAT,
								 clash);
			}
			r->failing += clash;
			r->passed = r->failing == 0;
		}

		if (!r->passed && kind_row_level[c->kind])
		{
			initStringInfo(&pred);
			if (c->kind == CK_UNIQUE)
			{
				const char *col = quote_identifier(c->column);

				etl_spi_exec(
					psprintf(
						"SELECT COALESCE(pg_catalog.jsonb_agg(v), "
						"'[]')::pg_catalog.text FROM"
						" (%s) s(v)",
						batch_query(
							run, psprintf("etl_b.%s", col),
							psprintf(" GROUP BY 1 HAVING pg_catalog.count(*) "
									 "> 1 LIMIT 10"))),
					&args, SPI_OK_SELECT, run->snapshot);
				appendStringInfo(r->observed, ", \"sample_values\": %s",
								 etl_spi_text(0, 0));
			}
			else
			{
				append_fail_predicate(&pred, c, r->mean, r->stddev);
				if (c->kind == CK_Z_SCORE)
				{
					etl_spi_query_parallel(
						batch_query(run, "pg_catalog.count(*)",
									psprintf(" WHERE %s", pred.data)),
						&args, run->snapshot);
					r->failing = etl_spi_int64(0, 0, 0);
				}
				appendStringInfo(r->observed, "%s\"sample_keys\": %s",
								 r->observed->len > 1 ? ", " : "",
								 sample_keys(run, &args, pred.data));
			}
		}
		appendStringInfoChar(r->observed, '}');
		i++;
	}
	run->check_results = results;
	run->check_rows = nrows;
}

/*
 * etl_checks_judge acts on the results of etl_run_checks(): a failing
 * critical check fails the attempt (23514, the batch does not load); rows
 * failing quarantine checks become dead letters and leave the batch.  Runs
 * as the pipeline owner.
 */
void
etl_checks_judge(EtlRun *run, List *checks, EtlIsolateHooks *hooks)
{
	EtlCheckResult *critical = NULL;
	List *quarantining = NIL;
	EtlArgs args;
	ListCell *lc;

	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (!r->passed && r->check->severity == SEV_CRITICAL &&
			critical == NULL)
			critical = r;
		if (!r->passed && r->check->severity == SEV_QUARANTINE)
			quarantining = lappend(quarantining, r);
	}

	if (critical != NULL)
	{
		EtlCheck *c = critical->check;

		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("check \"%s\" failed", c->name),
				 errdetail("%s check%s%s%s failed%s; observed %s",
						   check_kind_names[c->kind],
						   c->column ? " on column \"" : "",
						   c->column ? c->column : "", c->column ? "\"" : "",
						   kind_row_level[c->kind]
							   ? psprintf(" for " INT64_FORMAT
										  " of " INT64_FORMAT " rows",
										  critical->failing, run->check_rows)
							   : "",
						   critical->observed->data),
				 errhint("The batch was not loaded; SELECT * FROM "
						 "etl.check_results WHERE run_id = " INT64_FORMAT
						 " shows every check.",
						 run->rec.run_id)));
	}

	if (quarantining != NIL)
	{
		etl_stage_batch(run); /* the rows are known by their row numbers */
		etl_run_args(run, &args);
		foreach (lc, checks)
			add_check_args(&args, lfirst(lc));
		(void) reject_failing_rows(run, quarantining, &args, hooks);
	}
}

/*
 * etl_checks_replay applies a pipeline's checks to dead letters being
 * replayed (staged rows 1 .. nrows, etl_retry_dead_letters): a row that
 * fails a row-level check of severity critical or quarantine goes to
 * hooks->rejected (stage "check") and stays out of the load, as it would
 * have in a run.  Warnings do not keep a row out; z_score, row_count and
 * freshness judge a whole batch, which a replay is not, and are left out.
 * Returns how many rows were held back.  Runs as the pipeline owner.
 */
int64
etl_checks_replay(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks)
{
	List *checks = load_checks(run->p->id);
	List *applied = NIL;
	EtlArgs args;
	ListCell *lc;

	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);

		if (!kind_row_level[c->kind] || c->kind == CK_Z_SCORE ||
			c->severity == SEV_WARNING)
			continue;
		resolve_check(c, run->p, run->map, run->source_relid);
		applied = lappend(applied, new_result(c));
	}
	if (applied == NIL || nrows == 0)
		return 0;
	run->rn_lo = 1;
	run->rn_hi = nrows;
	etl_run_args(run, &args);
	foreach (lc, applied)
		add_check_args(&args, ((EtlCheckResult *) lfirst(lc))->check);
	return reject_failing_rows(run, applied, &args, hooks);
}

/*
 * etl_checks_failed_critical tells whether the run's checks failed one
 * critical check.
 */
bool
etl_checks_failed_critical(EtlRun *run)
{
	ListCell *lc;

	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (!r->passed && r->check->severity == SEV_CRITICAL)
			return true;
	}
	return false;
}

/*
 * append_check_json appends a check's name, kind, column (or null) and
 * severity as JSON object members, under the given keys for the name and
 * the column.
 */
static void
append_check_json(StringInfo buf, EtlCheck *c, const char *name_key,
				  const char *column_key)
{
	appendStringInfo(buf, "\"%s\": ", name_key);
	escape_json(buf, c->name);
	appendStringInfoString(buf, ", \"kind\": ");
	escape_json(buf, check_kind_names[c->kind]);
	appendStringInfo(buf, ", \"%s\": ", column_key);
	if (c->column)
		escape_json(buf, c->column);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ", \"severity\": ");
	escape_json(buf, severity_names[c->severity]);
}

/*
 * etl_checks_failed_json appends the run's failed checks as a JSON array
 * of {check, kind, column, severity, failing_rows} (at most max of them)
 * and returns how many failed.
 */
int
etl_checks_failed_json(StringInfo buf, EtlRun *run, int max)
{
	ListCell *lc;
	int failed = 0;

	appendStringInfoChar(buf, '[');
	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (r->passed)
			continue;
		if (failed++ >= max)
			continue;
		if (failed > 1)
			appendStringInfoString(buf, ", ");
		appendStringInfoChar(buf, '{');
		append_check_json(buf, r->check, "check", "column");
		appendStringInfo(buf, ", \"failing_rows\": " INT64_FORMAT "}",
						 r->failing);
	}
	appendStringInfoChar(buf, ']');
	return failed;
}

/*
 * etl_check_results_json appends the run's check results as a JSON array
 * of etl.check_results rows.
 */
void
etl_check_results_json(StringInfo buf, EtlRun *run)
{
	ListCell *lc;

	appendStringInfoChar(buf, '[');
	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfo(buf,
						 "{\"run_id\": " INT64_FORMAT
						 ", \"pipeline_id\": " INT64_FORMAT ", \"pipeline\": ",
						 run->rec.run_id, run->p->id);
		escape_json(buf, run->p->name);
		appendStringInfoString(buf, ", ");
		append_check_json(buf, r->check, "check_name", "column_name");
		appendStringInfo(buf,
						 ", \"passed\": %s, \"failing_rows\": " INT64_FORMAT
						 ", \"observed\": %s}",
						 r->passed ? "true" : "false", r->failing,
						 r->observed->data);
	}
	appendStringInfoChar(buf, ']');
}

/*
 * etl_check_results_store inserts the run's check results in the current
 * transaction (a succeeding run).
 */
void
etl_check_results_store(EtlRun *run)
{
	StringInfoData json;
	EtlArgs args;
	EtlUserSwitch sw;

	if (run->check_results == NIL)
		return;
	initStringInfo(&json);
	etl_check_results_json(&json, run);
	etl_args_init(&args);
	etl_args_add(&args, JSONBOID,
				 DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)),
				 false);
	etl_become_extension_owner(&sw);
	etl_spi_exec(ETL_CHECK_RESULTS_INSERT("$1"), &args, SPI_OK_INSERT,
				 InvalidSnapshot);
	etl_restore_user(&sw);
}

/* ------------------------------------------------------------------------
 * etl_add_check, etl_drop_check
 * ------------------------------------------------------------------------
 */

/*
 * etl_add_check(pipeline, kind, column_name, params, severity, name)
 *	 RETURNS text
 *
 * Adds a check to a pipeline after validating it; returns its name (by
 * default <pipeline>_<column>_<kind>, or <pipeline>_<kind>).
 */
Datum
etl_add_check(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	EtlCheck *c = palloc0(sizeof(EtlCheck));
	EtlPipeline *p;
	EtlColumnMap *map;
	Oid source_relid;
	Oid target_relid;
	EtlArgs args;
	EtlUserSwitch sw;
	int nestlevel;
	text *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline and kind of a check must not be NULL")));
	etl_refuse_on_standby("etl_add_check", etl_pipeline_object(text_to_cstring(
											   PG_GETARG_TEXT_PP(0))));
	c->kind =
		etl_name_lookup(check_kind_names, CK_COUNT,
						text_to_cstring(PG_GETARG_TEXT_PP(1)), "check kind");
	c->column = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	c->params = PG_ARGISNULL(3) ? DatumGetJsonbP(DirectFunctionCall1(
									  jsonb_in, CStringGetDatum("{}")))
								: PG_GETARG_JSONB_P(3);
	c->severity = PG_ARGISNULL(4)
					  ? SEV_CRITICAL
					  : etl_name_lookup(severity_names, SEV_COUNT,
										text_to_cstring(PG_GETARG_TEXT_PP(4)),
										"severity");

	etl_spi_connect();
	nestlevel = etl_pin_settings();
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
						 InvalidSnapshot);
	etl_check_pipeline_owner(p->name, p->owner, "add checks to");

	if (!PG_ARGISNULL(5))
		c->name = text_to_cstring(PG_GETARG_TEXT_PP(5));
	else if (c->column)
		c->name = psprintf("%s_%s_%s", p->name, c->column,
						   check_kind_names[c->kind]);
	else
		c->name = psprintf("%s_%s", p->name, check_kind_names[c->kind]);
	if (c->name[0] == '\0' || strlen(c->name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("check name \"%s\" is empty or longer than %d bytes",
						c->name, NAMEDATALEN - 1),
				 errhint("Give the check a shorter name => '...'.")));

	source_relid = etl_resolve_relation(p->source, "source", false);
	target_relid = etl_resolve_relation(p->target, "target", false);
	map = etl_resolve_columns(p, source_relid, target_relid);
	resolve_check(c, p, map, source_relid);

	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_text(&args, c->name);
	if (etl_spi_exec("SELECT 1 FROM etl.checks WHERE pipeline_id "
					 "OPERATOR(pg_catalog.=) $1"
					 " AND name OPERATOR(pg_catalog.=) $2",
					 &args, SPI_OK_SELECT, InvalidSnapshot) > 0)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("pipeline \"%s\" already has a check \"%s\"",
							   p->name, c->name),
						errhint("Give the check another name => '...', or "
								"drop the other with etl_drop_check().")));
	etl_args_add_text(&args, check_kind_names[c->kind]);
	etl_args_add_text(&args, c->column);
	etl_args_add(&args, JSONBOID, JsonbPGetDatum(c->params), false);
	etl_args_add_text(&args, severity_names[c->severity]);
	etl_become_extension_owner(&sw);
	etl_spi_exec("INSERT INTO etl.checks (pipeline_id, name, kind, "
				 "column_name, params, severity)"
				 " VALUES ($1, $2, $3, $4, $5, $6)",
				 &args, SPI_OK_INSERT, InvalidSnapshot);
	etl_restore_user(&sw);

	result =
		(text *) MemoryContextAlloc(callercxt, VARHDRSZ + strlen(c->name));
	SET_VARSIZE(result, VARHDRSZ + strlen(c->name));
	memcpy(VARDATA(result), c->name, strlen(c->name));
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_TEXT_P(result);
}

/*
 * etl_drop_check(pipeline, name) RETURNS boolean
 *
 * Drops a check of a pipeline (42704 when it has none of that name).
 */
Datum
etl_drop_check(PG_FUNCTION_ARGS)
{
	EtlPipeline *p;
	EtlArgs args;
	EtlUserSwitch sw;
	int nestlevel;
	uint64 n;
	char *name;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline and check name must not be NULL")));
	etl_refuse_on_standby(
		"etl_drop_check",
		etl_pipeline_object(text_to_cstring(PG_GETARG_TEXT_PP(0))));
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	etl_spi_connect();
	nestlevel = etl_pin_settings();
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
						 InvalidSnapshot);
	etl_check_pipeline_owner(p->name, p->owner, "drop checks of");
	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_text(&args, name);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec(
		"DELETE FROM etl.checks WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
		" AND name OPERATOR(pg_catalog.=) $2",
		&args, SPI_OK_DELETE, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n == 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("pipeline \"%s\" has no check \"%s\"", p->name, name),
			 errhint(
				 "SELECT name FROM etl.checks JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = %s lists them.",
				 quote_literal_cstr(p->name))));
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_BOOL(true);
}

/*
 * etl_check_sql(pipeline text) RETURNS text
 *
 * The one aggregate query that evaluates a pipeline's checks over a batch
 * ($n are the run's range and the checks' params): what etl_run executes
 * before each load.  Only the pipeline's owner (or a member, or a
 * superuser) may see it.
 */
Datum
etl_check_sql(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	EtlRun run = { 0 };
	EtlArgs args;
	List *checks;
	ListCell *lc;
	int nestlevel;
	char *sql = NULL;
	text *result = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	etl_spi_connect();
	nestlevel = etl_pin_settings();
	run.p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
							 InvalidSnapshot);
	etl_check_pipeline_owner(run.p->name, run.p->owner,
							 "show the check query of");
	etl_run_resolve_relations(&run);
	run.map = etl_resolve_columns(run.p, run.source_relid, run.target_relid);
	checks = etl_checks_load(run.p->id);
	if (checks != NIL)
	{
		int *first_col = palloc0(sizeof(int) * list_length(checks));

		foreach (lc, checks)
		{
			EtlCheck *c = lfirst(lc);

			resolve_check(c, run.p, run.map, run.source_relid);
			/* the query's shape only: a run fetches the values */
			if (c->kind == CK_FOREIGN_KEY)
				c->fk = fk_probe(c);
		}
		etl_args_init(&args);
		args.n = ETL_NPARAMS;
		sql = check_pass_sql(&run, checks, &args, first_col);
		result =
			(text *) MemoryContextAlloc(callercxt, VARHDRSZ + strlen(sql));
		SET_VARSIZE(result, VARHDRSZ + strlen(sql));
		memcpy(VARDATA(result), sql, strlen(sql));
	}
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
