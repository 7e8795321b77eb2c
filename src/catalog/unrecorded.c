/*-------------------------------------------------------------------------
 *
 * unrecorded.c
 *	  Failure records that the autonomous writer could not commit because
 *	  no background worker slot was free, kept in files until a later run
 *	  of the pipeline records them.
 *
 *	  A failed run's record (its etl.runs row, dead letters, check results
 *	  and run_failed event: the autonomous writer's payload) must survive
 *	  the rollback of the caller's transaction.  When no worker can commit
 *	  it, the failing backend writes the payload to
 *	  etl_ext/unrecorded/<database oid>/<pipeline id>.<run id>.json under
 *	  the data directory (written to a temporary name, synced, renamed)
 *	  before it raises the run's ERROR.  From then on:
 *	  - etl.status and the metrics count it (etl_unrecorded_failures());
 *	  - the next run of the pipeline records it: a failing run hands the
 *		waiting records to its worker together with its own, a succeeding
 *		run inserts them in its own transaction (their run_failed events go
 *		out at its commit), and the files are removed once that commits.
 *	  Only runs holding the pipeline's run lock record its files, so no two
 *	  sessions record the same one; a file left behind by a crash after the
 *	  commit is recognised by its run id (already in etl.runs) and dropped.
 *	  The files are not WAL-logged: a standby or a restored base backup may
 *	  hold them or not.
 *
 * IDENTIFICATION
 *	  src/catalog/unrecorded.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/autonomous.h"
#include "catalog/unrecorded.h"

PG_FUNCTION_INFO_V1(etl_unrecorded_failures);

/* the directory of the files, under the data directory */
#define UNRECORDED_TOP "etl_ext"
#define UNRECORDED_DIR UNRECORDED_TOP "/unrecorded"

/* a file to remove when the (sub)transaction that recorded it commits */
typedef struct PendingRemoval
{
	char *path;
	SubTransactionId subid;
} PendingRemoval;

static List *pending_removals = NIL; /* in TopMemoryContext */
static bool callbacks_registered = false;

/*
 * database_dir returns the directory of this database's files.
 */
static char *
database_dir(void)
{
	return psprintf("%s/%u", UNRECORDED_DIR, MyDatabaseId);
}

/*
 * make_dir creates a directory unless it exists; false (errno set) when it
 * cannot.
 */
static bool
make_dir(const char *path)
{
	return MakePGDirectory(path) == 0 || errno == EEXIST;
}

/*
 * write_all writes a buffer whole; false (errno set) when it cannot.
 */
static bool
write_all(int fd, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t n = write(fd, data, len);

		if (n <= 0)
		{
			if (n == 0)
				errno = ENOSPC;
			return false;
		}
		data += n;
		len -= n;
	}
	return true;
}

/*
 * etl_unrecorded_save keeps the payload of a failed run's record in a file
 * (see the header) and returns true; when it cannot (a full disk, no
 * permission), it says so in a WARNING and returns false.  Never raises an
 * ERROR: it runs on a failing run's way out.
 */
bool
etl_unrecorded_save(int64 pipeline_id, int64 run_id, const char *payload)
{
	char *dir = database_dir();
	char *path = psprintf("%s/" INT64_FORMAT "." INT64_FORMAT ".json", dir,
						  pipeline_id, run_id);
	char *tmp = psprintf("%s.tmp", path);
	int fd;
	bool ok;

	if (!make_dir(UNRECORDED_TOP) || !make_dir(UNRECORDED_DIR) ||
		!make_dir(dir))
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
		return false;
	}
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
	{
		ereport(WARNING, (errcode_for_file_access(),
						  errmsg("could not create file \"%s\": %m", tmp)));
		return false;
	}
	ok = write_all(fd, payload, strlen(payload)) && pg_fsync(fd) == 0;
	if (!ok)
		ereport(WARNING, (errcode_for_file_access(),
						  errmsg("could not write file \"%s\": %m", tmp)));
	if (CloseTransientFile(fd) != 0 && ok)
	{
		ereport(WARNING, (errcode_for_file_access(),
						  errmsg("could not close file \"%s\": %m", tmp)));
		ok = false;
	}
	if (ok && durable_rename(tmp, path, WARNING) != 0)
		ok = false;
	if (!ok)
		(void) unlink(tmp);
	return ok;
}

/*
 * compare_run_ids orders records by run id.
 */
static int
compare_run_ids(const ListCell *a, const ListCell *b)
{
	int64 x = ((EtlUnrecorded *) lfirst(a))->run_id;
	int64 y = ((EtlUnrecorded *) lfirst(b))->run_id;

	return x < y ? -1 : x > y;
}

