/*-------------------------------------------------------------------------
 *
 * standby.h
 *	  The refusal of the writing entry points on a hot standby.
 *
 * IDENTIFICATION
 *	  src/base/standby.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_STANDBY_H
#define ETL_STANDBY_H

#include "postgres.h"

extern void etl_refuse_on_standby(const char *function, const char *object);
extern char *etl_pipeline_object(const char *name);

#endif /* ETL_STANDBY_H */
