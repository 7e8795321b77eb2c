/*-------------------------------------------------------------------------
 *
 * track.h
 *	  Change tracking for mode xid: the tracking trigger and its checks.
 *
 * IDENTIFICATION
 *	  src/modes/track.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_TRACK_H
#define ETL_TRACK_H

#include "postgres.h"

#include "catalog/pipelines.h"

extern void etl_track_check(EtlPipeline *p, Oid source);
extern void etl_track_refuse_swap(EtlPipeline *p, Oid target);

#endif /* ETL_TRACK_H */
