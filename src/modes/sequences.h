/*-------------------------------------------------------------------------
 *
 * sequences.h
 *	  The sequences a serial-mode watermark column draws its ids from.
 *
 * IDENTIFICATION
 *	  src/modes/sequences.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SEQUENCES_H
#define ETL_SEQUENCES_H

#include "postgres.h"

#include "nodes/pg_list.h"

extern List *etl_column_sequences(Oid source, const char *column,
								  const char **unsafe);

#endif /* ETL_SEQUENCES_H */
