/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  Scheduling pipelines with pg_cron.
 *
 *	  Who started a run: etl.runs.triggered_by is 'schedule' for runs that
 *	  pg_cron started (etl_started_by_pg_cron).  pg_cron 1.4 runs a job in
 *	  one of two ways, and each leaves a mark that the job's command cannot
 *	  change:
 *	  - cron.use_background_workers = off (the default): the launcher opens
 *		a libpq connection with fallback_application_name = 'pg_cron', so
 *		the session starts with application_name 'pg_cron'.  The value the
 *		session started with is its RESET value, which a later SET does not
 *		change: a session that merely SETs application_name = 'pg_cron' is
 *		not taken for pg_cron.
 *	  - cron.use_background_workers = on: the job runs in a dynamic
 *		background worker of library pg_cron (bgw_type 'pg_cron').
 *	  A client that connects with application_name = 'pg_cron' is taken for
 *	  pg_cron: triggered_by records provenance, it grants nothing (the run's
 *	  rights are its owner's either way).
 *
 * IDENTIFICATION
 *	  src/schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"

#include "schedule.h"

/* pg_cron's library, its job workers' bgw_type and application_name */
#define PG_CRON_NAME "pg_cron"

/*
 * etl_started_by_pg_cron tells whether this backend runs a pg_cron job: a
 * pg_cron background worker, or a session that pg_cron's launcher opened
 * (application_name 'pg_cron' from its start).
 */
bool
etl_started_by_pg_cron(void)
{
	const char *appname;

	if (MyBgworkerEntry != NULL)
		return strcmp(MyBgworkerEntry->bgw_library_name, PG_CRON_NAME) == 0 ||
			   strcmp(MyBgworkerEntry->bgw_type, PG_CRON_NAME) == 0;
	appname = GetConfigOptionResetString("application_name");
	return appname != NULL && strcmp(appname, PG_CRON_NAME) == 0;
}
