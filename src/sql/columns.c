/*-------------------------------------------------------------------------
 *
 * columns.c
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
 *	  src/sql/columns.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "base/security.h"
#include "base/settings.h"
#include "sql/columns.h"

typedef struct TransformErrorArg
{
	const char *pipeline;
	const char *transform;
} TransformErrorArg;

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
 * etl_resolve_relation resolves a relation name with the current
 * search_path and returns its OID, or InvalidOid when missing_ok.  role is
 * "source" or "target", for the message.
 */
Oid
etl_resolve_relation(const char *name, const char *role, bool missing_ok)
{
	List *names;
	RangeVar *rv;
	Oid relid;

	names = stringToQualifiedNameList(name);
	rv = makeRangeVarFromNameList(names);
	relid = RangeVarGetRelid(rv, AccessShareLock, true);
	if (!OidIsValid(relid) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%s relation \"%s\" does not exist", role, name),
				 errhint("Create it first, or schema-qualify its name.")));
	return relid;
}

/*
 * etl_primary_key_columns returns the column names of a table's primary
 * key, or NIL when it has none.
 */
List *
etl_primary_key_columns(Oid relid)
{
	Relation rel = table_open(relid, AccessShareLock);
	Oid pkoid = RelationGetPrimaryKeyIndex(rel);
	List *result = NIL;

	if (OidIsValid(pkoid))
	{
		Relation idx = index_open(pkoid, AccessShareLock);

		for (int i = 0; i < idx->rd_index->indnkeyatts; i++)
		{
			AttrNumber att = idx->rd_index->indkey.values[i];

			result = lappend(result, get_attname(relid, att, false));
		}
		index_close(idx, AccessShareLock);
	}
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * etl_require_unique_key refuses a key that is not unique in the target: a
 * primary key or a unique index (valid, not deferred, without expressions
 * or predicate) on exactly the key columns (42P10).  Batch rows are matched
 * with target rows by their key; without such an index a key may repeat,
 * and a row matches several or (NULL) none.
 */
void
etl_require_unique_key(EtlPipeline *p, Oid target_relid)
{
	Relation rel;
	List *indexes;
	ListCell *lc;
	Bitmapset *want = NULL;
	bool found = false;
	StringInfoData cols;

	/*
	 * A partitioned target's unique indexes must include its partition key,
	 * so a key without it is never unique there: partition_swap keeps keys
	 * unique itself (its batch table's unique index, the rebuilt partitions).
	 */
	if (p->key == NIL || p->load == ETL_LOAD_PARTITION_SWAP)
		return;
	initStringInfo(&cols);
	foreach (lc, p->key)
	{
		const char *k = lfirst(lc);

		want = bms_add_member(want, get_attnum(target_relid, k));
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "",
						 quote_identifier(k));
	}

	rel = table_open(target_relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	foreach (lc, indexes)
	{
		Relation idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = idx->rd_index;
		Bitmapset *have = NULL;

		if (form->indisunique && form->indimmediate && form->indisvalid &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			form->indnkeyatts == list_length(p->key))
		{
			for (int i = 0; i < form->indnkeyatts; i++)
				have = bms_add_member(have, form->indkey.values[i]);
			found = bms_equal(have, want);
		}
		index_close(idx, AccessShareLock);
		if (found)
			break;
	}
	table_close(rel, AccessShareLock);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("key (%s) of pipeline \"%s\" is not unique in target "
						"%s",
						cols.data, p->name, p->target),
				 errdetail("Load %s matches batch rows with target rows by "
						   "their key: it needs a primary key or a unique "
						   "index on exactly these columns (not deferrable, "
						   "without expressions or WHERE).",
						   etl_load_names[p->load]),
				 errhint("CREATE UNIQUE INDEX ON %s (%s);", p->target,
						 cols.data)));
}

/*
 * etl_is_audit_column tells whether a name is one of the audit columns that
 * etl_ext fills itself.
 */
bool
etl_is_audit_column(const char *name)
{
	return strcmp(name, ETL_COL_ROW_HASH) == 0 ||
		   strcmp(name, ETL_COL_RUN_ID) == 0 ||
		   strcmp(name, ETL_COL_LOADED_AT) == 0;
}

/*
 * column_cmp orders columns by their position in the target.
 */
static int
column_cmp(const ListCell *a, const ListCell *b)
{
	EtlColumn *ca = lfirst(a);
	EtlColumn *cb = lfirst(b);

	return (int) ca->attnum - (int) cb->attnum;
}

