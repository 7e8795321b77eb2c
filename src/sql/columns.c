/*-------------------------------------------------------------------------
 *
 * columns.c
 *	  The columns of a pipeline's batch: the output columns of its transform
 *	  (analysed by transform.c) mapped to the target's, its keys and the
 *	  target's audit columns.
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

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "parser/parse_coerce.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "sql/columns.h"
#include "sql/transform.h"

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
 * and a row matches several or (NULL) none.  Called for the loads that
 * need it (etl_load_require_unique_key()).
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

	if (p->key == NIL)
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
 * etl_map_columns works out the batch columns of a pipeline: the output
 * columns of its transform (or the source columns the target also has,
 * but those descr->omit_prefix and descr->omit_column name), each mapped
 * to a target column that accepts its type, the key columns among them,
 * and the target's audit columns; the map keeps a copy of *descr for the
 * builders.  Raises a precise error for anything that does not fit.
 * Without check_perms the owner's privileges on what the transform reads
 * are not checked (lineage reads the definition only, and must not fail
 * for all pipelines when one owner lost a privilege or was dropped).  Runs
 * under the pinned settings.
 */
EtlColumnMap *
etl_map_columns(EtlPipeline *p, Oid source_relid, Oid target_relid,
				bool check_perms, const EtlBatchSource *descr)
{
	EtlColumnMap *map = palloc0(sizeof(EtlColumnMap));
	Relation target = table_open(target_relid, AccessShareLock);
	Query *transform = NULL;
	ListCell *lc;

	if (p->transform != NULL)
	{
		List *tlist = etl_transform_analyze(p, source_relid, check_perms,
											&map->one_to_one, &map->row_local,
											&transform);

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
			/* columns of the source that are never loaded (cdc metadata) */
			if ((descr->omit_prefix != NULL &&
				 strncmp(NameStr(a->attname), descr->omit_prefix,
						 strlen(descr->omit_prefix)) == 0) ||
				(descr->omit_column != NULL &&
				 strcmp(NameStr(a->attname), descr->omit_column) == 0))
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
		map->row_local = etl_transform_locate_delta(
			p->name, map->transform_sql, &map->delta_loc, &map->delta_len,
			&map->delta_aliased);

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
	map->source = *descr;
	table_close(target, AccessShareLock);
	return map;
}
