/*-------------------------------------------------------------------------
 *
 * check_params.c
 *	  The validation of each check kind's params and column type, which the
 *	  kind table (check_kinds.c) points to: accepted_values, range,
 *	  foreign_key, z_score, row_count, expression and freshness read their
 *	  params into the check; unique needs a comparable column, positive and
 *	  z_score a numeric one.  Each raises a precise error (the check and
 *	  its kind named) for anything that does not fit; check_define.c calls
 *	  them as the pipeline owner, in a security-restricted operation.
 *
 * IDENTIFICATION
 *	  src/checks/check_params.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "base/spi_util.h"
#include "checks/check.h"
#include "checks/check_params.h"
#include "sql/columns.h"
#include "sql/deparse_checks.h"
#include "sql/names.h"

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
 * etl_check_bad_param raises 22023 for a check parameter of the wrong shape.
 */
void
etl_check_bad_param(EtlCheck *c, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("check \"%s\" (%s): %s", c->name, c->kind->name, what),
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
 * etl_check_validate_unique refuses a unique check on a column whose values
 * cannot be compared: the exact recount and the duplicate samples group and
 * sort the batch's values (a default btree operator class: equality and
 * ordering), and the look for clashes with the target compares them with the
 * target column's values (equality of its type).  json, point and the like
 * have none (42883).
 */
void
etl_check_validate_unique(EtlCheck *c, EtlCheckScope *scope)
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
 * etl_check_validate_numeric refuses a column whose type is not numeric
 * (42804).
 */
void
etl_check_validate_numeric(EtlCheck *c, EtlCheckScope *scope)
{
	char category;
	bool preferred;

	get_type_category_preferred(getBaseType(c->coltype), &category,
								&preferred);
	if (category != TYPCATEGORY_NUMERIC)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("check \"%s\" (%s) needs a numeric column, "
							   "\"%s\" is of type %s",
							   c->name, c->kind->name, c->column,
							   format_type_be(c->coltype)),
						errhint("Cast the column in the transform, or check "
								"another column.")));
}

/*
 * etl_check_validate_foreign_key parses params.references,
 * "schema.table(column)".
 */
void
etl_check_validate_foreign_key(EtlCheck *c, EtlCheckScope *scope)
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
		etl_check_bad_param(c, "params.references must be a string",
							"Use e.g. params => '{\"references\": "
							"\"dw.dim_customers(customer_id)\"}'.");
	open = strrchr(ref, '(');
	close = strrchr(ref, ')');
	if (open == NULL || close == NULL || close < open || close[1] != '\0')
		etl_check_bad_param(
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
		etl_check_bad_param(c,
							psprintf("\"%s\" is not one column name", colname),
							"Name one column between the parentheses.");
	colname = linitial(cols);
	attnum = get_attnum(relid, colname);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("column \"%s\" referenced by check \"%s\" does "
							   "not exist in %s",
							   colname, c->name, tabname),
						errhint("Name a column of the referenced table.")));
	if (pg_class_aclcheck(relid, scope->p->owner, ACL_SELECT) != ACLCHECK_OK)
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
 * analyse_over_batch parses and analyses text, "SELECT <expression>", as
 * "SELECT <expression> FROM (SELECT NULL::type AS column, ...) AS etl_b"
 * over the batch's columns, and returns the query.  The two parts are
 * parsed from one text, the expression first, the columns after it on
 * lines of their own, and that text is what is analysed: every location in
 * the tree points into it, as hooks of parse analysis expect (those of
 * pg_stat_statements read the constants of the query there).
 */
static Query *
analyse_over_batch(const char *text, EtlColumnMap *map)
{
	StringInfoData whole;
	List *raw;
	SelectStmt *sel;
	RangeSubselect *sub;
	RawStmt *rs;

	initStringInfo(&whole);
	appendStringInfo(&whole, "%s\n;\n", text);
	etl_deparse_typed_nulls(&whole, map->columns);
	raw = raw_parser(whole.data, RAW_PARSE_DEFAULT);
	Assert(list_length(raw) == 2);
	sel = (SelectStmt *) linitial_node(RawStmt, raw)->stmt;
	sub = makeNode(RangeSubselect);
	sub->subquery = lsecond_node(RawStmt, raw)->stmt;
	sub->alias = makeAlias("etl_b", NIL);
	sel->fromClause = list_make1(sub);

	rs = makeNode(RawStmt);
	rs->stmt = (Node *) sel;
	rs->stmt_location = -1;
	return parse_analyze_fixedparams(rs, whole.data, NULL, 0, NULL);
}

/*
 * etl_check_validate_expression validates params.sql: one boolean expression
 * over the batch's columns, parsed and analysed against typed NULL columns,
 * never executed.
 */