/*
 * map_column finds the target column for one output column and checks that
 * it can receive it.  Returns NULL for a column to skip silently (only when
 * from_source, i.e. the default transform).
 */
static EtlColumn *
map_column(EtlPipeline *p, Relation target, const char *name, Oid type,
		   int32 typmod, bool from_source)
{
	TupleDesc desc = RelationGetDescr(target);
	EtlColumn *col;
	Form_pg_attribute att = NULL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
		{
			att = a;
			break;
		}
	}

	if (etl_is_audit_column(name))
	{
		if (from_source)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("transform of pipeline \"%s\" produces column \"%s\", "
						"which etl_ext fills itself",
						p->name, name),
				 errhint("Remove \"%s\" from the transform's output.", name)));
	}

	if (att == NULL)
	{
		if (from_source)
			return NULL;
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("target relation %s has no column \"%s\"", p->target,
					name),
			 errdetail(
				 "The transform of pipeline \"%s\" produces a column \"%s\".",
				 p->name, name),
			 errhint("Name each output column of the transform after a target "
					 "column (SELECT expr AS column), or add the column to "
					 "the target.")));
	}

	if (att->attgenerated || att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
	{
		if (from_source)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("target column \"%s\" of %s cannot be loaded", name,
						p->target),
				 errdetail("It is a %s column.",
						   att->attgenerated ? "generated"
											 : "GENERATED ALWAYS identity"),
				 errhint("Remove \"%s\" from the transform's output.", name)));
	}

	if (!can_coerce_type(1, &type, &att->atttypid, COERCION_ASSIGNMENT))
		ereport(
			ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" of pipeline \"%s\" is of type %s but "
					"target column \"%s\" of %s is of type %s",
					name, p->name, format_type_with_typemod(type, typmod),
					name, p->target,
					format_type_with_typemod(att->atttypid, att->atttypmod)),
			 errhint("Cast the value in the transform, e.g. SELECT expr::%s "
					 "AS %s.",
					 format_type_with_typemod(att->atttypid, att->atttypmod),
					 quote_identifier(name))));

	col = palloc0(sizeof(EtlColumn));
	col->name = pstrdup(name);
	col->attnum = att->attnum;
	col->src_type = type;
	col->src_typmod = typmod;
	col->tgt_type = att->atttypid;
	col->tgt_typmod = att->atttypmod;
	col->tgt_notnull = att->attnotnull;
	return col;
}

/*
 * check_audit_column records whether the target has an audit column and
 * checks that it can hold what etl_ext writes into it.
 */
static bool
check_audit_column(EtlPipeline *p, Relation target, const char *name,
				   Oid valuetype)
{
	AttrNumber attnum = get_attnum(RelationGetRelid(target), name);
	Oid atttype;

	if (attnum == InvalidAttrNumber)
		return false;
	atttype = TupleDescAttr(RelationGetDescr(target), attnum - 1)->atttypid;
	if (!can_coerce_type(1, &valuetype, &atttype, COERCION_ASSIGNMENT))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("audit column \"%s\" of %s must be of type %s", name,
						p->target, format_type_be(valuetype)),
				 errdetail("It is of type %s.", format_type_be(atttype)),
				 errhint("ALTER TABLE %s ALTER COLUMN %s TYPE %s.", p->target,
						 quote_identifier(name), format_type_be(valuetype))));
	return true;
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
 * locate_delta finds the one reference to etl_delta in the text of a
 * row-local transform: its byte offset and length (a quoted "etl_delta" or
 * an unquoted name in any case) and whether it has an alias.  Returns false
 * when there is not exactly one, or its text cannot be told apart.
 */
static bool
locate_delta(EtlColumnMap *map, const char *pipeline)
{
	RawStmt *rs = parse_single_select(pipeline, map->transform_sql);
	List *found = NIL;
	RangeVar *rv;
	const char *t = map->transform_sql;
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
	map->delta_loc = loc;
	map->delta_len = len;
	map->delta_aliased = rv->alias != NULL;
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
 * analyze_transform analyses the transform (checking that the pipeline owner
 * may read what it reads) and returns its output target entries; sets
 * map->one_to_one and map->row_local (not yet knowing where etl_delta is
 * read in the text).
 */
static List *
analyze_transform(EtlPipeline *p, Oid source_relid, bool check_perms,
				  EtlColumnMap *map, Query **transform_out)
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
	map->one_to_one = is_one_to_one(transform);
	map->row_local = is_row_local(transform, 1);
	*transform_out = transform;
	return result;
}

