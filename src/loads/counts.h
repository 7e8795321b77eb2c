/*-------------------------------------------------------------------------
 *
 * counts.h
 *	  What a load did, as every load and bad-row isolation count it.
 *
 * IDENTIFICATION
 *	  src/loads/counts.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_COUNTS_H
#define ETL_COUNTS_H

#include "postgres.h"

/* what one load did */
typedef struct EtlLoadCounts
{
	int64 batch; /* rows the transform produced */
	int64 inserted;
	int64 updated;
	int64 deleted;
	int64 unchanged;
	bool duplicates; /* the batch has keys twice: nothing was written */
} EtlLoadCounts;

#endif /* ETL_COUNTS_H */
