/*-------------------------------------------------------------------------
 *
 * transform.c
 *	  Analysis of a pipeline's transform against its source and target.
 *
 *	  A transform is one SELECT over etl_delta, the rows a run extracts.  It
 *	  is parsed and analysed, never executed: the raw parse tree is wrapped as
 *	  WITH etl_delta AS (SELECT * FROM <source>) SELECT * FROM (<transform>)
 *	  and analysed under the pinned search_path, so that its output columns
 *	  and their types are known and errors point into the transform's own
 *	  text.  Each output column must name a column of the target whose type
 *	  accepts it by assignment.  Without a transform, the source columns that
 *	  the target also has are loaded.
 *
 *	  The same analysis runs when a pipeline is defined (validation) and when
 *	  it runs (the column list of the load, which then follows the source and
 *	  target as they are now; a column that went away is a precise error).
 *
 *	  Parse analysis can run user code: a literal coerced to an array or
 *	  composite type calls the input function of its elements, and for a
 *	  domain that evaluates the domain's CHECK constraints, which may call
 *	  functions of the pipeline owner.  So the analysis always runs as the
 *	  pipeline owner inside a security-restricted operation, whoever calls
 *	  (a superuser altering someone's pipeline, anyone reading lineage),
 *	  and the privileges it checks are the owner's.
 *
 * IDENTIFICATION
 *	  src/sql/transform.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"

#include "base/security.h"
#include "base/settings.h"
#include "sql/transform.h"

typedef struct TransformErrorArg
{
	const char *pipeline;
	const char *transform;
} TransformErrorArg;

/*
 * Row locality.
 *
 * A transform is row-local when each of its output rows is computed from
 * one row of etl_delta alone, so that running it over a subset of the rows
 * yields exactly the output rows of that subset: a projection of etl_delta,
 * filtered (WHERE), joined with other relations, expanded by set-returning
 * functions.  Whatever combines several rows of etl_delta is not: aggregates
 * and grouping, DISTINCT, window functions, LIMIT/OFFSET, set operations,
 * a second read of etl_delta (a self-join, a sublink, a CTE read twice), or
 * etl_delta on the nullable side of an outer join (which yields rows of the
 * other side that come from no row of etl_delta).
 *
 * Only a row-local transform lets a run isolate bad rows (it reloads the
 * batch in parts), quarantine rows of failing checks and keep the latest
 * version of duplicate keys: all of them need to know which source row an
 * output row came from.  For that the transform is run once per staged
 * source row (etl_deparse_rn_batch()): its one reference to etl_delta,
 * located in its text, is replaced by that row.
 */

/* counting references to the wrapper's etl_delta below a query */
typedef struct DeltaRefs
{
	int depth; /* query levels below the wrapper */
	int count;
} DeltaRefs;

/*
 * transform_error_callback reports syntax error positions as positions in
 * the transform (an internal query), not in the caller's statement, as SPI
 * does for the statements of PL functions.
 */
static void
transform_error_callback(void *arg)
{
	TransformErrorArg *a = (TransformErrorArg *) arg;
	int pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(a->transform);
	}
	errcontext("transform of pipeline \"%s\"", a->pipeline);
}

/*
 * parse_single_select parses a transform and returns its only statement,
 * which must be a plain SELECT.  Raises 42601 otherwise.  Nothing is
 * executed.
 */
static RawStmt *
parse_single_select(const char *pipeline, const char *transform)
{
	ErrorContextCallback errcb;
	TransformErrorArg arg = { pipeline, transform };
	List *raw;
	RawStmt *rs;
	SelectStmt *sel;

	errcb.callback = transform_error_callback;
	errcb.arg = &arg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	raw = raw_parser(transform, RAW_PARSE_DEFAULT);
	error_context_stack = errcb.previous;

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("transform of pipeline \"%s\" must be exactly one "
						"SELECT statement",
						pipeline),
				 errdetail("It holds %d statements.", list_length(raw)),
				 errhint("Write the transform as a single SELECT ... FROM "
						 "etl_delta; it is never executed on its own.")));

	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		ereport(
			ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("transform of pipeline \"%s\" must be a SELECT statement",
					pipeline),
			 errdetail("It is a %s statement.", CreateCommandName(rs->stmt)),
			 errhint("Write the transform as SELECT ... FROM etl_delta.")));

	sel = (SelectStmt *) rs->stmt;
	if (sel->intoClause != NULL)
		ereport(
			ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("transform of pipeline \"%s\" must not use SELECT INTO",
					pipeline),
			 errhint("Remove the INTO clause; the pipeline's target receives "
					 "the rows.")));
	if (sel->withClause != NULL)
	{
		ListCell *lc;

		foreach (lc, sel->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!IsA(cte->ctequery, SelectStmt))
				ereport(
					ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg(
						 "transform of pipeline \"%s\" must not modify data",
						 pipeline),
					 errdetail("WITH query \"%s\" is a %s statement.",
							   cte->ctename, CreateCommandName(cte->ctequery)),
					 errhint("A transform only reads; the load writes the "
							 "target.")));
		}
	}
	return rs;
}

