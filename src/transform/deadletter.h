/*-------------------------------------------------------------------------
 *
 * deadletter.h
 *	  Dead letters: rows isolated from their batch, with the error that
 *	  rejected them.
 *
 * IDENTIFICATION
 *	  src/transform/deadletter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEADLETTER_H
#define ETL_DEADLETTER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "sql/run_state.h"

typedef struct EtlDeadLetter
{
	const char *stage; /* transform | check | load */
	char *record;	   /* the source row as JSON text */
	int sqlerrcode;
	char *message;
	TimestampTz occurred_at;
} EtlDeadLetter;

/* resolution of a dead letter whose source row has a newer version */
#define ETL_RESOLUTION_SUPERSEDED                                             \
	"superseded: the source row has a newer version"

/* resolution of a dead letter whose source row is gone (modes without a
 * watermark column, whose runs delete the target rows of vanished keys) */
#define ETL_RESOLUTION_GONE "superseded: the source row is gone"

/* dead letters a statement of etl_dead_letters_store() inserts */
#define ETL_DEAD_LETTERS_CHUNK 1000

/* memory (kB) an attempt's dead letters take before they spill to a file */
#define ETL_DEAD_LETTERS_MEM_KB 256

extern EtlDeadLetter *etl_dead_letter_make(const char *stage, char *record,
										   ErrorData *edata);
extern void etl_dead_letters_begin(EtlRun *run);
extern void etl_dead_letters_end(EtlRun *run);
extern void etl_dead_letter_add(EtlRun *run, const char *stage, char *record,
								ErrorData *edata);
extern int64 etl_dead_letters_count(EtlRun *run);
extern bool etl_dead_letter_known(EtlRun *run, const char *stage,
								  const char *record);
extern void etl_dead_letters_json(StringInfo buf, EtlRun *run);
extern void etl_dead_letters_store(EtlRun *run);

#endif /* ETL_DEADLETTER_H */
