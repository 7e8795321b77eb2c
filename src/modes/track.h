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

#include "commands/trigger.h"

#include "catalog/pipelines.h"

/* the name of the trigger etl_track_changes() creates */
#define ETL_TRACK_TRIGGER "etl_track_changes"

/* the events it fires on: BEFORE INSERT OR UPDATE, FOR EACH ROW */
#define ETL_TRACK_TGTYPE                                                      \
	(TRIGGER_TYPE_ROW | TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_INSERT |           \
	 TRIGGER_TYPE_UPDATE)

extern bool etl_track_find_trigger(Oid relid, Trigger *out);
extern void etl_track_check(EtlPipeline *p, Oid source);
extern void etl_track_refuse_swap(EtlPipeline *p, Oid target);

#endif /* ETL_TRACK_H */