/*
 * etl_normalize_transform validates that a transform is exactly one SELECT
 * and returns the text of that statement alone (without a trailing
 * semicolon or trailing comments), which is what gets stored.
 */
char *
etl_normalize_transform(const char *pipeline, const char *transform)
{
	RawStmt *rs = parse_single_select(pipeline, transform);
	int start = rs->stmt_location > 0 ? rs->stmt_location : 0;
	int len =
		rs->stmt_len > 0 ? rs->stmt_len : (int) strlen(transform) - start;

	return pnstrdup(transform + start, len);
}

/*
 * check_perms_walker checks the current user's privileges on every relation
 * of an analysed query and its subqueries, CTEs and sublinks (42501).
 */
static bool
check_perms_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query *q = (Query *) node;

		(void) ExecCheckRTPerms(q->rtable, true);
		return query_tree_walker(q, check_perms_walker, context, 0);
	}
	return expression_tree_walker(node, check_perms_walker, context);
}

/*
 * delta_refs_walker counts the range table entries that read the wrapper's
 * CTE etl_delta (ctelevelsup reaching back to the wrapper).
 */
static bool
delta_refs_walker(Node *node, DeltaRefs *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		bool result;

		ctx->depth++;
		result = query_tree_walker((Query *) node, delta_refs_walker, ctx,
								   QTW_EXAMINE_RTES_BEFORE);
		ctx->depth--;
		return result;
	}
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_CTE && rte->ctelevelsup == ctx->depth &&
			strcmp(rte->ctename, "etl_delta") == 0)
			ctx->count++;
		return false;
	}
	return expression_tree_walker(node, delta_refs_walker, ctx);
}

/*
 * count_delta_refs counts the reads of the wrapper's etl_delta in query q,
 * which lies depth levels below the wrapper (the transform itself: 1).
 */
static int
count_delta_refs(Query *q, int depth)
{
	DeltaRefs ctx = { depth, 0 };

	(void) query_tree_walker(q, delta_refs_walker, &ctx,
							 QTW_EXAMINE_RTES_BEFORE);
	return ctx.count;
}

static bool is_row_local(Query *q, int depth);

/*
 * from_item_reads_delta tells whether FROM item `item` of q holds the one
 * read of etl_delta in a row-local position: not on the nullable side of an
 * outer join, and directly or through a row-local subquery or CTE.
 */
static bool
from_item_reads_delta(Query *q, Node *item, int depth, bool nullable)
{
	if (IsA(item, FromExpr))
	{
		ListCell *lc;

		foreach (lc, ((FromExpr *) item)->fromlist)
			if (from_item_reads_delta(q, lfirst(lc), depth, nullable))
				return true;
		return false;
	}
	if (IsA(item, JoinExpr))
	{
		JoinExpr *j = (JoinExpr *) item;
		bool lnull =
			nullable || j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL;
		bool rnull =
			nullable || j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL;

		return from_item_reads_delta(q, j->larg, depth, lnull) ||
			   from_item_reads_delta(q, j->rarg, depth, rnull);
	}
	if (IsA(item, RangeTblRef))
	{
		RangeTblEntry *rte =
			rt_fetch(((RangeTblRef *) item)->rtindex, q->rtable);

		if (rte->rtekind == RTE_CTE && rte->ctelevelsup == depth &&
			strcmp(rte->ctename, "etl_delta") == 0)
			return !nullable;
		if (rte->rtekind == RTE_SUBQUERY)
			return !nullable &&
				   count_delta_refs(rte->subquery, depth + 1) == 1 &&
				   is_row_local(rte->subquery, depth + 1);
		if (rte->rtekind == RTE_CTE && rte->ctelevelsup == 0 &&
			!rte->self_reference)
		{
			ListCell *lc;

			/* a CTE of q itself, read once: as a subquery */
			foreach (lc, q->cteList)
			{
				CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);
				Query *cq = (Query *) cte->ctequery;

				if (strcmp(cte->ctename, rte->ctename) != 0)
					continue;
				return !nullable && !cte->cterecursive &&
					   cte->cterefcount == 1 && IsA(cq, Query) &&
					   count_delta_refs(cq, depth + 1) == 1 &&
					   is_row_local(cq, depth + 1);
			}
		}
		return false;
	}
	return false;
}

