/*-------------------------------------------------------------------------
 *
 * isolate.c
 *	  Bad-row isolation.
 *
 *	  A batch is loaded set-based in one go (load.c).  Only when that fails
 *	  with a data error (SQLSTATE classes 22 and 23: a cast that fails in the
 *	  transform, a NOT NULL, CHECK, unique or foreign key violation of the
 *	  target) are its source rows staged in a temporary table, numbered in
 *	  the order they were written (etl_deparse_stage_select()), and loaded
 *	  again in parts; the rows that fail on their own are rejected (the
 *	  caller makes them dead letters) and the rest loads.  Only row-local
 *	  transforms are isolated (sql/transform.c): others fail the run.
 *
 *	  Subtransactions.  Every subtransaction that writes and commits keeps
 *	  its transaction id in the backend's PGPROC cache until the top-level
 *	  transaction ends; past 64 the cache overflows and every snapshot taken
 *	  in the cluster must look into pg_subtrans until then.  A subtransaction
 *	  that is rolled back leaves the cache again.  So isolation keeps few
 *	  writing subtransactions and finds bad rows with probes it always rolls
 *	  back:
 *
 *	  1. transform: the transform alone over the stage, read-only (no
 *		 transaction id at all), bisected from about 512 chunks down to the
 *		 rows whose transform fails.  They are rejected (stage "transform").
 *	  2. load: the stage in at most etl.isolation_parts parts, in order.  A
 *		 part is loaded in a subtransaction that is kept when it succeeds.
 *		 When it fails, probes (loads rolled back, each seeing the parts
 *		 before) bisect it from chunks of the same size as in 1, from the
 *		 chunk whose statement failed on, down to the rows that fail on
 *		 their own; those rows are held back, the rest of
 *		 the part is loaded (kept), and then the held rows are tried again,
 *		 now after the rest of their part: the ones that fail again are
 *		 rejected (stage "load"), the others (rows that needed a row of their
 *		 own part, such as a foreign key to it) load too.  Rows that fail only
 *		 together (two rows with the same value of a unique column) are found
 *		 by the shortest failing prefix of the part: its last row is rejected,
 *		 as loading row by row would.
 *
 *	  A part keeps at most two subtransactions (its rest and its held rows),
 *	  so a run keeps at most 2 * etl.isolation_parts of them plus its attempt.
 *	  Until the attempt ends, the isolation holds the lock on each kept
 *	  part's transaction id (keep_part): a session waiting for a row a part
 *	  wrote keeps waiting for that part, and an error that ends the attempt
 *	  (a deadlock with that session during the isolation or in the deletes
 *	  after the load, say) releases it; it does not wait for the caller's
 *	  transaction, which no retry could end.
 *	  The default, 512 parts, makes rare bad rows cheap (only the parts
 *	  holding them load again, and the smaller the parts the fewer rows
 *	  that is) at the price of overflowing the cache while the run's
 *	  transaction lasts; etl.isolation_parts = 24 stays below it (busy
 *	  primaries with hot standbys).  Rejected rows are deleted from the
 *	  stage; held rows are marked etl_held, which the loads leave out until
 *	  they read the held rows only (run->stage_held_only).
 *
 *	  Statements: a part loads in statements of one chunk each (about 1/512
 *	  of the batch), planned without hash joins, so that each row finds its
 *	  target row by index rather than every statement hashing the whole
 *	  target.  Into a target that was empty, with no key twice in the batch,
 *	  they insert without looking at the target at all.
 *
 *	  Cost: a part with bad rows is loaded about two and a half times (the
 *	  failed try, the probes, the rest), so rare bad rows cost the parts
 *	  they fall in; a part without any loads once.  Probes leave dead tuples
 *	  in the target.
 *
 *	  Trust: the stage belongs to the pipeline owner, whose code (transform
 *	  functions, triggers and policies of the target) runs between chunks
 *	  and may rewrite it, alter its columns or add casts from their types.
 *	  Only the pipeline owner ever reads it; the hooks learn row numbers,
 *	  and a caller that writes as the extension owner maps them to what it
 *	  read itself before the owner's code ran (run/replay.c).
 *
 * IDENTIFICATION
 *	  src/transform/isolate.c
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
#include "base/settings.h"
#include "loads/load.h"
#include "loads/load_ops.h"
#include "sql/deparse_stage.h"
#include "sql/deparse_stage_table.h"
#include "sql/run_state.h"
#include "transform/isolate.h"

/* chunks the first probes aim for, and their smallest size */
#define ETL_ISOLATE_CHUNKS 512
#define ETL_ISOLATE_MIN_CHUNK 64

