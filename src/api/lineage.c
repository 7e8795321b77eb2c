/*-------------------------------------------------------------------------
 *
 * lineage.c
 *	  Column lineage of a pipeline, read from the analysed transform (the
 *	  query tree, not the text).
 *
 *	  For each output column of the transform, the Vars of its expression are
 *	  followed down through subqueries, CTEs (etl_delta among them: its
 *	  columns are the source's), joins and sublinks to the columns of base
 *	  relations.  A column whose expression is a plain column all the way
 *	  down is DIRECT; anything else (an expression, a cast, an aggregate) is
 *	  INDIRECT.  Columns of the pipeline's source are named bare, columns of
 *	  other relations (dimension tables) as schema.table.column.
 *
 *	  Each call reads one pipeline, in a subtransaction: a pipeline whose
 *	  definition no longer analyses (a column its transform reads was
 *	  dropped, a joined table is gone) gives no rows and a WARNING naming
 *	  it and its error, so that the SQL functions that read every
 *	  pipeline's lineage (etl_lineage, etl_lineage_upstream,
 *	  etl_lineage_dot, etl_openlineage) answer for the others.
 *
 * IDENTIFICATION
 *	  src/api/lineage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "postmaster/postmaster.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/settings.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "modes/mode.h"
#include "sql/columns.h"
#include "sql/names.h"
#include "sql/run_state.h"
#include "sql/transform.h"
#include "transform/stage.h"

PG_FUNCTION_INFO_V1(etl_lineage_columns);
PG_FUNCTION_INFO_V1(etl_lineage_relations);
PG_FUNCTION_INFO_V1(etl_lineage_namespace);

typedef struct LineageWalk
{
	List *stack; /* queries, innermost first */
	Oid source_relid;
	List *columns;	 /* LineageCol *: what the expression reads */
	List *relations; /* Oid: relations other than the source */
} LineageWalk;

/* a base column an expression reads */
typedef struct LineageCol
{
	Oid relid;
	char *att;
	char *text; /* att for the source's columns, else schema.table.att */
} LineageCol;

static bool lineage_walker(Node *node, LineageWalk *w);

/*
 * add_column notes that the expression reads column att of relid.
 */
static void
add_column(LineageWalk *w, Oid relid, const char *att)
{
	LineageCol *c;
	ListCell *lc;
	char *text = relid == w->source_relid
					 ? pstrdup(att)
					 : psprintf("%s.%s", etl_relation_sql(relid),
								quote_identifier(att));

	foreach (lc, w->columns)
		if (strcmp(((LineageCol *) lfirst(lc))->text, text) == 0)
			return;
	c = palloc(sizeof(LineageCol));
	c->relid = relid;
	c->att = pstrdup(att);
	c->text = text;
	w->columns = lappend(w->columns, c);
	if (relid != w->source_relid)
		w->relations = list_append_unique_oid(w->relations, relid);
}

/*
 * walk_in walks expr with the query stack replaced by stack.
 */
static void
walk_in(Node *expr, List *stack, LineageWalk *w)
{
	List *saved = w->stack;

	w->stack = stack;
	(void) lineage_walker(expr, w);
	w->stack = saved;
}

/*
 * resolve_var follows one Var to the base columns it reads.
 */
static void
resolve_var(Var *var, LineageWalk *w)
{
	List *stack = list_copy_tail(w->stack, var->varlevelsup);
	Query *q = linitial(stack);
	RangeTblEntry *rte = rt_fetch(var->varno, q->rtable);

	switch (rte->rtekind)
	{
		case RTE_RELATION:
		{
			TupleDesc desc;
			Relation rel;

			if (var->varattno > 0)
			{
				add_column(w, rte->relid,
						   get_attname(rte->relid, var->varattno, false));
				break;
			}
			/* a whole-row reference reads every column */
			rel = relation_open(rte->relid, AccessShareLock);
			desc = RelationGetDescr(rel);
			for (int i = 0; i < desc->natts; i++)
			{
				Var v = *var;

				if (TupleDescAttr(desc, i)->attisdropped)
					continue;
				v.varattno = i + 1;
				v.varlevelsup = 0;
				walk_in((Node *) &v, stack, w);
			}
			relation_close(rel, AccessShareLock);
			break;
		}
		case RTE_SUBQUERY:
			if (var->varattno > 0)
			{
				TargetEntry *te =
					list_nth(rte->subquery->targetList, var->varattno - 1);

				walk_in((Node *) te->expr, lcons(rte->subquery, stack), w);
			}
			else
				walk_in((Node *) rte->subquery->targetList,
						lcons(rte->subquery, stack), w);
			break;
		case RTE_CTE:
		{
			List *cstack = list_copy_tail(stack, rte->ctelevelsup);
			Query *cq = linitial(cstack);
			ListCell *lc;

			foreach (lc, cq->cteList)
			{
				CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);
				Query *ctequery;

				if (strcmp(cte->ctename, rte->ctename) != 0)
					continue;
				ctequery = castNode(Query, cte->ctequery);
				if (var->varattno > 0)
				{
					TargetEntry *te =
						list_nth(ctequery->targetList, var->varattno - 1);

					walk_in((Node *) te->expr, lcons(ctequery, cstack), w);
				}
				else
					walk_in((Node *) ctequery->targetList,
							lcons(ctequery, cstack), w);
				break;
			}
			break;
		}
		case RTE_JOIN:
			if (var->varattno > 0)
				walk_in(list_nth(rte->joinaliasvars, var->varattno - 1), stack,
						w);
			break;
		default:
			break;
	}
}

