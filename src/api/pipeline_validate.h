/*-------------------------------------------------------------------------
 *
 * pipeline_validate.h
 *	  The validation of a pipeline's definition.
 *
 * IDENTIFICATION
 *	  src/api/pipeline_validate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_PIPELINE_VALIDATE_H
#define ETL_PIPELINE_VALIDATE_H

#include "postgres.h"

#include "catalog/pipelines.h"

/* relations of a definition, resolved with the caller's search_path */
typedef struct EtlPipelineRelations
{
	Oid source;
	Oid target;
} EtlPipelineRelations;

extern void etl_pipeline_check_name(const char *name);
extern Oid etl_pipeline_resolve_relation(const char *name, const char *role);
extern void etl_pipeline_notice_unsafe_serial(EtlPipeline *p, Oid source);
extern void etl_pipeline_validate(EtlPipeline *p, EtlPipelineRelations *rels);

#endif /* ETL_PIPELINE_VALIDATE_H */