/* parts of the load, each keeping at most two subtransactions */
/* etl.isolation_parts (default 512): see the header */

typedef struct RangeLoad
{
	EtlIsolateHooks *hooks;
	int64 lo;
	int64 hi;
	int64 chunk;   /* rows per statement */
	int64 reached; /* the first row of the statement running last */
	EtlLoadCounts counts;
} RangeLoad;

/* a row that failed on its own, with its error */
typedef struct BadRow
{
	int64 rn;
	ErrorData *edata;
} BadRow;

/*
 * One isolation: what it reports to, the size of its first probes, and its
 * memory.  The work of a part (or of a chunk of the transform's isolation)
 * is done in part_cxt, reset after it: the SQL text, the errors and the
 * bad-row lists of its probes go with it, so that a run's memory does not
 * grow with its bad rows or its parts.  The hooks run in outer, the caller's
 * context, where what they keep (dead letters) lives on.
 */
typedef struct Isolation
{
	EtlIsolateHooks *hooks;
	EtlLoadCounts *total;
	int64 chunk;
	MemoryContext outer;
	MemoryContext part_cxt;
	ResourceOwner owner; /* the caller's resource owner */
} Isolation;

/*
 * probe_subxact runs fn(run, arg) in a subtransaction that is always rolled
 * back, and returns its error (NULL when it succeeded), copied into the
 * caller's memory context.  An error of another class than recoverable is
 * re-thrown.  A probe that wrote leaves nothing, not even its transaction id
 * in the PGPROC cache; what fn allocates is freed with the probe (fn keeps
 * nothing in memory).
 */
static ErrorData *
probe_subxact(EtlSubxactFn fn, EtlRun *run, void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext probe_cxt;
	ErrorData *volatile edata = NULL;

	probe_cxt = AllocSetContextCreate(oldcxt, "etl_ext isolation probe",
									  ALLOCSET_DEFAULT_SIZES);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(probe_cxt);
	PG_TRY();
	{
		fn(run, arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	MemoryContextDelete(probe_cxt);
	if (edata != NULL &&
		etl_error_class(edata->sqlerrcode) != ETL_ERROR_RECOVERABLE)
		ReThrowError(edata);
	return edata;
}

static void hold_part(EtlRun *run, Isolation *iso);

/*
 * keep_part runs fn(run, arg) (the load of a part) in a subtransaction that
 * is kept (released into the caller's transaction) when fn succeeds, and
 * returns NULL; when fn fails, the subtransaction is rolled back and its
 * error returned, copied into the caller's memory context; an error of
 * another class than recoverable is re-thrown.  Memory allocated by fn lives
 * in the caller's context.
 *
 * The lock on a kept part's transaction id is held on, in the isolation's
 * resource owner (the attempt's), until the (sub)transaction around it
 * ends.  A session waiting for a row
 * the part wrote waits for that lock.  PostgreSQL drops it when a
 * subtransaction is released, and such a session would then wait for the
 * caller's top-level transaction instead, which rolling back the attempt
 * does not end: a deadlock with it would come back at every retry.
 */
static ErrorData *
keep_part(EtlSubxactFn fn, EtlRun *run, void *arg, Isolation *iso)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(run, arg);
		hold_part(run, iso);
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
		if (etl_error_class(edata->sqlerrcode) != ETL_ERROR_RECOVERABLE)
			ReThrowError(edata);
	}
	PG_END_TRY();
	return edata;
}

/*
 * load_range loads staged rows lo .. hi (the body of a subtransaction), in
 * statements of rl->chunk rows each: small statements join their rows with
 * the target by index, where one statement for a whole part would hash the
 * whole target, part after part.
 */
