/*-------------------------------------------------------------------------
 *
 * autonomous.h
 *	  Committing a failed run's records in a transaction of their own.
 *
 * IDENTIFICATION
 *	  src/autonomous.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_AUTONOMOUS_H
#define ETL_AUTONOMOUS_H

#include "postgres.h"

extern bool etl_autonomous_commit(const char *payload, const char *what);

#endif /* ETL_AUTONOMOUS_H */
