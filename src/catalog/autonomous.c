/*-------------------------------------------------------------------------
 *
 * autonomous.c
 *	  The autonomous writer: a short-lived dynamic background worker that
 *	  commits the record of a failed run (its etl.runs row and its dead
 *	  letters) in a transaction of its own.
 *
 *	  A failed run raises an ERROR, which rolls back the caller's transaction
 *	  and with it everything the run wrote.  Before raising, the run hands
 *	  its records, as one JSON document, to a worker through a dynamic
 *	  shared memory segment and waits for the worker to exit; the worker
 *	  connects to the same database as the extension owner, inserts the
 *	  records and commits.  So the record survives the rollback, whether the
 *	  caller wrapped etl_run in its own transaction or in a plpgsql EXCEPTION
 *	  block.  No shared_preload_libraries entry is needed (dynamic workers
 *	  load this library themselves); a free max_worker_processes slot is.
 *
 *	  Locking: the failing backend waits for the worker, so the worker must
 *	  never wait for something that backend holds.  The run's work happens in
 *	  a subtransaction that is rolled back before the hand-over, so no row
 *	  lock or index entry of the run is left for the worker to wait on; the
 *	  worker inserts new rows (their ids come from sequences, which do
 *	  not wait) into etl.runs and etl.dead_letters, whose foreign keys take
 *	  KEY SHARE locks on the pipeline's row, which a run never locks, and
 *	  closes the older dead letters its own record again, skipping those
 *	  locked by another transaction, the caller's included
 *	  (ETL_DEAD_LETTERS_CLOSE in runs.h).  The
 *	  wait is interruptible (cancel, statement_timeout), and the worker runs
 *	  with lock_timeout = 10s so that it can never hang for good.
 *
 *	  Shared memory: the segment holds an EtlAutonomousShared header (filled
 *	  by the backend before the worker starts, except status and error, which
 *	  only the worker writes) followed by the payload.
 *
 * IDENTIFICATION
 *	  src/catalog/autonomous.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "base/security.h"
#include "base/settings.h"
#include "catalog/autonomous.h"
#include "catalog/runs.h"

#define ETL_AUTONOMOUS_ERROR_LEN 1024

typedef struct EtlAutonomousShared
{
	Oid dbid;
	Oid roleid;
	int status;		/* 0 not done, 1 committed, -1 failed */
	int sqlerrcode; /* the worker's error, when it failed */
	char error[ETL_AUTONOMOUS_ERROR_LEN];
	Size payload_len;
	char payload[FLEXIBLE_ARRAY_MEMBER];
} EtlAutonomousShared;

PGDLLEXPORT void etl_autonomous_main(Datum arg);

/*
 * The statements that record a failed run, with its record as $1 (jsonb):
 * {"run": {etl.runs columns}, "dead_letters": [{etl.dead_letters columns}],
 *	"check_results": [...], "event": {...}, "failed_batch": batch_id}.
 * The first inserts the run unless its run id is recorded already (a
 * record kept in a file and recorded twice, see unrecorded.c), and the
 * others run only when it did.
 */
static const char *const apply_statements[] = {
	"INSERT INTO etl.runs SELECT * FROM pg_catalog.jsonb_populate_record("
	"NULL::etl.runs, $1 OPERATOR(pg_catalog.->) 'run')"
	" ON CONFLICT (run_id) DO NOTHING RETURNING run_id",
	ETL_DEAD_LETTERS_CLOSE("$1 OPERATOR(pg_catalog.->) 'dead_letters'"),
	ETL_DEAD_LETTERS_INSERT("$1 OPERATOR(pg_catalog.->) 'dead_letters'"),
	ETL_CHECK_RESULTS_INSERT("$1 OPERATOR(pg_catalog.->) 'check_results'"),
	"SELECT pg_catalog.pg_notify('etl_events', ($1 OPERATOR(pg_catalog.->) "
	"'event')::pg_catalog.text)"
	" WHERE $1 OPERATOR(pg_catalog.?) 'event'",
	/* a failed step of catch-up or backfill: its batch row */
	"UPDATE etl.batches SET status = 'failed', updated_at = pg_catalog.now(),"
	" run_id = ($1 OPERATOR(pg_catalog.->) 'run' OPERATOR(pg_catalog.->>)"
	" 'run_id')::pg_catalog.int8,"
	" error = $1 OPERATOR(pg_catalog.->) 'run' OPERATOR(pg_catalog.->>) 'error'"
	" WHERE batch_id OPERATOR(pg_catalog.=) ($1 OPERATOR(pg_catalog.->>)"
	" 'failed_batch')::pg_catalog.int8"
	" AND pipeline_id OPERATOR(pg_catalog.=) ($1 OPERATOR(pg_catalog.->)"
	" 'run' OPERATOR(pg_catalog.->>) 'pipeline_id')::pg_catalog.int8",
};