static void
load_range(EtlRun *run, void *arg)
{
	RangeLoad *rl = arg;

	memset(&rl->counts, 0, sizeof(rl->counts));
	for (int64 a = rl->lo; a <= rl->hi; a += rl->chunk)
	{
		EtlLoadCounts c;

		rl->reached = a;
		run->rn_lo = a;
		run->rn_hi = Min(a + rl->chunk - 1, rl->hi);
		/* earlier statements may have filled the target (not emptied it) */
		if (!run->target_empty_fixed &&
			(run->target_empty != 0 ||
			 etl_load_ops(run->p->load)->recheck_empty))
			run->target_empty = -1;
		etl_load(run, &c);
		rl->counts.batch += c.batch;
		rl->counts.inserted += c.inserted;
		rl->counts.updated += c.updated;
		rl->counts.deleted += c.deleted;
		rl->counts.unchanged += c.unchanged;
	}
	if (rl->hooks && rl->hooks->loaded)
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
	etl_spi_exec(etl_deparse_transform_probe(etl_batch_sql(run)), &args,
				 SPI_OK_SELECT, run->snapshot);
}

/*
 * probe_range runs a probe (probe_transform, or load_range without hooks)
 * over staged rows lo .. hi, always rolled back; returns its data error.
 */
static ErrorData *
probe_range(EtlRun *run, int64 lo, int64 hi, bool load, int64 chunk)
{
	RangeLoad rl = { NULL, lo, hi, chunk };

	CHECK_FOR_INTERRUPTS();
	if (load)
		return probe_subxact(load_range, run, &rl);
	run->rn_lo = lo;
	run->rn_hi = hi;
	return probe_subxact(probe_transform, run, NULL);
}

/*
 * reject_row hands staged row rn, which failed with edata, to the caller's
 * hook -- with the stage at which it failed (its transform alone fails:
 * "transform", else "load") and its JSON.  The caller removes it from the
 * stage (reject_rows()).  The hook runs in the isolation's outer memory
 * context; the JSON lives in the part's, so a hook copies what it keeps of
 * it.
 */
static void
reject_row(EtlRun *run, int64 rn, ErrorData *edata, Isolation *iso)
{
	ErrorData *terr;
	EtlArgs args;
	char *record;
	MemoryContext old;

	terr = probe_range(run, rn, rn, false, 1);

	run->rn_lo = run->rn_hi = rn;
	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_stage_record(etl_batch_sql(run)), &args,
				 SPI_OK_SELECT, run->snapshot);
	record = etl_spi_text(0, 0);

	old = MemoryContextSwitchTo(iso->outer);
	iso->hooks->rejected(run, rn, terr ? "transform" : "load",
						 terr ? terr : edata, record, iso->hooks->arg);
	MemoryContextSwitchTo(old);
}

/*
 * bad_row_numbers returns the staged row numbers of bad (BadRow *), in its
 * order, in a new array.
 */
static int64 *
bad_row_numbers(List *bad)
{
	int64 *rns = palloc(sizeof(int64) * Max(list_length(bad), 1));
	ListCell *lc;

	foreach (lc, bad)
		rns[foreach_current_index(lc)] = ((BadRow *) lfirst(lc))->rn;
	return rns;
}

/*
 * reject_rows rejects the staged rows of bad (BadRow *, reject_row()), then
 * removes them from the stage together (etl_stage_forget()).
 */
static void
reject_rows(EtlRun *run, List *bad, Isolation *iso)
{
	int64 *rns = bad_row_numbers(bad);
	ListCell *lc;

	foreach (lc, bad)
	{
		BadRow *b = lfirst(lc);

		reject_row(run, b->rn, b->edata, iso);
	}
	etl_stage_forget(run, rns, list_length(bad));
	pfree(rns);
}

/*
 * add_bad adds staged row rn, which failed a probe on its own with edata,
 * to *bad.
 */
static void
add_bad(List **bad, int64 rn, ErrorData *edata)
{
	BadRow *b = palloc(sizeof(BadRow));

	b->rn = rn;
	b->edata = edata;
	*bad = lappend(*bad, b);
}

static void bisect_halves(EtlRun *run, int64 lo, int64 hi, bool load,
						  List **bad);

/*
 * bisect adds to *bad the staged rows of lo .. hi that fail a probe on their
 * own; lo .. hi failed with edata, or (edata NULL) was not probed but should
 * fail, its other half having passed.  Probes are rolled back.
 */
