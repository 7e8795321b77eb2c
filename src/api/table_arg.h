/*-------------------------------------------------------------------------
 *
 * table_arg.h
 *	  The table argument of an owner-only function on a source table.
 *
 * IDENTIFICATION
 *	  src/api/table_arg.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_TABLE_ARG_H
#define ETL_TABLE_ARG_H

#include "fmgr.h"

#include "base/entry.h"

/* what an owner-only function on a table says when it refuses one */
typedef struct EtlTableArgText
{
	const char *function;		/* the SQL function, as the caller wrote it */
	const char *purpose;		/* "must be owner of table %s to <purpose>" */
	const char *owner_detail;	/* errdetail of that refusal, or NULL */
	const char *not_table_hint; /* errhint when the relation is no table */
} EtlTableArgText;

extern Oid etl_owned_table_arg(FunctionCallInfo fcinfo, EtlEntry *e,
							   const EtlTableArgText *text, char **rel_sql);

#endif /* ETL_TABLE_ARG_H */
