/*-------------------------------------------------------------------------
 *
 * safe_bounds.h
 *	  What a run waits for, or stays below, so that no late commit is lost.
 *
 * IDENTIFICATION
 *	  src/modes/safe_bounds.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SAFE_BOUNDS_H
#define ETL_SAFE_BOUNDS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

extern TimestampTz etl_oldest_open_xact_start(void);
extern void etl_wait_for_writers(Oid source, List *sequences);
extern char *etl_prepared_writer(Oid source);

#endif /* ETL_SAFE_BOUNDS_H */
