/*-------------------------------------------------------------------------
 *
 * table_arg.c
 *	  The table argument of an owner-only function on a source table
 *	  (etl_track_changes, etl_rebase_xid): the checks both make before they
 *	  change the table.
 *
 * IDENTIFICATION
 *	  src/api/table_arg.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "api/table_arg.h"
#include "sql/names.h"

/*
 * etl_owned_table_arg reads argument 0 of fcinfo, a table (regclass), for
 * an owner-only function on it.  It refuses NULL (22004) and a relation
 * that does not exist (42P01), begins the write entry e (pinned, naming
 * the function and the table: etl_entry_begin_write()), then refuses a
 * relation that is not a table or a partitioned table (42809) and a caller
 * who does not own it (42501), with the words of text.  Returns the
 * table's oid and sets *rel_sql to its qualified, quoted name.
 */
Oid
etl_owned_table_arg(FunctionCallInfo fcinfo, EtlEntry *e,
					const EtlTableArgText *text, char **rel_sql)
{
	Oid relid;
	char kind;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("source must not be NULL")));
	relid = PG_GETARG_OID(0);
	kind = get_rel_relkind(relid);
	if (kind == '\0')
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("relation with OID %u does not exist", relid)));
	*rel_sql = etl_relation_sql(relid);
	etl_entry_begin_write(e, ETL_ENTRY_PINNED, text->function,
						  psprintf("table %s", *rel_sql));
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("%s is not a table", *rel_sql),
						errhint("%s", text->not_table_hint)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to %s", *rel_sql,
						text->purpose),
				 text->owner_detail ? errdetail("%s", text->owner_detail) : 0,
				 errhint("Ask its owner to run SELECT %s(%s);", text->function,
						 quote_literal_cstr(*rel_sql))));
	return relid;
}
