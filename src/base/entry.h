/*-------------------------------------------------------------------------
 *
 * entry.h
 *	  The entry protocol of every SQL-callable function of etl_ext that runs
 *	  SQL: etl_entry_begin() / etl_entry_end() around its body.
 *
 * IDENTIFICATION
 *	  src/base/entry.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_ENTRY_H
#define ETL_ENTRY_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"

/* what etl_entry_begin() sets up besides the SPI connection */
#define ETL_ENTRY_PINNED 0		   /* pinned settings and the fence */
#define ETL_ENTRY_WRITE 0x01	   /* and the refusal on a hot standby */
#define ETL_ENTRY_MONITOR 0x02	   /* and no JIT (short monitoring queries) */
#define ETL_ENTRY_CALLER_PATH 0x04 /* pinned only at etl_entry_pin() */
#define ETL_ENTRY_NESTED 0x08	   /* SPI only: no setting changes */

/* one call of an entry point, from etl_entry_begin() to etl_entry_end() */
typedef struct EtlEntry
{
	const char *function;	 /* SQL name, for the standby refusal */
	const char *object;		 /* what it was called for, same */
	MemoryContext callercxt; /* where results go */
	int flags;
	int nestlevel; /* GUC nest level of the pinned settings, or -1 */
	bool connected;
} EtlEntry;

extern void etl_entry_begin(EtlEntry *e, int flags);
extern void etl_entry_begin_write(EtlEntry *e, int flags, const char *function,
								  const char *object);
extern void etl_entry_pin(EtlEntry *e);
extern void etl_entry_end(EtlEntry *e);

extern text *etl_entry_text(EtlEntry *e, const char *s);
extern Datum etl_entry_tuple(EtlEntry *e, TupleDesc tupdesc, Datum *values,
							 bool *nulls);
extern MemoryContext etl_entry_to_caller(EtlEntry *e);

#endif /* ETL_ENTRY_H */