/*
 * etl_failure_record_apply records one failed run (a JSON record, see
 * above, as jsonb) in the current transaction with SPI, which the caller
 * has connected, as the extension owner and under the pinned search_path.
 * Returns false when its run id was recorded already (nothing is written).
 */
bool
etl_failure_record_apply(Datum record)
{
	Oid argtypes[1] = { JSONBOID };
	Datum values[1] = { record };

	for (int i = 0; i < lengthof(apply_statements); i++)
	{
		int rc = SPI_execute_with_args(apply_statements[i], 1, argtypes,
									   values, NULL, false, 0);

		if (rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_INSERT &&
			rc != SPI_OK_SELECT && rc != SPI_OK_UPDATE)
			elog(ERROR, "unexpected SPI result %s",
				 SPI_result_code_string(rc));
		if (i == 0 && SPI_processed == 0)
			return false;
	}
	return true;
}

/*
 * apply_payload records what a worker was handed: one record, or an array
 * of records (a failed run's own after those that waited in files).
 */
static void
apply_payload(Datum payload)
{
	Oid argtypes[1] = { JSONBOID };
	Datum values[1] = { payload };
	uint64 n;
	Datum *records;
	bool isnull;

	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_typeof($1)"
							  " OPERATOR(pg_catalog.=) 'array'",
							  1, argtypes, values, NULL, true,
							  1) != SPI_OK_SELECT ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)))
	{
		(void) etl_failure_record_apply(payload);
		return;
	}
	if (SPI_execute_with_args("SELECT r FROM pg_catalog.jsonb_array_elements("
							  "$1) WITH ORDINALITY AS e(r, i) ORDER BY i",
							  1, argtypes, values, NULL, true,
							  0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the records of a failure payload");
	n = SPI_processed;
	records = palloc(sizeof(Datum) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		records[i] =
			SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[i],
											SPI_tuptable->tupdesc, 1, &isnull),
							  false, -1);
	for (uint64 i = 0; i < n; i++)
		(void) etl_failure_record_apply(records[i]);
}

/*
 * etl_autonomous_write commits payload (a JSON document, see above, or an
 * array of them) in a transaction of its own through a worker and returns
 * true when it is committed.  When it cannot, it returns false with *why
 * set: ETL_AUTONOMOUS_NO_SLOT (no background worker slot is free) or
 * ETL_AUTONOMOUS_FAILED (the worker failed; *error and *sqlerrcode say
 * why).  It never raises an ERROR itself except for a cancel while
 * waiting.  Expects the caller's (sub)transaction state to be clean: roll
 * back the run's subtransaction first.
 */