void
etl_check_validate_expression(EtlCheck *c, EtlCheckScope *scope)
{
	const char *type;
	char *expr = jfield_text(c->params, "sql", &type);
	char *text;
	List *raw;
	SelectStmt *sel;
	Query *q;
	TargetEntry *te;

	if (expr == NULL || strcmp(type, "string") != 0 || expr[0] == '\0')
		etl_check_bad_param(
			c, "params.sql must be a non-empty string",
			"Use e.g. params => '{\"sql\": \"total_amount < 1e6\"}'.");
	text = psprintf("SELECT %s", expr);
	scope->text = text;
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

	q = analyse_over_batch(text, scope->map);
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
 * etl_check_validate_accepted_values validates params.values of an
 * accepted_values check (a non-empty JSON array of scalars, each a value of
 * the column's type) and keeps them as text[] in c->values.
 */
void
etl_check_validate_accepted_values(EtlCheck *c, EtlCheckScope *scope)
{
	const char *type;
	char *s;
	EtlArgs args;
	bool isnull;

	s = jfield_text(c->params, "values", &type);
	if (s == NULL || strcmp(type, "array") != 0)
		etl_check_bad_param(c, "params.values must be a JSON array",
							"Use e.g. params => '{\"values\": [\"pending\", "
							"\"completed\"]}'.");
	etl_args_init(&args);
	etl_args_add(&args, JSONBOID, JsonbPGetDatum(c->params), false);
	etl_spi_exec("SELECT pg_catalog.array_agg(v), "
				 "pg_catalog.bool_or(pg_catalog.jsonb_typeof(e) IN ('object', "
				 "'array'))"
				 " FROM pg_catalog.jsonb_array_elements($1 "
				 "OPERATOR(pg_catalog.->) 'values') e,"
				 " LATERAL (SELECT e OPERATOR(pg_catalog.#>>) '{}') v(v)",
				 &args, SPI_OK_SELECT, InvalidSnapshot);
	if (etl_spi_isnull(0, 0))
		etl_check_bad_param(c, "params.values must not be empty",
							"Give at least one accepted value.");
	if (DatumGetBool(etl_spi_datum(0, 1, &isnull)))
		etl_check_bad_param(c, "params.values must hold scalar values",
							"Give strings or numbers.");
	c->values = datumCopy(etl_spi_datum(0, 0, &isnull), false, -1);
	{
		ArrayType *arr = DatumGetArrayTypeP(c->values);
		Datum *elems;
		bool *nulls;
		int n;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems,
						  &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
				cast_check_value(c, TextDatumGetCString(elems[i]));
	}
}

/*
 * etl_check_validate_range validates params.min and params.max of a range
 * check (at least one, each a number or a string that is a value of the
 * column's type).
 */
void
etl_check_validate_range(EtlCheck *c, EtlCheckScope *scope)
{
	const char *type;

	c->min = jfield_text(c->params, "min", &type);
	if (c->min && strcmp(type, "number") != 0 && strcmp(type, "string") != 0)
		etl_check_bad_param(c, "params.min must be a number or a string",
							"Use e.g. params => '{\"min\": 0}'.");
	c->max = jfield_text(c->params, "max", &type);
	if (c->max && strcmp(type, "number") != 0 && strcmp(type, "string") != 0)
		etl_check_bad_param(c, "params.max must be a number or a string",
							"Use e.g. params => '{\"max\": 100}'.");
	if (c->min == NULL && c->max == NULL)
		etl_check_bad_param(
			c, "params needs min, max or both",
			"Use e.g. params => '{\"min\": 0, \"max\": 100000}'.");
	if (c->min)
		cast_check_value(c, c->min);
	if (c->max)
		cast_check_value(c, c->max);
}

/*
 * etl_check_validate_z_score validates a z_score check: a numeric column, and
 * params.threshold, a positive number (default 3).
 */
void
etl_check_validate_z_score(EtlCheck *c, EtlCheckScope *scope)
{
	const char *type;
	char *s;

	etl_check_validate_numeric(c, scope);
	s = jfield_text(c->params, "threshold", &type);
	c->threshold = 3.0;
	if (s != NULL)
	{
		if (strcmp(type, "number") != 0 ||
			(c->threshold = strtod(s, NULL)) <= 0 || !isfinite(c->threshold))
			etl_check_bad_param(c,
								"params.threshold must be a positive number",
								"Use e.g. params => '{\"threshold\": 3}'.");
	}
}

/*
 * etl_check_validate_row_count validates params.min and params.max of a
 * row_count check (at least one, each a whole number of rows) into c->rc_min
 * and c->rc_max.
 */
void
etl_check_validate_row_count(EtlCheck *c, EtlCheckScope *scope)
{
	const char *type;
	char *s;
	const char *keys[2] = { "min", "max" };
	int64 *vals[2] = { &c->rc_min, &c->rc_max };

	c->rc_min = c->rc_max = -1;

	for (int i = 0; i < 2; i++)
	{
		s = jfield_text(c->params, keys[i], &type);
		if (s == NULL)
			continue;
		if (strcmp(type, "number") != 0 ||
			strspn(s, "0123456789") != strlen(s))
			etl_check_bad_param(
				c,
				psprintf("params.%s must be a whole number of rows", keys[i]),
				"Use e.g. params => '{\"min\": 1}'.");
		*vals[i] = strtoi64(s, NULL, 10);
	}
	if (c->rc_min < 0 && c->rc_max < 0)
		etl_check_bad_param(c, "params needs min, max or both",
							"Use e.g. params => '{\"min\": 1}'.");
}

/*
 * etl_check_validate_freshness validates a freshness check: params.max_age, an
 * interval, and a pipeline whose watermark column (in the source) is a
 * timestamp.
 */
void
etl_check_validate_freshness(EtlCheck *c, EtlCheckScope *scope)
{
	const char *type;
	char *s;
	Oid wmtype;

	s = jfield_text(c->params, "max_age", &type);
	if (s == NULL || strcmp(type, "string") != 0)
		etl_check_bad_param(
			c, "params.max_age must be an interval, as a string",
			"Use e.g. params => '{\"max_age\": \"2 hours\"}'.");
	c->max_age = DatumGetIntervalP(
		DirectFunctionCall3(interval_in, CStringGetDatum(s),
							ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	wmtype = scope->p->watermark_column
				 ? get_atttype(scope->source_relid,
							   get_attnum(scope->source_relid,
										  scope->p->watermark_column))
				 : InvalidOid;
	if (wmtype != TIMESTAMPTZOID && wmtype != TIMESTAMPOID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("check \"%s\" (freshness) needs a pipeline "
							   "whose watermark column is a timestamp",
							   c->name),
						errhint("Freshness compares the newest watermark "
								"value of the source with now().")));
}