/*
 * lineage_walker collects the base columns an expression reads; a sublink's
 * query is walked with itself pushed on the stack.
 */
static bool
lineage_walker(Node *node, LineageWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		resolve_var((Var *) node, w);
		return false;
	}
	if (IsA(node, SubLink))
	{
		SubLink *sl = (SubLink *) node;
		Query *sub = castNode(Query, sl->subselect);

		(void) lineage_walker(sl->testexpr, w);
		walk_in((Node *) sub->targetList, lcons(sub, w->stack), w);
		return false;
	}
	return expression_tree_walker(node, lineage_walker, w);
}

/*
 * is_direct tells whether an expression is a plain column all the way down
 * (through subqueries, CTEs and join aliases, ignoring binary-compatible
 * relabelling).
 */
static bool
is_direct(Node *expr, List *stack)
{
	Var *var;
	Query *q;
	RangeTblEntry *rte;

	while (expr && IsA(expr, RelabelType))
		expr = (Node *) ((RelabelType *) expr)->arg;
	if (expr == NULL || !IsA(expr, Var))
		return false;
	var = (Var *) expr;
	if (var->varattno <= 0)
		return false;
	stack = list_copy_tail(stack, var->varlevelsup);
	q = linitial(stack);
	rte = rt_fetch(var->varno, q->rtable);
	switch (rte->rtekind)
	{
		case RTE_RELATION:
			return true;
		case RTE_SUBQUERY:
			return is_direct(
				(Node *) ((TargetEntry *) list_nth(rte->subquery->targetList,
												   var->varattno - 1))
					->expr,
				lcons(rte->subquery, stack));
		case RTE_JOIN:
			return is_direct(list_nth(rte->joinaliasvars, var->varattno - 1),
							 stack);
		case RTE_CTE:
		{
			List *cstack = list_copy_tail(stack, rte->ctelevelsup);
			ListCell *lc;

			foreach (lc, ((Query *) linitial(cstack))->cteList)
			{
				CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);
				Query *cq = castNode(Query, cte->ctequery);

				if (strcmp(cte->ctename, rte->ctename) == 0)
					return is_direct(
						(Node *) ((TargetEntry *) list_nth(cq->targetList,
														   var->varattno - 1))
							->expr,
						lcons(cq, cstack));
			}
			return false;
		}
		default:
			return false;
	}
}

/*
 * relations_walker collects every relation other than the source that a
 * query or its subqueries, CTEs and sublinks read (in FROM, WHERE or JOIN
 * alike).
 */
static bool
relations_walker(Node *node, LineageWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		ListCell *lc;

		foreach (lc, ((Query *) node)->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind == RTE_RELATION && rte->relid != w->source_relid)
				w->relations =
					list_append_unique_oid(w->relations, rte->relid);
		}
		return query_tree_walker((Query *) node, relations_walker, w, 0);
	}
	return expression_tree_walker(node, relations_walker, w);
}

/*
 * column_cmp orders columns by their text.
 */
static int
column_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(((LineageCol *) lfirst(a))->text,
				  ((LineageCol *) lfirst(b))->text);
}

/*
 * input_fields_json returns the columns as a JSON array of
 * {"schema", "table", "field"} (names unquoted).
 */