bool
etl_autonomous_write(const char *payload, const char *what,
					 EtlAutonomousFailure *why, char **error, int *sqlerrcode)
{
	Size len = strlen(payload);
	dsm_segment *seg;
	EtlAutonomousShared *shared;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus st;
	pid_t pid;
	bool ok;

	*error = NULL;
	*sqlerrcode = 0;
	seg = dsm_create(offsetof(EtlAutonomousShared, payload) + len + 1, 0);
	shared = dsm_segment_address(seg);
	shared->dbid = MyDatabaseId;
	shared->roleid = etl_extension_owner();
	shared->status = 0;
	shared->error[0] = '\0';
	shared->sqlerrcode = 0;
	shared->payload_len = len;
	memcpy(shared->payload, payload, len + 1);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags =
		BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "etl_ext");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "etl_autonomous_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "etl_ext autonomous writer for %d",
			 MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "etl_ext autonomous writer");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		dsm_detach(seg);
		*why = ETL_AUTONOMOUS_NO_SLOT;
		return false;
	}

	st = WaitForBackgroundWorkerStartup(handle, &pid);
	if (st == BGWH_STARTED || st == BGWH_STOPPED)
		st = WaitForBackgroundWorkerShutdown(handle);
	if (st == BGWH_POSTMASTER_DIED)
		ereport(FATAL, (errcode(ERRCODE_ADMIN_SHUTDOWN),
						errmsg("postmaster exited while %s was being written",
							   what)));

	ok = shared->status == 1;
	if (!ok)
	{
		*why = ETL_AUTONOMOUS_FAILED;
		*error =
			pstrdup(shared->error[0] ? shared->error
									 : "The worker exited without a report.");
		*sqlerrcode = shared->sqlerrcode != 0 ? shared->sqlerrcode
											  : ERRCODE_INTERNAL_ERROR;
	}
	dsm_detach(seg);
	return ok;
}

/*
 * etl_autonomous_commit is etl_autonomous_write() that says in a WARNING
 * why the payload is not kept when it cannot be committed.
 */
bool
etl_autonomous_commit(const char *payload, const char *what)
{
	EtlAutonomousFailure why;
	char *error;
	int sqlerrcode;

	if (etl_autonomous_write(payload, what, &why, &error, &sqlerrcode))
		return true;
	if (why == ETL_AUTONOMOUS_NO_SLOT)
		ereport(
			WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("%s is not kept: no background worker slot is free", what),
			 errhint("Raise max_worker_processes (now %d).",
					 max_worker_processes)));
	else
		ereport(WARNING,
				(errcode(sqlerrcode),
				 errmsg("%s is not kept: the autonomous writer failed", what),
				 errdetail_internal("%s", error)));
	return false;
}

/*
 * writer_settings sets what the worker's transaction needs whatever the
 * settings of the database and of the extension owner it connected with
 * (ALTER DATABASE / ROLE ... SET): read-write (a database read-only by
 * default still runs pipelines in sessions that turn it off), no statement
 * or idle timeout, lock waits bounded by lock_timeout instead, the pinned
 * search_path.  Called before the transaction starts, which takes its
 * read-only mode from default_transaction_read_only.
 */
static void
writer_settings(void)
{
	static const char *const settings[][2] = {
		{ "default_transaction_read_only", "off" },
		{ "statement_timeout", "0" },
		{ "idle_in_transaction_session_timeout", "0" },
		{ "lock_timeout", "10s" },
		{ "search_path", ETL_PINNED_SEARCH_PATH },
	};

	for (int i = 0; i < lengthof(settings); i++)
		(void) set_config_option(settings[i][0], settings[i][1], PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SET, true, 0,
								 false);
}

/*
 * etl_autonomous_main is the worker's entry point: attach the segment,
 * connect, apply the payload in one transaction, report, exit.
 */
void
etl_autonomous_main(Datum arg)
{
	dsm_segment *seg;
	EtlAutonomousShared *shared;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	CurrentResourceOwner =
		ResourceOwnerCreate(NULL, "etl_ext autonomous writer");
	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("etl_ext autonomous writer could not attach "
							   "its shared memory")));
	shared = dsm_segment_address(seg);

	BackgroundWorkerInitializeConnectionByOid(shared->dbid, shared->roleid, 0);

	PG_TRY();
	{
		writer_settings();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();

		/*
		 * The one SPI connection outside the entry protocol (base/entry.c):
		 * a background worker's own transaction, not a SQL-callable
		 * function; its settings are writer_settings().
		 */
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING,
							   "etl_ext: writing a failure record");

		apply_payload(
			DirectFunctionCall1(jsonb_in, CStringGetDatum(shared->payload)));

		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		shared->status = 1;
	}
	PG_CATCH();
	{
		ErrorData *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		strlcpy(shared->error,
				edata->message ? edata->message : "unknown error",
				sizeof(shared->error));
		shared->sqlerrcode = edata->sqlerrcode;
		shared->status = -1;
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();

	dsm_detach(seg);
	proc_exit(0);
}
