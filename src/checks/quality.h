/*-------------------------------------------------------------------------
 *
 * quality.h
 *	  Quality checks: definitions, and their evaluation on each batch.
 *
 * IDENTIFICATION
 *	  src/checks/quality.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_QUALITY_H
#define ETL_QUALITY_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "sql/run_state.h"
#include "transform/stage.h"

extern List *etl_checks_load(int64 pipeline_id);
extern void etl_checks_validate_all(EtlPipeline *p, Oid source_relid,
									Oid target_relid);
extern void etl_run_checks(EtlRun *run, List *checks);
extern void etl_checks_judge(EtlRun *run, List *checks,
							 EtlIsolateHooks *hooks);
extern int64 etl_checks_replay(EtlRun *run, int64 nrows,
							   EtlIsolateHooks *hooks);
extern void etl_check_results_json(StringInfo buf, EtlRun *run);
extern void etl_check_results_store(EtlRun *run);
extern bool etl_checks_failed_critical(EtlRun *run);
extern int etl_checks_failed_json(StringInfo buf, EtlRun *run, int max);

#endif /* ETL_QUALITY_H */