static char *
input_fields_json(List *columns)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	foreach (lc, columns)
	{
		LineageCol *c = lfirst(lc);

		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, "{\"schema\": ");
		escape_json(&buf, get_namespace_name(get_rel_namespace(c->relid)));
		appendStringInfoString(&buf, ", \"table\": ");
		escape_json(&buf, get_rel_name(c->relid));
		appendStringInfoString(&buf, ", \"field\": ");
		escape_json(&buf, c->att);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/*
 * lineage_setup reads a pipeline and prepares the walk; returns its analysed
 * transform (NULL for the default transform).  The analysis runs as the
 * pipeline owner (sql/transform.c) and checks no privilege: lineage reads the
 * definition only.  A NULL pipeline name is refused (22004).
 */
static Query *
lineage_setup(FunctionCallInfo fcinfo, EtlRun *run)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline name must not be NULL"),
				 errhint("Name a pipeline of etl.pipelines, or call "
						 "etl_lineage() for the lineage of every pipeline.")));
	run->p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
							  InvalidSnapshot);
	etl_run_resolve_relations(run);
	run->map = etl_resolve_columns_ext(run->p, run->source_relid,
									   run->target_relid, false);
	return etl_transform_query(run->p, run->source_relid);
}

/* what a call reads: its pipeline, and the rows it returns */
typedef struct LineageCall
{
	FunctionCallInfo fcinfo;
	MemoryContext callercxt; /* where the rows are made */
	List *rows;				 /* Datum arrays (values), in order */
} LineageCall;

/*
 * lineage_read runs read(run, call) in a subtransaction, after refusing a
 * NULL pipeline name (22004) and an unknown pipeline (42704).  An error
 * about the pipeline's definition (anything but a cancellation, a lack of
 * resources, a system or internal error, a transaction rollback) is turned
 * into a WARNING naming the pipeline and the error, and the call returns no
 * rows; the others propagate.  Returns whether read succeeded.
 */
static bool
lineage_read(LineageCall *call, EtlSubxactFn read)
{
	FunctionCallInfo fcinfo = call->fcinfo;
	EtlRun run = { 0 };
	ErrorData *edata;
	char *name;
	char *category;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline name must not be NULL"),
				 errhint("Name a pipeline of etl.pipelines, or call "
						 "etl_lineage() for the lineage of every pipeline.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	/* an unknown pipeline is the caller's error, not its definition's */
	(void) etl_catalog_load(name, false, InvalidSnapshot);
	edata = etl_in_subxact(read, &run, call, false);
	if (edata == NULL)
		return true;
	category = unpack_sql_state(ERRCODE_TO_CATEGORY(edata->sqlerrcode));
	if (strncmp(category, "40", 2) == 0 || strncmp(category, "53", 2) == 0 ||
		strncmp(category, "57", 2) == 0 || strncmp(category, "58", 2) == 0 ||
		strncmp(category, "XX", 2) == 0)
		ReThrowError(edata);
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("lineage of pipeline \"%s\" left out: %s", name,
					edata->message),
			 errdetail("Its definition no longer analyses (SQLSTATE %s); the "
					   "lineage of the other pipelines is not affected.",
					   unpack_sql_state(edata->sqlerrcode)),
			 errhint("SELECT etl_alter_pipeline(%s) validates it again and "
					 "says what to fix.",
					 quote_literal_cstr(name))));
	FreeErrorData(edata);
	list_free(call->rows);
	call->rows = NIL;
	return false;
}

/*
 * lineage_put returns the rows of call through fcinfo's tuplestore.
 */
static void
lineage_put(LineageCall *call)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) call->fcinfo->resultinfo;
	ListCell *lc;

	foreach (lc, call->rows)
	{
		Datum *values = lfirst(lc);
		bool nulls[4] = { 0 };

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
}

/*
 * read_columns (the body of lineage_read for etl_lineage_columns) walks
 * each output column of the pipeline's transform and adds its row to call.
 */