static void
bisect(EtlRun *run, int64 lo, int64 hi, bool load, ErrorData *edata,
	   List **bad)
{
	if (lo == hi)
	{
		if (edata == NULL)
			edata = probe_range(run, lo, lo, load, 1);
		if (edata != NULL)
			add_bad(bad, lo, edata);
		return;
	}
	if (edata != NULL)
		FreeErrorData(edata);
	bisect_halves(run, lo, hi, load, bad);
}

/*
 * bisect_halves adds to *bad the staged rows of lo .. hi (lo < hi, a range
 * known to fail) that fail a probe on their own, probing its halves.
 */
static void
bisect_halves(EtlRun *run, int64 lo, int64 hi, bool load, List **bad)
{
	ErrorData *left;
	int64 mid;

	mid = lo + (hi - lo) / 2;
	left = probe_range(run, lo, mid, load, mid - lo + 1);
	if (left != NULL)
	{
		ErrorData *right;

		bisect(run, lo, mid, load, left, bad);
		right = probe_range(run, mid + 1, hi, load, hi - mid);
		if (right != NULL)
			bisect(run, mid + 1, hi, load, right, bad);
	}
	else
		bisect(run, mid + 1, hi, load, NULL, bad); /* it must be there */
}

/*
 * find_bad returns the staged rows of from .. hi (BadRow *) that fail a
 * probe on their own, probing chunks of `chunk` rows (from lo on) first.
 * With known_failing, the chunk from lo is known to fail as a probe would
 * (the same statement failed in the same state: the first statement of a
 * part's load, rolled back): it is bisected without probing it again.
 */
static List *
find_bad(EtlRun *run, int64 lo, int64 from, int64 hi, bool load, int64 chunk,
		 bool known_failing)
{
	List *bad = NIL;

	for (int64 a = lo; a <= hi; a += chunk)
	{
		int64 b = Min(a + chunk - 1, hi);
		ErrorData *edata;

		if (b < from)
			continue;
		if (known_failing && a == lo && a < b)
		{
			bisect_halves(run, a, b, load, &bad);
			continue;
		}
		edata = probe_range(run, a, b, load, b - a + 1);

		if (edata != NULL)
			bisect(run, a, b, load, edata, &bad);
	}
	return bad;
}

/*
 * first_failing_row finds the staged row of lo .. hi at which loading the
 * part from lo fails (the shortest failing prefix; rows that fail only
 * together with an earlier row), with its error.  Returns false when the
 * part loads now after all.
 */
static bool
first_failing_row(EtlRun *run, int64 lo, int64 hi, int64 chunk, BadRow *b)
{
	ErrorData *failed = probe_range(run, lo, hi, true, chunk);
	int64 l = lo;
	int64 h = hi;

	if (failed == NULL)
		return false;
	/* lo .. h fails, lo .. l - 1 loads */
	while (l < h)
	{
		int64 mid = l + (h - l) / 2;
		ErrorData *edata = probe_range(run, lo, mid, true, chunk);

		if (edata != NULL)
		{
			FreeErrorData(failed);
			failed = edata;
			h = mid;
		}
		else
			l = mid + 1;
	}
	b->rn = l;
	b->edata = failed;
	return true;
}

/*
 * hold marks staged rows (BadRow *) held back from the loads.
 */
static void
hold(EtlRun *run, List *bad)
{
	int64 *rns = bad_row_numbers(bad);
	StringInfoData sql;

	initStringInfo(&sql);
	etl_deparse_stage_hold(&sql, run->stage_table, rns, list_length(bad));
	etl_spi_exec(sql.data, NULL, SPI_OK_UPDATE, InvalidSnapshot);
	pfree(rns);
}

/*
 * load_part loads the staged rows lo .. hi that are not held, rejecting the
 * rows that fail; with may_hold, rows that fail on their own are first held
 * back and tried again after the rest of the part (see the header).  Adds
 * what was loaded to iso->total.  Errors of other classes propagate.
 */