/*
 * etl_unrecorded_list returns the records waiting in files for a pipeline
 * (0: every pipeline of this database), as EtlUnrecorded * in the order of
 * their run ids.  Reads the directory only.
 */
List *
etl_unrecorded_list(int64 pipeline_id)
{
	char *dir = database_dir();
	DIR *d;
	struct dirent *de;
	List *result = NIL;

	d = AllocateDir(dir);
	if (d == NULL && errno == ENOENT)
		return NIL;
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		long long pid;
		long long rid;
		int used = 0;

		if (sscanf(de->d_name, "%lld.%lld.json%n", &pid, &rid, &used) != 2 ||
			used == 0 || de->d_name[used] != '\0')
			continue;
		if (pipeline_id != 0 && pid != pipeline_id)
			continue;
		{
			EtlUnrecorded *u = palloc(sizeof(EtlUnrecorded));

			u->pipeline_id = pid;
			u->run_id = rid;
			u->path = psprintf("%s/%s", dir, de->d_name);
			result = lappend(result, u);
		}
	}
	if (d != NULL)
		FreeDir(d);
	list_sort(result, compare_run_ids);
	return result;
}

/*
 * etl_unrecorded_count_since counts the records waiting for a pipeline
 * with a run id above run_id.
 */
int64
etl_unrecorded_count_since(int64 pipeline_id, int64 run_id)
{
	List *all = etl_unrecorded_list(pipeline_id);
	ListCell *lc;
	int64 n = 0;

	foreach (lc, all)
		if (((EtlUnrecorded *) lfirst(lc))->run_id > run_id)
			n++;
	return n;
}

/*
 * etl_unrecorded_read returns the payload of a record, or NULL when its
 * file is gone (recorded meanwhile) or unreadable (said in a WARNING).
 */
char *
etl_unrecorded_read(EtlUnrecorded *u)
{
	int fd = OpenTransientFile(u->path, O_RDONLY | PG_BINARY);
	struct stat st;
	char *data;
	ssize_t n = 0;

	if (fd < 0)
	{
		if (errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", u->path)));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || st.st_size >= MaxAllocSize)
	{
		ereport(WARNING, (errcode_for_file_access(),
						  errmsg("could not read file \"%s\": %m", u->path)));
		CloseTransientFile(fd);
		return NULL;
	}
	data = palloc(st.st_size + 1);
	while (n < st.st_size)
	{
		ssize_t r = read(fd, data + n, st.st_size - n);

		if (r <= 0)
		{
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", u->path)));
			CloseTransientFile(fd);
			return NULL;
		}
		n += r;
	}
	data[n] = '\0';
	CloseTransientFile(fd);
	return data;
}

/*
 * etl_unrecorded_remove removes the files of records now committed.
 */
void
etl_unrecorded_remove(List *records)
{
	ListCell *lc;

	foreach (lc, records)
	{
		EtlUnrecorded *u = lfirst(lc);

		if (unlink(u->path) != 0 && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove file \"%s\": %m", u->path)));
	}
}

/*
 * at_xact_end removes the files of the records a committed transaction
 * recorded, and forgets those of an aborted one.
 */
static void
at_xact_end(XactEvent event, void *arg)
{
	ListCell *lc;

	if (pending_removals == NIL)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		foreach (lc, pending_removals)
		{
			PendingRemoval *r = lfirst(lc);

			if (unlink(r->path) != 0 && errno != ENOENT)
				ereport(WARNING,
						(errcode_for_file_access(),
						 errmsg("could not remove file \"%s\": %m", r->path)));
		}
	else if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	list_free_deep(pending_removals);
	pending_removals = NIL;
}

/*
 * at_subxact_end hands the removals of a committed subtransaction to its
 * parent and forgets those of an aborted one (its records are rolled back).
 */
