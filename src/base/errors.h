/*-------------------------------------------------------------------------
 *
 * errors.h
 *	  Error classes: what a run does with an error.
 *
 * IDENTIFICATION
 *	  src/base/errors.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_ERRORS_H
#define ETL_ERRORS_H

#include "postgres.h"

typedef enum EtlErrorClass
{
	ETL_ERROR_TRANSIENT,   /* retried with backoff */
	ETL_ERROR_RECOVERABLE, /* the row goes to the dead letters */
	ETL_ERROR_FATAL		   /* the run fails */
} EtlErrorClass;

extern EtlErrorClass etl_error_class(int sqlerrcode);
extern const char *etl_error_class_name(EtlErrorClass c);

#endif /* ETL_ERRORS_H */
