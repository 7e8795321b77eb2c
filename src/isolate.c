/*-------------------------------------------------------------------------
 *
 * isolate.c
 *	  Bad-row isolation.
 *
 *	  A batch is loaded set-based in one go (load.c).  Only when that fails
 *	  with a data error (SQLSTATE classes 22 and 23: a cast that fails in the
 *	  transform, a NOT NULL, CHECK, unique or foreign key violation of the
 *	  target) are its source rows staged in a temporary table with row
 *	  numbers and loaded again in chunks, each in its own subtransaction.  A
 *	  chunk that fails is bisected, its halves in subtransactions of their
 *	  own, recursively, until each failing row stands alone; that row is
 *	  rejected (the caller makes it a dead letter) and the rest loads.
 *
 *	  Cost: starting from about 512 chunks rather than from the whole batch
 *	  skips the top levels of the bisection, where nearly every part still
 *	  holds a bad row when bad rows are spread out.  A rejected row then
 *	  costs the reload of about two chunks' worth of rows, so a batch with
 *	  rare bad rows costs a few times a clean one, far less than one
 *	  subtransaction per row.
 *
 *	  The stage: pg_temp.etl_stage_<run id> (etl_rn bigint, etl_ref bigint,
 *	  the source's columns), created by the pipeline owner (without the
 *	  security-restricted flag, which forbids creating the session's
 *	  temporary schema; the statement runs no user code) and filled by the
 *	  owner inside the restricted operation.  Loads read rows rn_lo .. rn_hi
 *	  of it through the same generated statements (deparse.c).
 *
 * IDENTIFICATION
 *	  src/isolate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "deparse.h"
#include "errors.h"
#include "isolate.h"
#include "load.h"

/* chunks the first isolation pass aims for, and their smallest size */
#define ETL_ISOLATE_CHUNKS 512
#define ETL_ISOLATE_MIN_CHUNK 64

typedef struct RangeLoad
{
	EtlIsolateHooks *hooks;
	int64 lo;
	int64 hi;
	EtlLoadCounts counts;
} RangeLoad;

/*
 * etl_in_subxact runs fn(run, arg) in a subtransaction.  Returns NULL when
 * it succeeded (the subtransaction is released: its work stays in the
 * caller's transaction).  When it failed, the subtransaction is rolled back
 * and the error returned, copied into the caller's memory context; with
 * recoverable_only, an error of another class than recoverable is re-thrown
 * instead.  Memory allocated by fn lives in the caller's context.
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
	TupleDesc desc = RelationGetDescr(source);
	StringInfoData cols;
	Oid userid;
	int sec;

	initStringInfo(&cols);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped)
			continue;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "",
						 quote_identifier(NameStr(a->attname)));
	}
	relation_close(source, AccessShareLock);
	run->stage_columns = cols.data;
	run->stage_table = psprintf("etl_stage_" INT64_FORMAT, run->rec.run_id);

	GetUserIdAndSecContext(&userid, &sec);
	SetUserIdAndSecContext(userid, sec & ~SECURITY_RESTRICTED_OPERATION);
	etl_spi_exec(
		psprintf("CREATE TEMP TABLE %s (etl_rn pg_catalog.int8 NOT NULL,"
				 " etl_ref pg_catalog.int8, LIKE %s) ON COMMIT DROP",
				 run->stage_table, run->source_sql),
		NULL, SPI_OK_UTILITY, InvalidSnapshot);
	SetUserIdAndSecContext(userid, sec);
}

/*
 * etl_stage_fill inserts the rows of select_sql (etl_rn, etl_ref, then the
 * source's columns) into the stage and returns how many.
 */
int64
etl_stage_fill(EtlRun *run, const char *select_sql, EtlArgs *args)
{
	int64 n;

	n = etl_spi_exec(
		psprintf("INSERT INTO pg_temp.%s %s", run->stage_table, select_sql),
		args, SPI_OK_INSERT, run->snapshot);

	/* chunks read the stage by row number: index it, give it statistics */
	etl_spi_exec(
		psprintf("CREATE INDEX ON pg_temp.%s (etl_rn)", run->stage_table),
		NULL, SPI_OK_UTILITY, InvalidSnapshot);
	etl_spi_exec(psprintf("ANALYZE pg_temp.%s", run->stage_table), NULL,
				 SPI_OK_UTILITY, InvalidSnapshot);
	return n;
}

