/*-------------------------------------------------------------------------
 *
 * fdw.c
 *	  Sources behind postgres_fdw: a fetch size for bulk extraction.
 *
 *	  postgres_fdw fetches 100 rows per round trip unless the foreign table
 *	  or its server sets fetch_size.  A pipeline reads whole ranges, so when
 *	  neither sets it, etl_create_pipeline() and etl_alter_pipeline() give
 *	  the foreign table one (ETL_FDW_FETCH_SIZE) if the caller owns it, and
 *	  otherwise say how.  The watermark predicate itself is pushed down by
 *	  postgres_fdw (built-in operators on parameters), which etl_explain()
 *	  shows.
 *
 * IDENTIFICATION
 *	  src/modes/fdw.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "modes/fdw.h"
#include "sql/names.h"

/* rows per round trip etl_ext gives a postgres_fdw source */
#define ETL_FDW_FETCH_SIZE "10000"

static bool
has_option(List *options, const char *name)
{
	ListCell *lc;

	foreach (lc, options)
		if (strcmp(((DefElem *) lfirst(lc))->defname, name) == 0)
			return true;
	return false;
}

/*
 * etl_fdw_defaults gives a postgres_fdw foreign table source a fetch_size
 * when neither it nor its server has one.
 */
void
etl_fdw_defaults(EtlPipeline *p, Oid source)
{
	ForeignTable *ft;
	ForeignServer *server;
	ForeignDataWrapper *fdw;
	char *rel_sql;

	if (get_rel_relkind(source) != RELKIND_FOREIGN_TABLE)
		return;
	ft = GetForeignTable(source);
	server = GetForeignServer(ft->serverid);
	fdw = GetForeignDataWrapper(server->fdwid);
	if (strcmp(fdw->fdwname, "postgres_fdw") != 0 ||
		has_option(ft->options, "fetch_size") ||
		has_option(server->options, "fetch_size"))
		return;

	rel_sql = etl_relation_sql(source);
	if (!pg_class_ownercheck(source, GetUserId()))
	{
		ereport(NOTICE,
				(errmsg("foreign table %s of pipeline \"%s\" fetches 100 rows "
						"per round trip",
						rel_sql, p->name),
				 errhint("Its owner can raise that for bulk extraction: "
						 "ALTER FOREIGN TABLE %s OPTIONS (ADD fetch_size "
						 "'" ETL_FDW_FETCH_SIZE "');",
						 rel_sql)));
		return;
	}
	etl_spi_exec(psprintf("ALTER FOREIGN TABLE %s OPTIONS (ADD fetch_size "
						  "'" ETL_FDW_FETCH_SIZE "')",
						  rel_sql),
				 NULL, SPI_OK_UTILITY, InvalidSnapshot);
	ereport(NOTICE,
			(errmsg("fetch_size of foreign table %s set to " ETL_FDW_FETCH_SIZE
					" for bulk extraction",
					rel_sql),
			 errdetail("Neither the table nor its server set one; "
					   "postgres_fdw's default is 100 rows per round trip.")));
}
