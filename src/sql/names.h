/*-------------------------------------------------------------------------
 *
 * names.h
 *	  Names as generated SQL writes them.
 *
 * IDENTIFICATION
 *	  src/sql/names.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_NAMES_H
#define ETL_NAMES_H

#include "postgres.h"

extern char *etl_relation_sql(Oid relid);

#endif /* ETL_NAMES_H */