static void
load_part(EtlRun *run, int64 lo, int64 hi, Isolation *iso, bool may_hold)
{
	for (;;)
	{
		/* held rows are few: one statement for all of them */
		int64 chunk = run->stage_held_only ? hi - lo + 1 : iso->chunk;
		RangeLoad rl = { iso->hooks, lo, hi, chunk };
		ErrorData *edata;
		List *bad;
		BadRow first;

		CHECK_FOR_INTERRUPTS();
		edata = keep_part(load_range, run, &rl, iso);
		if (edata == NULL)
		{
			iso->total->batch += rl.counts.batch;
			iso->total->inserted += rl.counts.inserted;
			iso->total->updated += rl.counts.updated;
			iso->total->deleted += rl.counts.deleted;
			iso->total->unchanged += rl.counts.unchanged;
			return;
		}

		/*
		 * The statements before the one that failed loaded, in order after
		 * the parts before: their rows need no probe (were one of them bad
		 * only with rows of the part, loading it in order avoids that).
		 */
		bad = find_bad(run, lo, rl.reached, hi, true, chunk, rl.reached == lo);
		if (bad == NIL)
		{
			/*
			 * The rows fail only together: reject the first at fault.  When
			 * the part loads as a probe but not for good, something else
			 * than its rows decides (a trigger, say): give up.
			 */
			if (!first_failing_row(run, lo, hi, chunk, &first))
				ReThrowError(edata);
			FreeErrorData(edata);
			reject_rows(run, list_make1(&first), iso);
			continue;
		}
		FreeErrorData(edata);

		if (!may_hold)
		{
			reject_rows(run, bad, iso);
			continue;
		}

		/*
		 * Hold them back, load the rest, then try them after it: the held
		 * rows are those of bad, in order, so from its first to its last.
		 */
		hold(run, bad);
		load_part(run, lo, hi, iso, false);
		run->stage_held_only = true;
		load_part(run, ((BadRow *) linitial(bad))->rn,
				  ((BadRow *) llast(bad))->rn, iso, false);
		run->stage_held_only = false;
		return;
	}
}

/*
 * isolate_transform rejects the staged rows 1 .. nrows whose transform
 * fails (read-only probes: no transaction id), chunk by chunk, each in the
 * isolation's part context.
 */
static void
isolate_transform(EtlRun *run, int64 nrows, Isolation *iso)
{
	ErrorData *edata = probe_range(run, 1, nrows, false, nrows);

	if (edata == NULL)
		return;
	FreeErrorData(edata);
	for (int64 a = 1; a <= nrows; a += iso->chunk)
	{
		int64 b = Min(a + iso->chunk - 1, nrows);
		List *bad;

		MemoryContextSwitchTo(iso->part_cxt);
		bad = find_bad(run, a, a, b, false, iso->chunk, false);
		reject_rows(run, bad, iso);
		MemoryContextSwitchTo(iso->outer);
		MemoryContextReset(iso->part_cxt);
	}
}

/*
 * isolation_begin fills an isolation of a batch of nrows staged rows: its
 * hooks, its total, the size of its first probes and its memory (see
 * Isolation).  isolation_end frees that memory.
 */
static void
isolation_begin(Isolation *iso, int64 nrows, EtlIsolateHooks *hooks,
				EtlLoadCounts *total)
{
	iso->hooks = hooks;
	iso->total = total;
	iso->chunk = Max(ETL_ISOLATE_MIN_CHUNK,
					 (nrows + ETL_ISOLATE_CHUNKS - 1) / ETL_ISOLATE_CHUNKS);
	iso->outer = CurrentMemoryContext;
	iso->part_cxt = AllocSetContextCreate(iso->outer, "etl_ext isolation part",
										  ALLOCSET_DEFAULT_SIZES);
	iso->owner = CurrentResourceOwner;
}

/*
 * hold_part takes, in the isolation's resource owner, the lock on the
 * transaction id of the subtransaction running (a part about to be kept),
 * if it has one, and remembers it in run->held_xids, in the isolation's
 * outer memory context (see keep_part).
 */
static void
hold_part(EtlRun *run, Isolation *iso)
{
	TransactionId xid = GetCurrentTransactionIdIfAny();
	ResourceOwner owner = CurrentResourceOwner;
	MemoryContext old;

	StaticAssertStmt(sizeof(TransactionId) == sizeof(Oid),
					 "a transaction id is kept in an Oid cell");
	if (!TransactionIdIsValid(xid))
		return;
	CurrentResourceOwner = iso->owner;
	XactLockTableInsert(xid);
	CurrentResourceOwner = owner;
	old = MemoryContextSwitchTo(iso->outer);
	run->held_xids = lappend_oid(run->held_xids, (Oid) xid);
	MemoryContextSwitchTo(old);
}

