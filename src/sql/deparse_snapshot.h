/*-------------------------------------------------------------------------
 *
 * deparse_snapshot.h
 *	  The statements of mode snapshot.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_SNAPSHOT_H
#define ETL_DEPARSE_SNAPSHOT_H

#include "postgres.h"

#include "sql/run_state.h"

extern char *etl_deparse_snapshot_classify(EtlRun *run);
extern char *etl_deparse_snapshot_delete(EtlRun *run, const char *soft_column);
extern char *etl_deparse_snapshot_revive(EtlRun *run, const char *soft_column);
extern char *etl_deparse_snapshot_vanished_keys(EtlRun *run);
extern char *etl_deparse_snapshot_signatures(EtlRun *run, bool none_yet,
											 bool repeats);

#endif /* ETL_DEPARSE_SNAPSHOT_H */
