/*-------------------------------------------------------------------------
 *
 * deparse_load.h
 *	  The statements of the loads merge, append and delete_insert, and the
 *	  deletes of modes full and cdc.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_load.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_LOAD_H
#define ETL_DEPARSE_LOAD_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "sql/run_state.h"

extern char *etl_deparse_insert(EtlRun *run, bool skip_existing);
extern void etl_append_changed(StringInfo buf, EtlRun *run, const char *alias);
extern char *etl_deparse_classify(EtlRun *run);
extern char *etl_deparse_update(EtlRun *run);
extern char *etl_deparse_revive(EtlRun *run);
extern char *etl_deparse_delete(EtlRun *run);
extern char *etl_deparse_delete_changed(EtlRun *run);
extern char *etl_deparse_delete_vanished(EtlRun *run);
extern char *etl_deparse_delete_all(EtlRun *run);
extern char *etl_deparse_cdc_delete(EtlRun *run);
extern char *etl_deparse_cdc_bad_operations(EtlRun *run, const char *op);

#endif /* ETL_DEPARSE_LOAD_H */