/*
 * is_row_local tells whether query q (depth levels below the wrapper) is
 * row-local (see above).
 */
static bool
is_row_local(Query *q, int depth)
{
	if (q == NULL || q->setOperations != NULL || q->hasAggs ||
		q->groupClause != NIL || q->groupingSets != NIL ||
		q->havingQual != NULL || q->hasWindowFuncs ||
		q->distinctClause != NIL || q->limitCount != NULL ||
		q->limitOffset != NULL || q->hasRecursive || q->jointree == NULL)
		return false;
	if (count_delta_refs(q, depth) != 1)
		return false;
	return from_item_reads_delta(q, (Node *) q->jointree, depth, false);
}

/*
 * is_one_to_one tells whether an analysed transform yields exactly one row
 * per row of etl_delta: a plain projection of etl_delta alone, without
 * WHERE, joins, grouping, aggregates, DISTINCT, window functions, set
 * operations, LIMIT, set-returning functions or another read of etl_delta.
 * Then the run counts extracted rows from the load instead of scanning the
 * range once more.  A one-to-one transform is row-local.
 */
static bool
is_one_to_one(Query *q)
{
	RangeTblEntry *rte;

	if (q == NULL || q->setOperations != NULL || q->hasAggs ||
		q->hasTargetSRFs || q->hasWindowFuncs || q->groupClause != NIL ||
		q->groupingSets != NIL || q->havingQual != NULL ||
		q->distinctClause != NIL || q->limitCount != NULL ||
		q->limitOffset != NULL || q->jointree == NULL ||
		q->jointree->quals != NULL ||
		list_length(q->jointree->fromlist) != 1 ||
		!IsA(linitial(q->jointree->fromlist), RangeTblRef) ||
		count_delta_refs(q, 1) != 1)
		return false;
	rte = rt_fetch(((RangeTblRef *) linitial(q->jointree->fromlist))->rtindex,
				   q->rtable);
	return rte->rtekind == RTE_CTE && rte->ctelevelsup == 1 &&
		   strcmp(rte->ctename, "etl_delta") == 0;
}

/*
 * find_delta_walker collects the unqualified RangeVars named etl_delta of a
 * raw parse tree.
 */
static bool
find_delta_walker(Node *node, List **found)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeVar))
	{
		RangeVar *rv = (RangeVar *) node;

		if (rv->schemaname == NULL && rv->catalogname == NULL &&
			strcmp(rv->relname, "etl_delta") == 0)
			*found = lappend(*found, rv);
		return false;
	}
	return raw_expression_tree_walker(node, find_delta_walker, found);
}

/*
 * etl_transform_locate_delta finds the one reference to etl_delta in sql,
 * the text of a row-local transform of pipeline: its byte offset and length
 * (a quoted "etl_delta" or an unquoted name in any case) and whether it has
 * an alias.  Returns false when there is not exactly one, or its text
 * cannot be told apart.
 */
bool
etl_transform_locate_delta(const char *pipeline, const char *sql, int *loc_out,
						   int *len_out, bool *aliased_out)
{
	RawStmt *rs = parse_single_select(pipeline, sql);
	List *found = NIL;
	RangeVar *rv;
	const char *t = sql;
	int loc;
	int len;

	(void) find_delta_walker(rs->stmt, &found);
	if (list_length(found) != 1)
		return false;
	rv = linitial(found);
	loc = rv->location;
	if (loc < 0 || loc >= (int) strlen(t))
		return false;
	if (t[loc] == '"')
	{
		if (strncmp(t + loc, "\"etl_delta\"", 11) != 0)
			return false;
		len = 11;
	}
	else
	{
		if (pg_strncasecmp(t + loc, "etl_delta", 9) != 0)
			return false;
		len = 9;
		/* the name must end there */
		if (IS_HIGHBIT_SET(t[loc + len]) ||
			isalnum((unsigned char) t[loc + len]) || t[loc + len] == '_' ||
			t[loc + len] == '$')
			return false;
	}
	*loc_out = loc;
	*len_out = len;
	*aliased_out = rv->alias != NULL;
	return true;
}

/*
 * analyze_wrapped analyses the transform over the source, as the pipeline
 * owner in a security-restricted operation, and returns the wrapped query.
 * Raises the parser's errors with a context line and, for unknown relations
 * or functions, a hint about the pinned search_path.  With check_perms,
 * checks that the owner may read everything the transform reads.
 */
