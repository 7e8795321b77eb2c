/*-------------------------------------------------------------------------
 *
 * run_lock.c
 *	  The run lock of a pipeline: an advisory-class lock (ETL_LOCKTAG_CLASS)
 *	  that a run takes without waiting and alter, drop, reset and dead-letter
 *	  replay wait for; and KEY SHARE locks on the pipeline's row of
 *	  etl.pipelines, which a drop waits for.
 *
 *	  etl_pipeline_open_locked() is the one way run, replay, alter, drop,
 *	  reset and rebase open a pipeline under its run lock: ownership checked
 *	  before the lock (so a role that may not act on the pipeline never
 *	  holds or queues for it), the definition read again as committed by
 *	  whoever held the lock before, refused when the pipeline was dropped
 *	  (and created again) meanwhile, ownership checked again; and refused
 *	  while this backend is inside a run of it (etl_pipeline_enter_run):
 *	  its transform, a check or a trigger on its target calling etl_run,
 *	  alter, drop or reset on it, which its run lock, already held by this
 *	  backend, would let through.
 *
 * IDENTIFICATION
 *	  src/catalog/run_lock.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "base/security.h"
#include "base/settings.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "catalog/run_lock.h"

/* the pipelines this backend is inside a run of, innermost last */
static int64 *running_here = NULL;
static int nrunning_here = 0;
static int maxrunning_here = 0;

/*
 * set_pipeline_locktag fills the tag of a pipeline's run lock.
 */
static void
set_pipeline_locktag(LOCKTAG *tag, int64 pipeline_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (pipeline_id >> 32),
						 (uint32) pipeline_id, ETL_LOCKTAG_CLASS);
}

/*
 * etl_lock_pipeline takes the run lock of a pipeline (ExclusiveLock, held
 * until the end of the transaction).  Runs try it without waiting: a false
 * result means another backend runs the pipeline.  alter, drop and
 * reset_watermark wait for it, so they never change a pipeline under a
 * running run.
 */
bool
etl_lock_pipeline(int64 pipeline_id, bool wait)
{
	LOCKTAG tag;

	set_pipeline_locktag(&tag, pipeline_id);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) !=
		   LOCKACQUIRE_NOT_AVAIL;
}

/*
 * lock_key takes a KEY SHARE lock on a pipeline's row as the extension
 * owner, waiting for it or (skip_locked) not, and returns whether the row
 * was there to lock.
 */
static bool
lock_key(int64 pipeline_id, bool skip_locked)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_int8(&args, pipeline_id);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec(skip_locked
						 ? "SELECT 1 FROM etl.pipelines"
						   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
						   " FOR KEY SHARE SKIP LOCKED"
						 : "SELECT 1 FROM etl.pipelines"
						   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
						   " FOR KEY SHARE",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	return n > 0;
}

/*
 * etl_catalog_lock_key takes a KEY SHARE lock on a pipeline's row (held
 * until the end of the transaction) and returns false when the row is gone,
 * dropped by a transaction that committed while this one waited.  A drop
 * deletes the row, so it waits for the holder, and the holder for a drop in
 * progress; runs, alter and reset never conflict with it.
 */
bool
etl_catalog_lock_key(int64 pipeline_id)
{
	return lock_key(pipeline_id, false);
}

/*
 * etl_catalog_try_lock_key takes a KEY SHARE lock on a pipeline's row, as
 * etl_catalog_lock_key(), without waiting: false when the row is gone or a
 * drop in progress has deleted it (alter and reset, which do not change
 * the row's key, never conflict with it).  A caller that then writes a row
 * referring to the pipeline cannot be made to wait for a drop, nor fail on
 * the foreign key once it commits.
 */
bool
etl_catalog_try_lock_key(int64 pipeline_id)
{
	return lock_key(pipeline_id, true);
}

/*
 * etl_pipeline_lock_holder returns the pid of the backend holding a
 * pipeline's run lock, or 0.
 */
int
etl_pipeline_lock_holder(int64 pipeline_id)
{
	LOCKTAG tag;
	LockData *data = GetLockStatusData();

	set_pipeline_locktag(&tag, pipeline_id);
	for (int i = 0; i < data->nelements; i++)
	{
		LockInstanceData *li = &data->locks[i];

		if (memcmp(&li->locktag, &tag, sizeof(LOCKTAG)) == 0 &&
			(li->holdMask & LOCKBIT_ON(ExclusiveLock)) != 0 &&
			li->pid != MyProcPid)
			return li->pid;
	}
	return 0;
}

