/*-------------------------------------------------------------------------
 *
 * mode_timestamp.c
 *	  Mode timestamp: a run takes the source rows whose watermark column (a
 *	  timestamptz or timestamp the writers set, e.g. updated_at = now()) is
 *	  past the stored watermark, less an optional overlap that re-reads a
 *	  window before it.
 *
 *	  A row written by a transaction still open when a run extracts is
 *	  invisible to it; if the watermark moved past that row it would be lost.
 *	  The upper bound therefore stops below every write still in flight
 *	  (safe_bounds.c): hi = least(clock, start of the oldest transaction
 *	  open in this database), read from the backend status array; rows with
 *	  watermark < hi are extracted.  A writer's now() is its start time, so
 *	  a writer still open cannot have written below hi, and every writer
 *	  that started before hi has finished.  Waiting for the table's current
 *	  lockers would not do: a transaction that began before the run and
 *	  writes after it would be lost.
 *
 * IDENTIFICATION
 *	  src/modes/mode_timestamp.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "modes/extract.h"
#include "modes/mode.h"
#include "modes/safe_bounds.h"
#include "modes/watermark.h"

/*
 * timestamp_type_ok tells whether a watermark column of this type suits
 * mode timestamp: timestamptz or timestamp.
 */
static bool
timestamp_type_ok(Oid type)
{
	return type == TIMESTAMPTZOID || type == TIMESTAMPOID;
}

/*
 * watermark_as_timestamptz converts a timestamp-mode watermark to
 * timestamptz for comparisons with the clock.
 */
static TimestampTz
watermark_as_timestamptz(EtlRun *run, Datum value)
{
	if (run->wm_type == TIMESTAMPTZOID)
		return DatumGetTimestampTz(value);
	return DatumGetTimestampTz(
		DirectFunctionCall1(timestamp_timestamptz, value));
}

/*
 * begin_timestamp sets the range of a timestamp-mode run (see the header);
 * a stored watermark in the future is refused, and nothing is taken while
 * a prepared transaction that wrote the source is pending.
 */
static void
begin_timestamp(EtlRun *run)
{
	TimestampTz hi = etl_oldest_open_xact_start();

	if (run->has_lo &&
		watermark_as_timestamptz(run, run->lo) > GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("watermark of pipeline \"%s\" is in the future",
						run->p->name),
				 errdetail("The watermark is %s; no run can have produced it.",
						   run->p->watermark),
				 errhint("Reset it: SELECT etl_reset_watermark(%s, <last "
						 "loaded value>), or NULL to reload everything.",
						 quote_literal_cstr(run->p->name))));

	run->has_hi = true;
	run->hi = TimestampTzGetDatum(hi);
	run->hi_type = TIMESTAMPTZOID;
	run->hi_inclusive = false;

	/*
	 * A prepared transaction that wrote the source has no backend to
	 * publish its start: its rows may carry any time before its PREPARE.
	 * Nothing new is taken until it is committed or rolled back.
	 */
	{
		char *gid = etl_prepared_writer(run->source_relid);

		if (gid != NULL)
		{
			ereport(NOTICE,
					(errmsg("pipeline \"%s\" waits for prepared transaction "
							"%s, which wrote %s",
							run->p->name, quote_literal_cstr(gid),
							run->source_sql),
					 errdetail("Its rows may be older than any bound; "
							   "nothing new is taken until it commits or "
							   "rolls back.")));
			run->nothing = true;
		}
	}

	if (run->has_lo)
	{
		Interval *ov = run->p->overlap;
		bool zero = ov->time == 0 && ov->day == 0 && ov->month == 0;

		run->has_from = true;
		run->rereads = !zero;
		if (zero)
			run->from = run->lo;
		else if (run->wm_type == TIMESTAMPTZOID)
			run->from = DirectFunctionCall2(timestamptz_mi_interval, run->lo,
											IntervalPGetDatum(ov));
		else
			run->from = DirectFunctionCall2(timestamp_mi_interval, run->lo,
											IntervalPGetDatum(ov));
	}
}

const EtlModeOps etl_mode_timestamp = {
	.name = "timestamp",
	.has_watermark_column = true,
	.watermark_is_snapshot = false,
	.watermark_is_clock = true,
	.takes_overlap = true,
	.backfills = true,
	.replaces_target = false,
	.row_noun = "source",
	.watermark_type_ok = timestamp_type_ok,
	.watermark_type_hint = "Use a timestamptz or timestamp column, or mode => "
						   "'serial' for an increasing integer.",
	.watermark_type_error = NULL,
	.check_source = NULL,
	.check_watermark_column = NULL,
	.check_definition = NULL,
	.notice_definition = NULL,
	.describe = NULL,
	.begin = begin_timestamp,
	.snapshot_taken = NULL,
	.stats = etl_extract_range,
	.load = etl_mode_load_range,
	.reject_left_out = NULL,
	.keeps_stage = false,
};