/*
 * etl_isolation_release releases the locks hold_part() took for the
 * run's attempt, once the attempt has succeeded (its subtransaction
 * released into the caller's (sub)transaction, the locks with it into that
 * transaction's resource owner): sessions waiting for the parts' rows now
 * wait for the caller's transaction, as for any row it wrote, and the
 * run's locks do not pile up in a transaction that runs many pipelines.
 * After a failed attempt there is nothing to release (the rollback did).
 */
void
etl_isolation_release(EtlRun *run)
{
	ResourceOwner owner = CurrentResourceOwner;
	ListCell *lc;

	CurrentResourceOwner = CurTransactionResourceOwner;
	foreach (lc, run->held_xids)
		XactLockTableDelete((TransactionId) lfirst_oid(lc));
	CurrentResourceOwner = owner;
	run->held_xids = NIL;
}

/*
 * isolation_end frees the memory of an isolation (after an error, the
 * caller's context goes with it).
 */
static void
isolation_end(Isolation *iso)
{
	MemoryContextSwitchTo(iso->outer);
	MemoryContextDelete(iso->part_cxt);
}

/*
 * etl_isolate_transform rejects the staged rows 1 .. nrows whose transform
 * fails, before anything else looks at the batch (quality checks).
 */
void
etl_isolate_transform(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks)
{
	Isolation iso;

	isolation_begin(&iso, nrows, hooks, NULL);
	isolate_transform(run, nrows, &iso);
	isolation_end(&iso);
}

/*
 * etl_load_isolated loads staged rows 1 .. nrows, rejecting the rows that
 * fail with a data error (their transform, then their load); adds what was
 * loaded to *total.  Errors of other classes propagate (the caller's
 * subtransaction undoes the parts already loaded).
 */
void
etl_load_isolated(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks,
				  EtlLoadCounts *total)
{
	Isolation iso;
	int64 part;
	int nestlevel;

	isolation_begin(&iso, nrows, hooks, total);
	part = Max(iso.chunk,
			   (nrows + etl_isolation_parts - 1) / etl_isolation_parts);
	isolate_transform(run, nrows, &iso);

	/*
	 * Into an empty target, rows whose keys are all different can each be
	 * inserted (no part can meet a key of another): the parts then skip the
	 * join with the target, as the one statement of a first load does.
	 */
	run->target_empty = -1;
	if (run->p->key != NIL && !run->dedupe && !run->map->key_unique &&
		etl_batch_has_duplicate_keys(run, 1, nrows))
	{
		/* keys twice in the batch: each statement keeps one row per key */
		run->rn_lo = 1;
		run->rn_hi = nrows;
		etl_start_dedupe(run);
	}
	if (etl_target_is_empty(run))
		run->target_empty_fixed = run->p->key == NIL || !run->dedupe;

	/*
	 * The statements of the parts are small (iso.chunk rows): planned
	 * without hash joins, each row finds its target row by index instead of
	 * each statement hashing the whole target.  An error rolls the setting
	 * back with the subtransaction (or transaction) it ends.
	 */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/*
	 * One row per key: a held row tried after the rest of its part could be
	 * an older version than one the rest loaded, so rows are not held back
	 * then (a row that needed another row of its part is rejected).
	 */
	for (int64 lo = 1; lo <= nrows; lo += part)
	{
		MemoryContextSwitchTo(iso.part_cxt);
		load_part(run, lo, Min(lo + part - 1, nrows), &iso, !run->dedupe);
		MemoryContextSwitchTo(iso.outer);
		MemoryContextReset(iso.part_cxt);
	}
	/*
	 * The parts' locks stay until the attempt ends (keep_part): the deletes
	 * after the load can deadlock with a session waiting for a part's row.
	 */
	isolation_end(&iso);
	AtEOXact_GUC(true, nestlevel);
	run->target_empty_fixed = false; /* (reset_attempt() after an error) */
	run->target_empty = -1;
}
