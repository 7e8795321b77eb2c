/*-------------------------------------------------------------------------
 *
 * stage.c
 *	  The stage of a run, and running a part of a run in a subtransaction.
 *
 *	  The stage: pg_temp.etl_stage_<run id> (etl_rn bigint, etl_held
 *	  boolean, the source's columns), created by the pipeline owner
 *	  (without the security-restricted flag, which forbids creating the
 *	  session's temporary schema; the statement runs no user code) and filled
 *	  by the owner inside the restricted operation.  Loads read rows rn_lo
 *	  .. rn_hi of it that are not held through the same generated statements
 *	  (sql/deparse_batch.c).
 *
 * IDENTIFICATION
 *	  src/transform/stage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "base/errors.h"
#include "sql/deparse_stage.h"
#include "sql/deparse_stage_table.h"
#include "sql/run_state.h"
#include "transform/stage.h"

/*
 * hold_subxact_lock keeps the lock on the current subtransaction's id, if
 * it has one, in owner (the resource owner of the transaction around it)
 * when the subtransaction is released.  A session waiting for a row the
 * subtransaction wrote waits for that lock.  PostgreSQL drops it when a
 * subtransaction is released, and such a session would then wait for the
 * top-level transaction instead, which rolling back a run's attempt does
 * not end: a deadlock with it (in the deletes after the load, say) would
 * come back at every retry.  Held in owner, the lock goes when the
 * transaction around it ends: rolled back, the waiting session goes on.
 */
static void
hold_subxact_lock(ResourceOwner owner)
{
	TransactionId xid = GetCurrentTransactionIdIfAny();
	ResourceOwner current = CurrentResourceOwner;

	if (!TransactionIdIsValid(xid))
		return;
	CurrentResourceOwner = owner;
	XactLockTableInsert(xid);
	CurrentResourceOwner = current;
}

/*
 * etl_in_subxact runs fn(run, arg) in a subtransaction.  Returns NULL when
 * it succeeded (the subtransaction is released: its work stays in the
 * caller's transaction, and the lock on its id with the caller's resource
 * owner: hold_subxact_lock()).  When it failed, the subtransaction is
 * rolled back and the error returned, copied into the caller's memory
 * context; with recoverable_only, an error of another class than
 * recoverable is re-thrown instead.  Memory allocated by fn lives in the
 * caller's context.
 */
ErrorData *
etl_in_subxact(EtlSubxactFn fn, EtlRun *run, void *arg, bool recoverable_only)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(run, arg);
		hold_subxact_lock(oldowner);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (recoverable_only &&
			etl_error_class(edata->sqlerrcode) != ETL_ERROR_RECOVERABLE)
			ReThrowError(edata);
	}
	PG_END_TRY();
	return edata;
}

/*
 * etl_stage_create creates the run's empty stage table and sets
 * run->stage_table and run->stage_columns.  Runs as the pipeline owner.
 */
void
etl_stage_create(EtlRun *run)
{
	Relation source = relation_open(run->source_relid, AccessShareLock);
	StringInfoData cols;
	StringInfoData qcols;
	StringInfoData name;
	StringInfoData sql;
	Oid userid;
	int sec;

	initStringInfo(&cols);
	initStringInfo(&qcols);
	etl_deparse_stage_columns(&cols, &qcols, RelationGetDescr(source));
	relation_close(source, AccessShareLock);
	run->stage_columns = cols.data;
	run->stage_columns_s = qcols.data;
	initStringInfo(&name);
	etl_deparse_stage_name(&name, run->rec.run_id);
	run->stage_table = name.data;

	initStringInfo(&sql);
	etl_deparse_stage_create(&sql, run->stage_table, run->source_sql);
	GetUserIdAndSecContext(&userid, &sec);
	SetUserIdAndSecContext(userid, sec & ~SECURITY_RESTRICTED_OPERATION);
	etl_spi_exec(sql.data, NULL, SPI_OK_UTILITY, InvalidSnapshot);
	SetUserIdAndSecContext(userid, sec);
}

/*
 * stage_index builds the stage's index on etl_rn with maintenance_work_mem
 * at most the run's work_mem (etl.work_mem), so that the sort of a large
 * stage spills to a temporary file instead of taking what the session
 * allows its own index builds.  The setting is restored after the
 * statement; an error rolls it back with the (sub)transaction it ends.
 */
