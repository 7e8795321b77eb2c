/*-------------------------------------------------------------------------
 *
 * replay.h
 *	  The replay of dead letters.
 *
 * IDENTIFICATION
 *	  src/run/replay.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_REPLAY_H
#define ETL_REPLAY_H

#include "postgres.h"

/* what a replay did with the pending dead letters */
typedef struct EtlReplayResult
{
	int64 retried;		 /* pending when it started */
	int64 resolved;		 /* reloaded, or superseded by a newer row */
	int64 still_pending; /* failed again */
} EtlReplayResult;

extern void etl_replay_dead_letters(const char *name, EtlReplayResult *res);

#endif /* ETL_REPLAY_H */
