/*-------------------------------------------------------------------------
 *
 * names.c
 *	  Names as generated SQL writes them: quoted and schema-qualified.
 *
 * IDENTIFICATION
 *	  src/sql/names.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "sql/names.h"

/*
 * etl_relation_sql returns the quoted, schema-qualified name of a relation.
 */
char *
etl_relation_sql(Oid relid)
{
	return quote_qualified_identifier(
		get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}
