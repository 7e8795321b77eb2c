/*-------------------------------------------------------------------------
 *
 * reserved.c
 *	  The column names the generated SQL gives its own columns next to the
 *	  source's and the transform's, and the refusal of a pipeline whose
 *	  source or transform has a column of one of them.
 *
 *	  The builders of sql/ write these names into the statements of a run:
 *	  a source or transform column of the same name would make a statement
 *	  fail with 42701 (a column twice in a table) or 42702 (an ambiguous
 *	  reference), and only in the runs that reach that statement (a bad row,
 *	  a quarantine check, a key that repeats, a vanished key).  So such a
 *	  pipeline is refused when it is defined, and a run whose source or
 *	  transform has come to have such a column fails before it extracts.
 *	  Names are compared exactly, as identifiers: "ETL_RN" is not reserved.
 *
 * IDENTIFICATION
 *	  src/sql/reserved.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/tupdesc.h"
#include "catalog/pg_attribute.h"
#include "lib/stringinfo.h"
#include "utils/rel.h"

#include "sql/reserved.h"

/*
 * The reserved names.  etl_rn and etl_held: the stage table's row number
 * and hold mark, next to the source's columns (deparse_stage_table.c), and
 * etl_rn next to the transform's output over staged rows (deparse_batch.c);
 * etl_kh, etl_rh and etl_n: mode snapshot's key and row hashes and count,
 * next to the transform's output (deparse_snapshot.c); etl_swap_*: the
 * routing columns of partition_swap's batch table, next to the target
 * columns the transform loads (deparse_swap.h).  Each is refused in the
 * source and in the transform's output alike, whatever the mode and load,
 * so that a pipeline stays valid when they change.
 */
static const char *const reserved_columns[] = {
	"etl_rn",		 "etl_held",	 "etl_kh",
	"etl_rh",		 "etl_n",		 "etl_swap_cur",
	"etl_swap_dest", "etl_swap_gap", "etl_swap_period",
};

/*
 * is_reserved tells whether name is one of reserved_columns.
 */
static bool
is_reserved(const char *name)
{
	for (int i = 0; i < lengthof(reserved_columns); i++)
		if (strcmp(name, reserved_columns[i]) == 0)
			return true;
	return false;
}

/*
 * reserved_list returns the reserved names, quoted and comma-separated, for
 * a message.
 */
static char *
reserved_list(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(reserved_columns); i++)
		appendStringInfo(&buf, "%s\"%s\"", i > 0 ? ", " : "",
						 reserved_columns[i]);
	return buf.data;
}

/*
 * etl_refuse_reserved_source raises 42701 when the source of p (source_relid)
 * has a column of a reserved name.
 */
void
etl_refuse_reserved_source(EtlPipeline *p, Oid source_relid)
{
	Relation rel = relation_open(source_relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || !is_reserved(NameStr(a->attname)))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_COLUMN),
				 errmsg("source %s of pipeline \"%s\" has column \"%s\", "
						"whose name etl_ext reserves",
						p->source, p->name, NameStr(a->attname)),
				 errdetail("The SQL a run generates names its own columns %s "
						   "next to the source's and the transform's.",
						   reserved_list()),
				 errhint("Rename the column, or read the source through a "
						 "view that renames it.")));
	}
	relation_close(rel, AccessShareLock);
}

/*
 * etl_refuse_reserved_columns raises 42701 when the source of p
 * (source_relid) or the output of its transform (the columns of map) has a
 * column of a reserved name.
 */
void
etl_refuse_reserved_columns(EtlPipeline *p, Oid source_relid,
							const EtlColumnMap *map)
{
	ListCell *lc;

	etl_refuse_reserved_source(p, source_relid);
	foreach (lc, map->columns)
	{
		const char *name = ((EtlColumn *) lfirst(lc))->name;

		if (!is_reserved(name))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_COLUMN),
				 errmsg("transform of pipeline \"%s\" produces column "
						"\"%s\", whose name etl_ext reserves",
						p->name, name),
				 errdetail("The SQL a run generates names its own columns %s "
						   "next to the source's and the transform's.",
						   reserved_list()),
				 errhint("Alias the column in the transform (SELECT ... AS "
						 "another_name) and load it into a target column of "
						 "that name.")));
	}
}
