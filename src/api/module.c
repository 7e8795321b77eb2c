/*-------------------------------------------------------------------------
 *
 * module.c
 *	  Module magic, and the registration of the settings (their variables:
 *	  base/settings.c).  _PG_init only registers; nothing here runs SQL or
 *	  touches shared memory.
 *
 * IDENTIFICATION
 *	  src/api/module.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "base/fence.h"
#include "base/settings.h"
#include "catalog/runlog.h"

PG_MODULE_MAGIC;

void _PG_init(void);

/* the smallest work_mem PostgreSQL accepts, in kB */
#define ETL_MIN_WORK_MEM 64

/*
 * check_work_mem accepts -1 (the session's work_mem) or a value PostgreSQL
 * accepts for work_mem itself (at least 64 kB): a run sets work_mem to it,
 * and a smaller value would make every run fail.
 */
static bool
check_work_mem(int *newval, void **extra, GucSource source)
{
	if (*newval == -1 || *newval >= ETL_MIN_WORK_MEM)
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("etl.work_mem must be -1 (the session's work_mem) or "
						"at least %d kB.",
						ETL_MIN_WORK_MEM);
	return false;
}

/*
 * _PG_init registers the GUCs of etl_ext and the fence's hook.
 */
void
_PG_init(void)
{
	DefineCustomStringVariable(
		"etl.debug_pause_at",
		"Test only: phase at which etl_run waits for an advisory lock.",
		"A run reaching the named phase takes the advisory lock "
		"727274 in share mode, so a test holding it exclusively "
		"can stop the run there.",
		&etl_debug_pause_at, NULL, PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL,
		NULL);

	DefineCustomIntVariable(
		"etl.work_mem", "Sets work_mem for the statements of a run.",
		"Loads join whole batches with their target; hash joins that "
		"fit in memory avoid temporary files.  -1 keeps the "
		"session's work_mem; otherwise at least 64 kB.",
		&etl_work_mem, 65536, -1, MAX_KILOBYTES, PGC_USERSET, GUC_UNIT_KB,
		check_work_mem, NULL, NULL);

	DefineCustomIntVariable(
		"etl.isolation_parts",
		"Sets how many parts a batch with bad rows is loaded in.",
		"Each part keeps up to two subtransactions until the run's "
		"transaction ends; past 64 per backend every snapshot in the "
		"cluster consults pg_subtrans meanwhile.  More parts make rare bad "
		"rows cheaper to isolate (only the parts holding them are loaded "
		"again).",
		&etl_isolation_parts, 512, 1, 4096, PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"etl.lag_timeout",
		"Sets how long reading the lag of one pipeline may take.",
		"etl.status and the metrics read each pipeline's lag "
		"under this timeout, a wait for a lock on its source included; "
		"past it that lag is NULL and the server log says why.  0 "
		"disables the timeout.",
		&etl_lag_timeout, 1000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL,
		NULL, NULL);

	DefineCustomEnumVariable(
		"etl.log_format", "Sets the format of the log lines of runs.",
		"text: logfmt key=value pairs; json: one JSON object per line.",
		&etl_log_format, ETL_LOG_TEXT, etl_log_format_options, PGC_SUSET, 0,
		NULL, NULL, NULL);

	DefineCustomEnumVariable(
		"etl.log_min_messages",
		"Sets the lowest level of run events written to the server log.",
		"Stage starts and completions are info, attempts that will be "
		"retried warning, failures error; off writes none.",
		&etl_log_min_messages, INFO, etl_log_level_options, PGC_SUSET, 0, NULL,
		NULL, NULL);

	DefineCustomStringVariable(
		"etl.lineage_namespace",
		"Sets the OpenLineage namespace of this server's datasets and jobs.",
		"Empty: postgres://<host name>:<port>.",
		&etl_lineage_namespace_setting, "", PGC_SUSET, 0, NULL, NULL, NULL);

	etl_fence_init();
	MarkGUCPrefixReserved("etl");
}