/*
 * etl_stage_drop drops the stage (when the run keeps going in the same
 * transaction; otherwise ON COMMIT DROP or a rollback removes it).
 */
void
etl_stage_drop(EtlRun *run)
{
	if (run->stage_table == NULL)
		return;
	etl_spi_exec(psprintf("DROP TABLE pg_temp.%s", run->stage_table), NULL,
				 SPI_OK_UTILITY, InvalidSnapshot);
	run->stage_table = NULL;
}

/*
 * load_range loads staged rows lo .. hi (the body of a subtransaction).
 */
static void
load_range(EtlRun *run, void *arg)
{
	RangeLoad *rl = arg;

	run->rn_lo = rl->lo;
	run->rn_hi = rl->hi;
	run->target_empty = -1; /* earlier parts may have filled it */
	etl_load(run, &rl->counts);
	if (rl->hooks->loaded)
		rl->hooks->loaded(run, rl->lo, rl->hi, rl->hooks->arg);
}

/*
 * probe_transform runs the transform alone over the current staged range
 * (the body of a subtransaction): an error here is the transform's.
 */
static void
probe_transform(EtlRun *run, void *arg)
{
	EtlArgs args;

	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_transform_probe(run), &args, SPI_OK_SELECT,
				 run->snapshot);
}

/*
 * reject_row hands staged row rn, which failed alone with edata, to the
 * caller's hook: with the stage at which it failed and its JSON.
 */
static void
reject_row(EtlRun *run, int64 rn, ErrorData *edata, EtlIsolateHooks *hooks)
{
	ErrorData *terr;
	EtlArgs args;
	char *record;

	run->rn_lo = run->rn_hi = rn;
	terr = etl_in_subxact(probe_transform, run, NULL, true);

	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_stage_record(run), &args, SPI_OK_SELECT,
				 run->snapshot);
	record = etl_spi_text(0, 0);

	hooks->rejected(run, rn, terr ? "transform" : "load", terr ? terr : edata,
					record, hooks->arg);
}

/*
 * isolate_range loads staged rows lo .. hi, bisecting on data errors.
 */
static void
isolate_range(EtlRun *run, int64 lo, int64 hi, EtlIsolateHooks *hooks,
			  EtlLoadCounts *total)
{
	RangeLoad rl = { hooks, lo, hi };
	ErrorData *edata;
	int64 mid;

	CHECK_FOR_INTERRUPTS();
	edata = etl_in_subxact(load_range, run, &rl, true);
	if (edata == NULL)
	{
		total->batch += rl.counts.batch;
		total->inserted += rl.counts.inserted;
		total->updated += rl.counts.updated;
		total->deleted += rl.counts.deleted;
		total->unchanged += rl.counts.unchanged;
		return;
	}
	if (lo == hi)
	{
		reject_row(run, lo, edata, hooks);
		return;
	}
	FreeErrorData(edata);
	mid = lo + (hi - lo) / 2;
	isolate_range(run, lo, mid, hooks, total);
	isolate_range(run, mid + 1, hi, hooks, total);
}

/*
 * etl_load_isolated loads staged rows 1 .. nrows in chunks, isolating the
 * rows that fail with a data error; adds what was loaded to *total.  Errors
 * of other classes propagate (the caller's subtransaction undoes the
 * chunks already loaded).
 */
void
etl_load_isolated(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks,
				  EtlLoadCounts *total)
{
	int64 chunk = Max(ETL_ISOLATE_MIN_CHUNK,
					  (nrows + ETL_ISOLATE_CHUNKS - 1) / ETL_ISOLATE_CHUNKS);

	for (int64 lo = 1; lo <= nrows; lo += chunk)
		isolate_range(run, lo, Min(lo + chunk - 1, nrows), hooks, total);
}
