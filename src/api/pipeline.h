/*-------------------------------------------------------------------------
 *
 * pipeline.h
 *	  What the definition functions (pipeline.c) share with other modules.
 *
 * IDENTIFICATION
 *	  src/api/pipeline.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_PIPELINE_H
#define ETL_PIPELINE_H

#include "postgres.h"

#include "catalog/pipelines.h"

extern EtlPipeline *etl_lock_and_load_pipeline(const char *name,
											   const char *action);

#endif /* ETL_PIPELINE_H */