/*
 * etl_pipeline_enter_run notes that this backend is inside a run of the
 * pipeline pipeline_id and returns how many runs it was inside of before:
 * the caller gives that back to etl_pipeline_leave_run() when the run
 * ends, whether it returns or fails (PG_FINALLY).
 */
int
etl_pipeline_enter_run(int64 pipeline_id)
{
	if (nrunning_here == maxrunning_here)
	{
		int n = maxrunning_here == 0 ? 8 : maxrunning_here * 2;

		running_here =
			running_here == NULL
				? MemoryContextAlloc(TopMemoryContext, n * sizeof(int64))
				: repalloc(running_here, n * sizeof(int64));
		maxrunning_here = n;
	}
	running_here[nrunning_here] = pipeline_id;
	return nrunning_here++;
}

/*
 * etl_pipeline_leave_run ends what etl_pipeline_enter_run() noted: this
 * backend is inside the runs it was inside of before, depth of them.
 */
void
etl_pipeline_leave_run(int depth)
{
	if (depth >= 0 && depth < nrunning_here)
		nrunning_here = depth;
}

/*
 * refuse_running_here raises 55006 when this backend is inside a run of
 * pipeline p: action (run, alter, drop ...) would come from the run's own
 * code, under the run lock the run holds.
 */
static void
refuse_running_here(EtlPipeline *p, const char *action)
{
	for (int i = 0; i < nrunning_here; i++)
		if (running_here[i] == p->id)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot %s pipeline \"%s\" inside a run of it",
							action, p->name),
					 errdetail("The call comes from code that a run of "
							   "pipeline \"%s\" executes (its transform, a "
							   "check, a trigger on its target).",
							   p->name),
					 errhint("Call it after the run has returned.")));
}

/*
 * refuse_recreated raises 40001 for the pipeline name, dropped and created
 * again while its run lock was awaited (wait) or tried: the caller acted
 * on the pipeline it first read, which is gone.
 */
static void
refuse_recreated(const char *name, bool wait)
{
	if (wait)
		ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						errmsg("pipeline \"%s\" was dropped and created again "
							   "while waiting for its run lock",
							   name),
						errhint("Try again.")));
	ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					errmsg("pipeline \"%s\" was dropped and created again "
						   "while its run started",
						   name),
					errhint("Run it again.")));
}

/*
 * etl_pipeline_open_locked opens the pipeline name under its run lock for
 * action (what etl_check_pipeline_owner names: "run", "alter", ...) and
 * returns its definition as committed by whoever held the lock before.
 *
 * Ownership is checked first, on the definition read without the lock, so
 * that a role that may not act on the pipeline never queues for (or, with
 * a try, holds for a moment) its lock: queued behind a run, it would make
 * every new run of the pipeline return 'skipped' until it got the lock and
 * failed.  Once the lock is held the definition is read again with a new
 * snapshot: a pipeline dropped meanwhile is refused as unknown (42704), one
 * dropped and created again under the same name with 40001, and ownership
 * is checked again.  A pipeline this backend is inside a run of is refused
 * with 55006 before the lock (refuse_running_here).
 *
 * flags: ETL_OPEN_WAIT waits for the lock; without it the lock is only
 * tried, and NULL returned when another backend holds it (*pipeline_id is
 * the pipeline's id then).  ETL_OPEN_OWNER_EXISTS refuses a pipeline whose
 * owner role has been dropped (etl_check_role_exists).
 */
EtlPipeline *
etl_pipeline_open_locked(const char *name, const char *action, int flags,
						 int64 *pipeline_id)
{
	bool wait = (flags & ETL_OPEN_WAIT) != 0;
	EtlPipeline *p = etl_catalog_load(name, false, InvalidSnapshot);
	int64 id = p->id;
	Snapshot snap;

	etl_check_pipeline_owner(p->name, p->owner, action);
	refuse_running_here(p, action);
	if (pipeline_id != NULL)
		*pipeline_id = id;
	if (!etl_lock_pipeline(id, wait))
		return NULL;

	snap = RegisterSnapshot(GetLatestSnapshot());
	p = etl_catalog_load(name, false, snap);
	UnregisterSnapshot(snap);
	if (p->id != id)
		refuse_recreated(name, wait);
	etl_check_pipeline_owner(p->name, p->owner, action);
	if (flags & ETL_OPEN_OWNER_EXISTS)
		etl_check_role_exists(p->name, p->owner);
	return p;
}
