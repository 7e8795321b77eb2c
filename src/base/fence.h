/*-------------------------------------------------------------------------
 *
 * fence.h
 *	  What code run for a pipeline may not leave in the caller's session.
 *
 * IDENTIFICATION
 *	  src/base/fence.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_FENCE_H
#define ETL_FENCE_H

#include "postgres.h"

extern void etl_fence_init(void);
extern void etl_fence_begin(void);

#endif /* ETL_FENCE_H */
