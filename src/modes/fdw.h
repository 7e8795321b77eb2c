/*-------------------------------------------------------------------------
 *
 * fdw.h
 *	  Sources behind postgres_fdw.
 *
 * IDENTIFICATION
 *	  src/modes/fdw.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_FDW_H
#define ETL_FDW_H

#include "postgres.h"

#include "catalog/pipelines.h"

extern void etl_fdw_defaults(EtlPipeline *p, Oid source);

#endif /* ETL_FDW_H */