static void
stage_index(EtlRun *run)
{
	StringInfoData sql;
	int nestlevel = NewGUCNestLevel();

	if (maintenance_work_mem > work_mem)
		(void) set_config_option(
			"maintenance_work_mem", psprintf("%d", Max(work_mem, 1024)),
			PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	initStringInfo(&sql);
	etl_deparse_stage_index(&sql, run->stage_table);
	etl_spi_exec(sql.data, NULL, SPI_OK_UTILITY, InvalidSnapshot);
	AtEOXact_GUC(true, nestlevel);
}

/*
 * etl_stage_fill inserts the rows of select_sql (etl_rn, then the
 * source's columns) into the stage and returns how many.
 */
int64
etl_stage_fill(EtlRun *run, const char *select_sql, EtlArgs *args)
{
	StringInfoData sql;
	int64 n;

	initStringInfo(&sql);
	etl_deparse_stage_insert(&sql, run->stage_table, run->stage_columns,
							 select_sql);
	n = etl_spi_exec(sql.data, args, SPI_OK_INSERT, run->snapshot);

	/* chunks read the stage by row number: index it, give it statistics */
	stage_index(run);
	resetStringInfo(&sql);
	etl_deparse_stage_analyze(&sql, run->stage_table);
	etl_spi_exec(sql.data, NULL, SPI_OK_UTILITY, InvalidSnapshot);
	return n;
}

/*
 * etl_stage_drop drops the stage (when the run keeps going in the same
 * transaction; otherwise ON COMMIT DROP or a rollback removes it).
 */
void
etl_stage_drop(EtlRun *run)
{
	StringInfoData sql;

	if (run->stage_table == NULL)
		return;
	initStringInfo(&sql);
	etl_deparse_stage_drop(&sql, run->stage_table);
	etl_spi_exec(sql.data, NULL, SPI_OK_UTILITY, InvalidSnapshot);
	run->stage_table = NULL;
}

/* how many staged rows one DELETE of etl_stage_forget() removes at most */
#define ETL_FORGET_CHUNK 1000

/*
 * etl_stage_forget removes the count staged rows rns (dead letters now)
 * from the stage, up to ETL_FORGET_CHUNK a statement.  Each statement
 * deleting rows this transaction wrote takes a combo command id, which
 * the transaction keeps until it ends: a statement a row would make the
 * run's memory grow with its bad rows.
 */
void
etl_stage_forget(EtlRun *run, const int64 *rns, int64 count)
{
	StringInfoData sql;

	initStringInfo(&sql);
	for (int64 i = 0; i < count; i += ETL_FORGET_CHUNK)
	{
		resetStringInfo(&sql);
		etl_deparse_stage_forget(&sql, run->stage_table, rns + i,
								 (int) Min(count - i, ETL_FORGET_CHUNK));
		etl_spi_exec(sql.data, NULL, SPI_OK_DELETE, InvalidSnapshot);
	}
	pfree(sql.data);
}

/*
 * stage_fill_sorted fills the stage with the run's range (etl_stage_fill())
 * planned without incremental sort, and returns how many rows it staged.
 * The rows are numbered in the order of the watermark column, then of their
 * physical position.  With incremental sort, the planner takes the first
 * from an index on the watermark column and sorts each group of equal
 * values by the second: it fetches the rows one by one in the index's
 * order, for a large range whose order on disk is another one a heap page
 * per row.  Without it, a range that is most of the source is read
 * sequentially and sorted once, while a narrow one is still found by
 * index.  An error rolls the setting back with the subtransaction (or
 * transaction) it ends.
 */
static int64
stage_fill_sorted(EtlRun *run, EtlArgs *args)
{
	int nestlevel = NewGUCNestLevel();
	int64 n;

	(void) set_config_option("enable_incremental_sort", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	n = etl_stage_fill(run, etl_deparse_stage_select(etl_batch_sql(run)),
					   args);
	AtEOXact_GUC(true, nestlevel);
	return n;
}

/*
 * etl_stage_batch copies the run's range into the stage (once), from which
 * the later statements of the attempt read it, and points rn_lo .. rn_hi at
 * all of it: rows 1 .. run->stage_rows, less those rejected since.  Sets
 * the run's extracted rows when not yet known.  Runs as the pipeline owner.
 */
void
etl_stage_batch(EtlRun *run)
{
	EtlArgs args;

	if (run->stage_table == NULL)
	{
		etl_stage_create(run);
		etl_run_args(run, &args);
		run->stage_rows = stage_fill_sorted(run, &args);
		if (run->rec.rows_extracted < 0)
			run->rec.rows_extracted = run->stage_rows;
	}
	run->rn_lo = 1;
	run->rn_hi = run->stage_rows;
}

/*
 * etl_batch_has_duplicate_keys tells whether two batch rows of staged rows
 * lo .. hi share a key (as the target compares keys): etl_dup_count first,
 * which is cheap and never says too few, then, when it found any or could
 * not tell, exactly.
 */
bool
etl_batch_has_duplicate_keys(EtlRun *run, int64 lo, int64 hi)
{
	EtlArgs args;

	run->rn_lo = lo;
	run->rn_hi = hi;
	etl_run_args(run, &args);
	etl_spi_query_parallel(etl_deparse_dup_count(etl_batch_sql(run)), &args,
						   run->snapshot);
	if (etl_spi_int64(0, 0, -1) == 0)
		return false;
	return etl_spi_exec(etl_deparse_dup_keys(etl_batch_sql(run)), &args,
						SPI_OK_SELECT, run->snapshot) > 0;
}