static Query *
analyze_wrapped(EtlPipeline *p, Oid source_relid, bool check_perms)
{
	EtlUserSwitch sw = { 0 };
	ErrorContextCallback errcb;
	TransformErrorArg arg = { p->name, p->transform };
	RawStmt *rs = parse_single_select(p->name, p->transform);
	SelectStmt *outer = makeNode(SelectStmt);
	SelectStmt *delta = makeNode(SelectStmt);
	ResTarget *star = makeNode(ResTarget);
	ColumnRef *cref = makeNode(ColumnRef);
	RangeSubselect *sub = makeNode(RangeSubselect);
	CommonTableExpr *cte = makeNode(CommonTableExpr);
	WithClause *with = makeNode(WithClause);
	RawStmt *wrapped = makeNode(RawStmt);
	RangeVar *srcrv;
	Query *query;
	MemoryContext oldcxt = CurrentMemoryContext;

	cref->fields = list_make1(makeNode(A_Star));
	cref->location = -1;
	star->val = (Node *) cref;
	star->location = -1;

	srcrv = makeRangeVar(get_namespace_name(get_rel_namespace(source_relid)),
						 get_rel_name(source_relid), -1);
	delta->targetList = list_make1(copyObject(star));
	delta->fromClause = list_make1(srcrv);

	cte->ctename = "etl_delta";
	cte->ctequery = (Node *) delta;
	cte->ctematerialized = CTEMaterializeDefault;
	cte->location = -1;
	with->ctes = list_make1(cte);
	with->location = -1;

	sub->subquery = rs->stmt;
	sub->alias = makeAlias("etl_t", NIL);

	outer->targetList = list_make1(star);
	outer->fromClause = list_make1(sub);
	outer->withClause = with;

	wrapped->stmt = (Node *) outer;
	wrapped->stmt_location = -1;
	wrapped->stmt_len = 0;

	errcb.callback = transform_error_callback;
	errcb.arg = &arg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	etl_become_owner(&sw, p->owner);
	PG_TRY();
	{
		query =
			parse_analyze_fixedparams(wrapped, p->transform, NULL, 0, NULL);
	}
	PG_CATCH();
	{
		ErrorData *edata;

		etl_restore_user(&sw);
		error_context_stack = errcb.previous;
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->hint == NULL &&
			(edata->sqlerrcode == ERRCODE_UNDEFINED_TABLE ||
			 edata->sqlerrcode == ERRCODE_UNDEFINED_FUNCTION ||
			 edata->sqlerrcode == ERRCODE_UNDEFINED_OBJECT))
			edata->hint = pstrdup(
				"The transform runs with search_path = " ETL_PINNED_SEARCH_PATH
				": schema-qualify your own tables, types and functions.");
		FlushErrorState();
		ReThrowError(edata);
	}
	PG_END_TRY();
	error_context_stack = errcb.previous;

	/* the owner must be allowed to read what it reads */
	if (check_perms)
		(void) check_perms_walker((Node *) query, NULL);
	etl_restore_user(&sw);
	return query;
}

/*
 * etl_transform_query returns the analysed transform of a pipeline, wrapped
 * as WITH etl_delta AS (SELECT * FROM <source>) SELECT * FROM (<transform>)
 * AS etl_t (the subquery is the first range table entry), or NULL for the
 * default transform.  Nothing is executed and no privilege is checked
 * (lineage reads the definition only); the analysis runs as the owner.
 */
Query *
etl_transform_query(EtlPipeline *p, Oid source_relid)
{
	if (p->transform == NULL)
		return NULL;
	return analyze_wrapped(p, source_relid, false);
}

/*
 * etl_transform_analyze analyses the transform of p (checking, with
 * check_perms, that the pipeline owner may read what it reads) and returns
 * its output target entries; sets *one_to_one and *row_local (not yet
 * knowing where etl_delta is read in the text) and *transform_out.
 */
List *
etl_transform_analyze(EtlPipeline *p, Oid source_relid, bool check_perms,
					  bool *one_to_one, bool *row_local, Query **transform_out)
{
	Query *query = analyze_wrapped(p, source_relid, check_perms);
	Query *transform = rt_fetch(1, query->rtable)->subquery;
	List *result = NIL;
	ListCell *lc;

	foreach (lc, query->targetList)
	{
		TargetEntry *te = lfirst_node(TargetEntry, lc);

		if (!te->resjunk)
			result = lappend(result, te);
	}
	*one_to_one = is_one_to_one(transform);
	*row_local = is_row_local(transform, 1);
	*transform_out = transform;
	return result;
}