/*
 * source_key_column returns the source column (attribute number) that key
 * column `name` of the batch is a plain copy of, when the transform yields
 * at most one row per source row (a projection of etl_delta alone, filtered
 * or not: no join, grouping, SRF, set operation); else InvalidAttrNumber.
 * transform NULL: the default transform, which copies columns by name.
 */
static AttrNumber
source_key_column(Query *transform, Oid source_relid, const char *name)
{
	ListCell *lc;

	if (transform == NULL)
		return get_attnum(source_relid, name);
	if (transform->setOperations != NULL || transform->hasAggs ||
		transform->hasTargetSRFs || transform->groupClause != NIL ||
		transform->groupingSets != NIL || transform->jointree == NULL ||
		list_length(transform->jointree->fromlist) != 1 ||
		!IsA(linitial(transform->jointree->fromlist), RangeTblRef))
		return InvalidAttrNumber;
	foreach (lc, transform->targetList)
	{
		TargetEntry *te = lfirst_node(TargetEntry, lc);
		Node *expr = (Node *) te->expr;
		Var *var;
		RangeTblEntry *rte;

		if (te->resjunk || te->resname == NULL ||
			strcmp(te->resname, name) != 0)
			continue;
		while (IsA(expr, RelabelType))
			expr = (Node *) ((RelabelType *) expr)->arg;
		if (!IsA(expr, Var))
			return InvalidAttrNumber;
		var = (Var *) expr;
		if (var->varlevelsup != 0 ||
			var->varno !=
				((RangeTblRef *) linitial(transform->jointree->fromlist))
					->rtindex)
			return InvalidAttrNumber;
		rte = rt_fetch(var->varno, transform->rtable);
		if (rte->rtekind != RTE_CTE || rte->ctelevelsup != 1 ||
			strcmp(rte->ctename, "etl_delta") != 0 || var->varattno <= 0)
			return InvalidAttrNumber;
		return get_attnum(source_relid, strVal(list_nth(rte->eref->colnames,
														var->varattno - 1)));
	}
	return InvalidAttrNumber;
}

/*
 * key_unique_in_source tells whether no two batch rows can share a key:
 * each key column copies a source column, and the source has a unique
 * index over some of those columns (a table's primary key passed through,
 * the common case), so the duplicate keys of one batch need not be looked
 * for.  A key with a NULL part is rejected anyway.
 */
static bool
key_unique_in_source(EtlPipeline *p, Query *transform, Oid source_relid)
{
	Bitmapset *cols = NULL;
	Relation rel;
	List *indexes;
	ListCell *lc;
	bool unique = false;

	if (p->key == NIL)
		return false;
	foreach (lc, p->key)
	{
		AttrNumber att =
			source_key_column(transform, source_relid, lfirst(lc));

		if (att == InvalidAttrNumber)
			return false;
		cols = bms_add_member(cols, att);
	}
	rel = relation_open(source_relid, AccessShareLock);
	if (rel->rd_rel->relkind == RELKIND_RELATION ||
		rel->rd_rel->relkind == RELKIND_MATVIEW ||
		rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		indexes = RelationGetIndexList(rel);
		foreach (lc, indexes)
		{
			Relation idx = index_open(lfirst_oid(lc), AccessShareLock);
			Form_pg_index form = idx->rd_index;
			Bitmapset *have = NULL;

			if (form->indisunique && form->indisvalid &&
				heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs,
							   NULL) &&
				heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred,
							   NULL))
			{
				for (int i = 0; i < form->indnkeyatts; i++)
					have = bms_add_member(have, form->indkey.values[i]);
				unique = bms_is_subset(have, cols);
			}
			index_close(idx, AccessShareLock);
			if (unique)
				break;
		}
	}
	relation_close(rel, AccessShareLock);
	return unique;
}

/*
 * etl_resolve_columns works out the batch columns of a pipeline: the output
 * columns of its transform (or the source columns the target also has),
 * each mapped to a target column that accepts its type, the key columns
 * among them, and the target's audit columns.  Raises a precise error for
 * anything that does not fit.  Runs under the pinned settings.
 */
EtlColumnMap *
etl_resolve_columns(EtlPipeline *p, Oid source_relid, Oid target_relid)
{
	return etl_resolve_columns_ext(p, source_relid, target_relid, true);
}

/*
 * etl_resolve_columns_ext is etl_resolve_columns(); without check_perms the
 * owner's privileges on what the transform reads are not checked (lineage
 * reads the definition only, and must not fail for all pipelines when one
 * owner lost a privilege or was dropped).
 */
