/*-------------------------------------------------------------------------
 *
 * load.c
 *	  The loads: merge, append, delete_insert.  Each is one set-based
 *	  statement (two for delete_insert) that reads the source range through
 *	  the transform and writes the target, under the run's snapshot, as the
 *	  pipeline owner.
 *
 *	  merge			MERGE on the key; a matched row is updated only when its
 *					row hash differs, so a re-run writes nothing.  When the
 *					target is empty (a first load) a plain INSERT does the
 *					same work without the join.
 *	  append		INSERT of the rows whose key is not in the target yet.
 *	  delete_insert DELETE of the target rows with the batch's keys, then
 *					INSERT of the batch.
 *
 *	  MERGE in PostgreSQL 15 reports only the total of rows it changed; the
 *	  split into inserted and updated comes from etl_tally(), a pass-through
 *	  function the generated statement calls once per inserted, matched and
 *	  updated row, which counts into the per-backend counters below while a
 *	  load runs.  Loads never run in parallel workers (they write), so the
 *	  counters are exact.
 *
 * IDENTIFICATION
 *	  src/load.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "deparse.h"
#include "load.h"

PG_FUNCTION_INFO_V1(etl_tally);

static bool tally_active = false;
static int64 tally[ETL_TALLY_COUNT];

/*
 * etl_tally_start zeroes the counters and starts counting.
 */
void
etl_tally_start(void)
{
	memset(tally, 0, sizeof(tally));
	tally_active = true;
}

/*
 * etl_tally_get returns a counter.
 */
int64
etl_tally_get(EtlTallySlot slot)
{
	return tally[slot];
}

/*
 * etl_tally_stop stops counting.  After an error the counters may stay
 * active; they only count rows of etl_ext's own statements, and the next
 * etl_tally_start() zeroes them.
 */
void
etl_tally_stop(void)
{
	tally_active = false;
}

/*
 * etl_tally(value anyelement, slot integer) returns value; during a load it
 * also adds one to counter slot.
 */
Datum
etl_tally(PG_FUNCTION_ARGS)
{
	if (tally_active && !PG_ARGISNULL(1))
	{
		int32		slot = PG_GETARG_INT32(1);

		if (slot >= 0 && slot < ETL_TALLY_COUNT)
			tally[slot]++;
	}
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

/*
 * exec_load runs one load statement with the run's arguments and snapshot
 * and returns the rows it processed.
 */
static uint64
exec_load(EtlRun *run, const char *sql, int expected)
{
	EtlArgs		args;

	etl_run_args(run, &args);
	return etl_spi_exec(sql, &args, expected, run->snapshot);
}

/*
 * target_is_empty tells whether the target has no row (in the run's
 * snapshot).
 */
static bool
target_is_empty(EtlRun *run)
{
	return etl_spi_exec(etl_deparse_target_probe(run), NULL, SPI_OK_SELECT,
						run->snapshot) == 0;
}

/*
 * etl_load writes the run's batch into the target and sets the run's row
 * counts.  Runs as the pipeline owner; errors propagate (nothing is written
 * then: the caller's transaction or subtransaction rolls back).
 */
void
etl_load(EtlRun *run)
{
	EtlRunRecord *r = &run->rec;
	uint64		n;

	etl_tally_start();
	switch (run->p->load)
	{
		case ETL_LOAD_MERGE:
			if (target_is_empty(run))
			{
				r->rows_inserted = exec_load(run, etl_deparse_insert(run, false),
											 SPI_OK_INSERT);
				break;
			}
			n = exec_load(run, etl_deparse_merge(run), SPI_OK_MERGE);
			r->rows_inserted = etl_tally_get(ETL_TALLY_INSERTED);
			r->rows_updated = (int64) n - r->rows_inserted;
			r->rows_unchanged = Max(etl_tally_get(ETL_TALLY_MATCHED) - r->rows_updated, 0);
			break;
		case ETL_LOAD_APPEND:
			r->rows_inserted = exec_load(run, etl_deparse_insert(run, true),
										 SPI_OK_INSERT);
			r->rows_unchanged = etl_tally_get(ETL_TALLY_BATCH) - r->rows_inserted;
			break;
		case ETL_LOAD_DELETE_INSERT:
			r->rows_deleted = exec_load(run, etl_deparse_delete(run), SPI_OK_DELETE);
			r->rows_inserted = exec_load(run, etl_deparse_insert(run, false),
										 SPI_OK_INSERT);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("load %s is not supported yet",
							etl_load_names[run->p->load])));
	}
	etl_tally_stop();
}