static void
at_subxact_end(SubXactEvent event, SubTransactionId mySubid,
			   SubTransactionId parentSubid, void *arg)
{
	ListCell *lc;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach (lc, pending_removals)
	{
		PendingRemoval *r = lfirst(lc);

		if (r->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			r->subid = parentSubid;
		else
		{
			pending_removals = foreach_delete_current(pending_removals, lc);
			pfree(r->path);
			pfree(r);
		}
	}
}

/*
 * etl_unrecorded_remove_at_commit removes the files of records when the
 * current transaction commits (nothing when it, or the subtransaction
 * that recorded them, rolls back).
 */
void
etl_unrecorded_remove_at_commit(List *records)
{
	MemoryContext old;
	ListCell *lc;

	if (!callbacks_registered)
	{
		RegisterXactCallback(at_xact_end, NULL);
		RegisterSubXactCallback(at_subxact_end, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	foreach (lc, records)
	{
		PendingRemoval *r = palloc(sizeof(PendingRemoval));

		r->path = pstrdup(((EtlUnrecorded *) lfirst(lc))->path);
		r->subid = GetCurrentSubTransactionId();
		pending_removals = lappend(pending_removals, r);
	}
	MemoryContextSwitchTo(old);
}

/*
 * try_in_subxact runs fn(arg) in a subtransaction of the current
 * transaction, committed when fn returns and rolled back when it raises.
 * Returns NULL on success, or the error copied into the caller's memory
 * context; a cancel is raised again.
 */
static ErrorData *
try_in_subxact(void (*fn)(void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	if (edata != NULL && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	return edata;
}

/*
 * apply_payload applies the failure record whose JSON text arg points to.
 */
static void
apply_payload(void *arg)
{
	(void) etl_failure_record_apply(
		DirectFunctionCall1(jsonb_in, CStringGetDatum((const char *) arg)));
}

/*
 * record_one records one waiting record in a subtransaction of the current
 * transaction and returns true; a record that cannot be recorded (a file
 * damaged by hand) is said in a WARNING and left in its file, and the run
 * goes on.  A cancel is raised again.
 */
static bool
record_one(EtlUnrecorded *u, const char *payload)
{
	ErrorData *edata = try_in_subxact(apply_payload, (void *) payload);

	if (edata == NULL)
		return true;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("the failure record in file \"%s\" could not be recorded: "
					"%s",
					u->path, edata->message),
			 errhint("Repair or remove the file; the next run of the pipeline "
					 "tries it again.")));
	return false;
}

/*
 * etl_unrecorded_record records, in the current transaction, the failure
 * records waiting for a pipeline (a succeeding run, which holds the run
 * lock, calls it): as the extension owner, each once (a run id already in
 * etl.runs is skipped); their files go when the transaction commits.
 */
void
etl_unrecorded_record(int64 pipeline_id)
{
	List *records = etl_unrecorded_list(pipeline_id);
	List *done = NIL;
	ListCell *lc;
	EtlUserSwitch sw;

	if (records == NIL)
		return;
	etl_become_extension_owner(&sw);
	foreach (lc, records)
	{
		EtlUnrecorded *u = lfirst(lc);
		char *payload = etl_unrecorded_read(u);

		if (payload != NULL && record_one(u, payload))
			done = lappend(done, u);
	}
	etl_restore_user(&sw);
	etl_unrecorded_remove_at_commit(done);
}

/*
 * describe_record puts the row of etl_unrecorded_failures() for one record
 * into the tuplestore (nothing when its pipeline is gone).  The error only
 * for those who have the privileges of the pipeline's owner.
 */
static void
describe_record(ReturnSetInfo *rsinfo, EtlUnrecorded *u, const char *payload)
{
	EtlArgs args;
	Datum values[5];
	bool nulls[5];
	bool isnull;
	Oid owner;

	etl_args_init(&args);
	etl_args_add(&args, JSONBOID,
				 DirectFunctionCall1(jsonb_in, CStringGetDatum(payload)),
				 false);
	etl_args_add_int8(&args, u->pipeline_id);
	if (etl_spi_exec("SELECT (j->'run'->>'finished_at')::pg_catalog."
					 "timestamptz, j->'run'->>'sqlstate', "
					 "j->'run'->>'error', p.owner::pg_catalog.oid"
					 " FROM (SELECT $1 AS j) x JOIN etl.pipelines p"
					 " ON p.pipeline_id OPERATOR(pg_catalog.=) $2",
					 &args, SPI_OK_SELECT, InvalidSnapshot) == 0)
		return;
	values[0] = Int64GetDatum(u->pipeline_id);
	nulls[0] = false;
	values[1] = Int64GetDatum(u->run_id);
	nulls[1] = false;
	values[2] = etl_spi_datum(0, 0, &nulls[2]);
	values[3] = etl_spi_datum(0, 1, &nulls[3]);
	values[4] = etl_spi_datum(0, 2, &nulls[4]);
	owner = DatumGetObjectId(etl_spi_datum(0, 3, &isnull));
	if (!has_privs_of_role(GetUserId(), owner))
		nulls[4] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* The arguments of describe_record() through try_in_subxact(). */
typedef struct DescribeArgs
{
	ReturnSetInfo *rsinfo;
	EtlUnrecorded *u;
	const char *payload;
} DescribeArgs;

/*
 * describe_call calls describe_record() with the DescribeArgs arg points to.
 */
static void
describe_call(void *arg)
{
	DescribeArgs *a = (DescribeArgs *) arg;

	describe_record(a->rsinfo, a->u, a->payload);
}

/*
 * describe_fenced runs describe_record() in a subtransaction: a file that
 * is not a record (damaged by hand) still counts, with its run id only,
 * and a LOG line says why; the reader gets no error.  A cancel is raised
 * again.
 */
static void
describe_fenced(ReturnSetInfo *rsinfo, EtlUnrecorded *u, const char *payload)
{
	DescribeArgs a = { rsinfo, u, payload };
	ErrorData *edata = try_in_subxact(describe_call, &a);
	Datum values[5] = { 0 };
	bool nulls[5] = { false, false, true, true, true };

	if (edata == NULL)
		return;
	ereport(LOG,
			(errcode(edata->sqlerrcode),
			 errmsg("the failure record in file \"%s\" cannot be read: %s",
					u->path, edata->message)));
	values[0] = Int64GetDatum(u->pipeline_id);
	values[1] = Int64GetDatum(u->run_id);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * etl_unrecorded_failures() RETURNS TABLE (pipeline_id bigint, run_id
 *		bigint, failed_at timestamptz, sqlstate text, error text)
 *
 * The failed runs of this database whose record waits in a file (see the
 * header), for etl.status and the metrics.  The error, which may quote
 * data, only for those who have the privileges of the pipeline's owner (as
 * for etl.runs); a file no longer there is left out.
 */
Datum
etl_unrecorded_failures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List *records;
	ListCell *lc;
	EtlEntry e;

	InitMaterializedSRF(fcinfo, 0);
	records = etl_unrecorded_list(0);
	if (records == NIL)
		return (Datum) 0;

	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	foreach (lc, records)
	{
		EtlUnrecorded *u = lfirst(lc);
		char *payload = etl_unrecorded_read(u);

		if (payload != NULL)
			describe_fenced(rsinfo, u, payload);
	}
	etl_entry_end(&e);
	return (Datum) 0;
}

/*
 * etl_failure_commit commits the record of a failed run (payload, the
 * autonomous writer's JSON) with the records that waited in files for the
 * same pipeline, in one worker transaction, then removes their files.
 * When no worker slot is free, the record is kept in a file (see the
 * header) and a WARNING says so; only when that fails too is it lost, as
 * a second WARNING says.  A worker that failed (its statements refused)
 * is reported with its SQLSTATE, and the record is not kept.  Never raises
 * an ERROR itself (a cancel while waiting for the worker excepted).
 */
void
etl_failure_commit(int64 pipeline_id, int64 run_id, const char *payload,
				   const char *what)
{
	List *waiting = etl_unrecorded_list(pipeline_id);
	List *sent = NIL;
	StringInfoData all;
	ListCell *lc;
	EtlAutonomousFailure why;
	char *error;
	int sqlerrcode;

	initStringInfo(&all);
	appendStringInfoChar(&all, '[');
	foreach (lc, waiting)
	{
		char *record = etl_unrecorded_read(lfirst(lc));

		if (record == NULL)
			continue;
		appendStringInfo(&all, "%s, ", record);
		sent = lappend(sent, lfirst(lc));
	}
	appendStringInfo(&all, "%s]", payload);

	if (etl_autonomous_write(all.data, what, &why, &error, &sqlerrcode))
	{
		etl_unrecorded_remove(sent);
		return;
	}
	if (why == ETL_AUTONOMOUS_FAILED)
		ereport(WARNING,
				(errcode(sqlerrcode),
				 errmsg("%s is not kept: the autonomous writer failed", what),
				 errdetail_internal("%s", error)));
	else if (etl_unrecorded_save(pipeline_id, run_id, payload))
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("%s is not written yet: no background worker slot is "
						"free",
						what),
				 errdetail("It waits in a file of the data directory: "
						   "etl.status counts it meanwhile, and the next run "
						   "of the pipeline records it and sends its "
						   "run_failed event."),
				 errhint("Raise max_worker_processes (now %d).",
						 max_worker_processes)));
	else
		ereport(
			WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("%s is not kept: no background worker slot is free", what),
			 errhint("Raise max_worker_processes (now %d).",
					 max_worker_processes)));
}
