/*-------------------------------------------------------------------------
 *
 * transform.h
 *	  The analysis of a pipeline's transform: parsed and analysed, never
 *	  executed.
 *
 * IDENTIFICATION
 *	  src/sql/transform.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_TRANSFORM_H
#define ETL_TRANSFORM_H

#include "postgres.h"

#include "nodes/parsenodes.h"

#include "catalog/pipelines.h"

extern char *etl_normalize_transform(const char *pipeline,
									 const char *transform);
extern Query *etl_transform_query(EtlPipeline *p, Oid source_relid);
extern List *etl_transform_analyze(EtlPipeline *p, Oid source_relid,
								   bool check_perms, bool *one_to_one,
								   bool *row_local, Query **transform_out);
extern bool etl_transform_locate_delta(const char *pipeline, const char *sql,
									   int *loc_out, int *len_out,
									   bool *aliased_out);

#endif /* ETL_TRANSFORM_H */