EtlColumnMap *
etl_resolve_columns_ext(EtlPipeline *p, Oid source_relid, Oid target_relid,
						bool check_perms)
{
	EtlColumnMap *map = palloc0(sizeof(EtlColumnMap));
	Relation target = table_open(target_relid, AccessShareLock);
	Query *transform = NULL;
	ListCell *lc;

	if (p->transform != NULL)
	{
		List *tlist =
			analyze_transform(p, source_relid, check_perms, map, &transform);

		foreach (lc, tlist)
		{
			TargetEntry *te = lfirst_node(TargetEntry, lc);
			ListCell *lc2;
			EtlColumn *col;

			foreach (lc2, map->columns)
			{
				if (strcmp(((EtlColumn *) lfirst(lc2))->name, te->resname) ==
					0)
					ereport(
						ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("transform of pipeline \"%s\" produces column "
								"\"%s\" more than once",
								p->name, te->resname),
						 errhint("Give each output column its own name.")));
			}
			col =
				map_column(p, target, te->resname, exprType((Node *) te->expr),
						   exprTypmod((Node *) te->expr), false);
			map->columns = lappend(map->columns, col);
		}
		map->transform_sql = p->transform;
	}
	else
	{
		Relation source = relation_open(source_relid, AccessShareLock);
		TupleDesc desc = RelationGetDescr(source);
		StringInfoData sql;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);
			EtlColumn *col;

			if (a->attisdropped)
				continue;
			/* mode cdc: change metadata is not loaded */
			if (p->mode == ETL_MODE_CDC &&
				(strncmp(NameStr(a->attname), ETL_CDC_PREFIX,
						 strlen(ETL_CDC_PREFIX)) == 0 ||
				 strcmp(NameStr(a->attname),
						etl_option_text(p, "op_column", ETL_CDC_DEFAULT_OP)) ==
					 0))
				continue;
			col = map_column(p, target, NameStr(a->attname), a->atttypid,
							 a->atttypmod, true);
			if (col)
				map->columns = lappend(map->columns, col);
		}
		relation_close(source, AccessShareLock);

		if (map->columns == NIL)
			ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
							errmsg("source %s and target %s of pipeline "
								   "\"%s\" have no column in common",
								   p->source, p->target, p->name),
							errhint("Give the pipeline a transform that "
									"produces the target's columns.")));

		initStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT ");
		foreach (lc, map->columns)
			appendStringInfo(
				&sql, "%s%s", foreach_current_index(lc) ? ", " : "",
				quote_identifier(((EtlColumn *) lfirst(lc))->name));
		appendStringInfoString(&sql, " FROM etl_delta");
		map->transform_sql = sql.data;
		map->one_to_one = true;
		map->row_local = true;
	}
	if (map->row_local)
		map->row_local = locate_delta(map, p->name);

	list_sort(map->columns, column_cmp);

	/* the key columns must be among the batch columns */
	foreach (lc, p->key)
	{
		const char *k = lfirst(lc);
		bool found = false;
		ListCell *lc2;

		foreach (lc2, map->columns)
		{
			EtlColumn *col = lfirst(lc2);

			if (strcmp(col->name, k) == 0)
			{
				col->is_key = true;
				found = true;
				if (!col->tgt_notnull)
					map->key_nullable = true;
				if (!OidIsValid(
						lookup_type_cache(col->tgt_type, TYPECACHE_EQ_OPR)
							->eq_opr))
					ereport(
						ERROR,
						(errcode(ERRCODE_UNDEFINED_FUNCTION),
						 errmsg("key column \"%s\" of %s is of type %s, "
								"which has no equality operator",
								k, p->target, format_type_be(col->tgt_type)),
						 errdetail("Batch rows are matched with target "
								   "rows by their key."),
						 errhint("Choose key columns of comparable types, "
								 "e.g. text or jsonb rather than json.")));
			}
		}
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("pipeline \"%s\" does not load key column \"%s\"",
							p->name, k),
					 errdetail(p->transform
								   ? "The transform does not produce it."
								   : "The source has no column of that name."),
					 errhint("Produce the key column in the transform, or "
							 "choose another key.")));
	}

	map->key_unique = key_unique_in_source(p, transform, source_relid);

	map->has_row_hash =
		check_audit_column(p, target, ETL_COL_ROW_HASH, BYTEAOID);
	map->has_run_id = check_audit_column(p, target, ETL_COL_RUN_ID, INT8OID);
	map->has_loaded_at =
		check_audit_column(p, target, ETL_COL_LOADED_AT, TIMESTAMPTZOID);
	table_close(target, AccessShareLock);
	return map;
}
