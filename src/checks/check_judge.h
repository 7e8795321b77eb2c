/*-------------------------------------------------------------------------
 *
 * check_judge.h
 *	  What each check kind does when a batch is evaluated: its arguments,
 *	  its preparation, the reading of the one pass, its further judging and
 *	  its samples.
 *
 * IDENTIFICATION
 *	  src/checks/check_judge.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_CHECK_JUDGE_H
#define ETL_CHECK_JUDGE_H

#include "postgres.h"

#include "checks/check.h"

extern void etl_check_sql_fill(EtlCheckSql *d, EtlCheck *c,
							   const EtlCheckResult *r,
							   const EtlCheckBatch *b);
extern EtlCheckResult *etl_check_result_new(EtlCheck *c);

extern void etl_check_args_accepted_values(EtlArgs *args, EtlCheck *c);
extern void etl_check_args_range(EtlArgs *args, EtlCheck *c);
extern void etl_check_args_foreign_key(EtlArgs *args, EtlCheck *c);
extern void etl_check_prepare_foreign_key(EtlCheck *c, EtlRun *run);

extern void etl_check_read_count(EtlCheckResult *r, int col, int64 nrows);
extern void etl_check_read_unique(EtlCheckResult *r, int col, int64 nrows);
extern void etl_check_read_z_score(EtlCheckResult *r, int col, int64 nrows);
extern void etl_check_read_row_count(EtlCheckResult *r, int col, int64 nrows);

extern void etl_check_judge_unique(EtlRun *run, EtlCheckResult *r,
								   EtlArgs *args, const EtlCheckBatch *b);
extern void etl_check_judge_freshness(EtlRun *run, EtlCheckResult *r,
									  EtlArgs *args, const EtlCheckBatch *b);

extern void etl_check_sample_keys(EtlRun *run, EtlCheckResult *r,
								  EtlArgs *args, const EtlCheckBatch *b);
extern void etl_check_sample_unique(EtlRun *run, EtlCheckResult *r,
									EtlArgs *args, const EtlCheckBatch *b);
extern void etl_check_sample_z_score(EtlRun *run, EtlCheckResult *r,
									 EtlArgs *args, const EtlCheckBatch *b);

#endif /* ETL_CHECK_JUDGE_H */
