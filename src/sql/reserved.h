/*-------------------------------------------------------------------------
 *
 * reserved.h
 *	  The column names the generated SQL gives its own columns next to the
 *	  source's and the transform's, and the refusal of a pipeline whose
 *	  source or transform has a column of one of them.
 *
 * IDENTIFICATION
 *	  src/sql/reserved.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RESERVED_H
#define ETL_RESERVED_H

#include "postgres.h"

#include "catalog/pipelines.h"
#include "sql/columns.h"

extern void etl_refuse_reserved_source(EtlPipeline *p, Oid source_relid);
extern void etl_refuse_reserved_columns(EtlPipeline *p, Oid source_relid,
										const EtlColumnMap *map);

#endif /* ETL_RESERVED_H */