static void
read_columns(EtlRun *run, void *arg)
{
	LineageCall *call = arg;
	FunctionCallInfo fcinfo = call->fcinfo;
	Query *query;
	ListCell *lc;

	query = lineage_setup(fcinfo, run);
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);
		LineageWalk w = { 0 };
		bool direct;
		Datum *values;
		Datum *elems;
		ListCell *lc2;
		int i = 0;
		char *inputs;
		MemoryContext old;

		w.source_relid = run->source_relid;
		if (query == NULL)
		{
			/* the default transform: the source column of the same name */
			add_column(&w, run->source_relid, col->name);
			direct = true;
		}
		else
		{
			TargetEntry *te = NULL;

			foreach (lc2, query->targetList)
			{
				TargetEntry *t = lfirst_node(TargetEntry, lc2);

				if (!t->resjunk && strcmp(t->resname, col->name) == 0)
					te = t;
			}
			if (te == NULL)
				continue;
			w.stack = list_make1(query);
			(void) lineage_walker((Node *) te->expr, &w);
			direct = is_direct((Node *) te->expr, list_make1(query));
		}
		list_sort(w.columns, column_cmp);
		inputs = input_fields_json(w.columns);

		old = MemoryContextSwitchTo(call->callercxt);
		values = palloc(sizeof(Datum) * 4);
		elems = palloc(sizeof(Datum) * Max(list_length(w.columns), 1));
		foreach (lc2, w.columns)
			elems[i++] =
				CStringGetTextDatum(((LineageCol *) lfirst(lc2))->text);
		values[0] = CStringGetTextDatum(col->name);
		values[1] = PointerGetDatum(
			construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT));
		values[2] = CStringGetTextDatum(direct ? "DIRECT" : "INDIRECT");
		values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(inputs));
		call->rows = lappend(call->rows, values);
		MemoryContextSwitchTo(old);
	}
}

/*
 * etl_lineage_columns(pipeline text)
 *	 RETURNS TABLE (target_column text, source_columns text[],
 *					transformation text, input_fields jsonb)
 *
 * The column lineage of a pipeline's transform; input_fields names each
 * column read as {schema, table, field}.  No rows, and a WARNING, for a
 * pipeline whose definition no longer analyses (lineage_read).
 */
Datum
etl_lineage_columns(PG_FUNCTION_ARGS)
{
	LineageCall call = { fcinfo, CurrentMemoryContext, NIL };
	EtlEntry e;

	InitMaterializedSRF(fcinfo, 0);
	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	if (lineage_read(&call, read_columns))
		lineage_put(&call);
	etl_entry_end(&e);
	return (Datum) 0;
}

/*
 * relkind_name names a kind of relation as etl_lineage_relations reports it.
 */
static const char *
relkind_name(char relkind)
{
	switch (relkind)
	{
		case RELKIND_RELATION:
			return "table";
		case RELKIND_PARTITIONED_TABLE:
			return "partitioned table";
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		default:
			return "relation";
	}
}

/*
 * read_relations (the body of lineage_read for etl_lineage_relations) adds
 * a row to call for each relation other than its source that the
 * pipeline's transform reads.
 */
static void
read_relations(EtlRun *run, void *arg)
{
	LineageCall *call = arg;
	Query *query = lineage_setup(call->fcinfo, run);
	LineageWalk w = { 0 };
	ListCell *lc;

	w.source_relid = run->source_relid;
	if (query != NULL)
		(void) relations_walker((Node *) query, &w);
	foreach (lc, w.relations)
	{
		Oid relid = lfirst_oid(lc);
		MemoryContext old = MemoryContextSwitchTo(call->callercxt);
		Datum *values = palloc(sizeof(Datum) * 2);

		values[0] = CStringGetTextDatum(etl_relation_sql(relid));
		values[1] = CStringGetTextDatum(relkind_name(get_rel_relkind(relid)));
		call->rows = lappend(call->rows, values);
		MemoryContextSwitchTo(old);
	}
}

/*
 * etl_lineage_relations(pipeline text) RETURNS TABLE (relation text, kind text)
 *
 * The relations other than its source that a pipeline's transform reads
 * (schema-qualified, quoted).  No rows, and a WARNING, for a pipeline whose
 * definition no longer analyses (lineage_read).
 */
Datum
etl_lineage_relations(PG_FUNCTION_ARGS)
{
	LineageCall call = { fcinfo, CurrentMemoryContext, NIL };
	EtlEntry e;

	InitMaterializedSRF(fcinfo, 0);
	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	if (lineage_read(&call, read_relations))
		lineage_put(&call);
	etl_entry_end(&e);
	return (Datum) 0;
}

/*
 * etl_lineage_namespace() RETURNS text
 *
 * The OpenLineage namespace of this server's datasets and jobs:
 * etl.lineage_namespace when set, else postgres://<host name>:<port>.
 */
Datum
etl_lineage_namespace(PG_FUNCTION_ARGS)
{
	char host[256];

	if (etl_lineage_namespace_setting != NULL &&
		etl_lineage_namespace_setting[0] != '\0')
		PG_RETURN_TEXT_P(cstring_to_text(etl_lineage_namespace_setting));
	if (gethostname(host, sizeof(host)) != 0)
		strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	PG_RETURN_TEXT_P(
		cstring_to_text(psprintf("postgres://%s:%d", host, PostPortNumber)));
}
