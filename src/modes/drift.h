/*-------------------------------------------------------------------------
 *
 * drift.h
 *	  Schema drift of a pipeline's source (on_schema_change).
 *
 * IDENTIFICATION
 *	  src/modes/drift.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DRIFT_H
#define ETL_DRIFT_H

#include "postgres.h"

#include "sql/run_state.h"

extern char *etl_source_shape(Oid relid);
extern void etl_schema_drift(EtlRun *run);

#endif /* ETL_DRIFT_H */
