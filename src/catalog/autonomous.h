/*-------------------------------------------------------------------------
 *
 * autonomous.h
 *	  Committing a failed run's records in a transaction of their own.
 *
 * IDENTIFICATION
 *	  src/catalog/autonomous.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_AUTONOMOUS_H
#define ETL_AUTONOMOUS_H

#include "postgres.h"

/* why etl_autonomous_write() could not commit */
typedef enum EtlAutonomousFailure
{
	ETL_AUTONOMOUS_NO_SLOT,
	ETL_AUTONOMOUS_FAILED
} EtlAutonomousFailure;

extern bool etl_autonomous_write(const char *payload, const char *what,
								 EtlAutonomousFailure *why, char **error,
								 int *sqlerrcode);
extern bool etl_autonomous_commit(const char *payload, const char *what);
extern bool etl_failure_record_apply(Datum record);

#endif /* ETL_AUTONOMOUS_H */
