/*-------------------------------------------------------------------------
 *
 * standby.c
 *	  The refusal of the writing entry points on a hot standby.
 *
 *	  A standby replays the primary's WAL and accepts no write of its own:
 *	  every entry point that writes a catalog or a table (definitions,
 *	  checks, schedules, watermark resets, dead letters, change tracking,
 *	  catch-up and backfill) enters with etl_entry_begin_write() (entry.c),
 *	  which calls etl_refuse_on_standby() before the entry point reads a
 *	  definition or takes a lock, so that it fails with one clear
 *	  25006 naming the call and what it was for, instead of PostgreSQL's
 *	  "cannot execute UPDATE in a read-only transaction" with the internal
 *	  statement as its context.  etl_run has its own message (api/run.c).
 *
 * IDENTIFICATION
 *	  src/base/standby.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "utils/builtins.h"

#include "base/standby.h"

/*
 * etl_refuse_on_standby raises 25006 when the server is in recovery (a hot
 * standby): function is the SQL name of the entry point, object what it
 * was called for (`pipeline "orders"`, `table public.orders`).  Returns
 * when the server accepts writes.
 */
void
etl_refuse_on_standby(const char *function, const char *object)
{
	if (!RecoveryInProgress())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot call %s for %s during recovery", function, object),
			 errdetail("The server is a hot standby: it replays the "
					   "primary's changes and accepts no writes of its "
					   "own."),
			 errhint("Call %s on the primary; the standby receives what it "
					 "writes by replication.",
					 function)));
}

/*
 * etl_pipeline_object returns `pipeline "name"` for the messages of
 * etl_refuse_on_standby (the name as given; NULL as NULL).
 */
char *
etl_pipeline_object(const char *name)
{
	return name ? psprintf("pipeline \"%s\"", name) : "pipeline NULL";
}
