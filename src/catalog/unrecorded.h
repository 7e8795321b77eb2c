/*-------------------------------------------------------------------------
 *
 * unrecorded.h
 *	  Failure records that the autonomous writer could not commit, kept in
 *	  files until a later run records them.
 *
 * IDENTIFICATION
 *	  src/catalog/unrecorded.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_UNRECORDED_H
#define ETL_UNRECORDED_H

#include "postgres.h"

#include "nodes/pg_list.h"

/* one failure record waiting in a file */
typedef struct EtlUnrecorded
{
	int64 pipeline_id;
	int64 run_id;
	char *path;
} EtlUnrecorded;

extern bool etl_unrecorded_save(int64 pipeline_id, int64 run_id,
								const char *payload);
extern List *etl_unrecorded_list(int64 pipeline_id);
extern char *etl_unrecorded_read(EtlUnrecorded *u);
extern void etl_unrecorded_remove(List *records);
extern void etl_unrecorded_remove_at_commit(List *records);
extern int64 etl_unrecorded_count_since(int64 pipeline_id, int64 run_id);
extern void etl_unrecorded_record(int64 pipeline_id);
extern void etl_failure_commit(int64 pipeline_id, int64 run_id,
							   const char *payload, const char *what);

#endif /* ETL_UNRECORDED_H */
