/*-------------------------------------------------------------------------
 *
 * mode.h
 *	  The extraction modes as a table: what each mode (timestamp, serial,
 *	  xid, cdc, snapshot, full) needs of a definition, how it bounds the
 *	  range of a run, what it does around the load and what the next
 *	  watermark is.  One file per mode (mode_<name>.c) fills one EtlModeOps;
 *	  mode.c lists them by EtlMode.
 *
 * IDENTIFICATION
 *	  src/modes/mode.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_MODE_H
#define ETL_MODE_H

#include "postgres.h"

#include "catalog/pipelines.h"
#include "sql/columns.h"
#include "sql/run_state.h"
#include "transform/stage.h"

/* loads the batch of the range, isolating its bad rows (run/stages.c) */
typedef void (*EtlLoadBatchFn)(EtlRun *run);

typedef struct EtlModeOps
{
	const char *name; /* as in etl.pipelines.mode */

	/*
	 * whether runs take a range of a watermark column (false: every run
	 * reads the whole source, and there is no watermark)
	 */
	bool has_watermark_column;

	/* whether the watermark is a snapshot rather than a column value */
	bool watermark_is_snapshot;

	/*
	 * whether the watermark column is the writers' clock: a watermark in
	 * the future is refused, and the lag is exported in seconds
	 */
	bool watermark_is_clock;

	/* whether an overlap (re-reading a window before the watermark) applies */
	bool takes_overlap;

	/* whether a range can be backfilled, and catch-up steps cut by it */
	bool backfills;

	/* whether each run replaces the target (nothing of it is kept twice) */
	bool replaces_target;

	/* what a row of the source is called in messages ("source", "change") */
	const char *row_noun;

	/* whether a watermark column of this type suits the mode (NULL: none) */
	bool (*watermark_type_ok)(Oid type);

	/*
	 * the hint of the 42804 error for a watermark column whose type does
	 * not suit ("watermark column ... is of type ..., which mode ... cannot
	 * use"), or a function that raises an error of its own instead (NULL:
	 * the common message)
	 */
	const char *watermark_type_hint;
	void (*watermark_type_error)(EtlPipeline *p, Oid type);

	/*
	 * The checks of a definition (NULL: none), in the order
	 * etl_pipeline_validate() calls them: before the watermark column is
	 * looked at; once its type suits; once the key is known.
	 */
	void (*check_source)(EtlPipeline *p, Oid source);
	void (*check_watermark_column)(EtlPipeline *p, Oid source);
	void (*check_definition)(EtlPipeline *p, Oid source, Oid target);

	/* a NOTICE about a definition that is valid but risky (NULL: none) */
	void (*notice_definition)(EtlPipeline *p, Oid source);

	/* what the builders and the loads need of the mode (NULL: nothing) */
	void (*describe)(EtlPipeline *p, EtlBatchSource *descr);

	/*
	 * bounds the range of a run past run->lo (stored watermark), waiting
	 * where the mode needs it (NULL: the whole source)
	 */
	void (*begin)(EtlRun *run);

	/* after the run's snapshot is taken (NULL: nothing) */
	void (*snapshot_taken)(EtlRun *run);

	/*
	 * counts the rows of the range into run->rec.rows_extracted (-1: the
	 * load counts them) and sets the next watermark, watermark_to
	 */
	void (*stats)(EtlRun *run);

	/* the load of the range and the steps before and after it */
	void (*load)(EtlRun *run, EtlLoadBatchFn load_batch);

	/*
	 * after the load of the batch: hands the rows it left out to
	 * hooks->rejected and returns how many (NULL: none are left out)
	 */
	int64 (*reject_left_out)(EtlRun *run, EtlIsolateHooks *hooks);

	/*
	 * whether the stage of a staged batch (run->stage_table: the rows of
	 * the batch that no stage of the run rejected) is kept for the steps
	 * of load after the load of the batch; etl_run_stages() drops it after
	 * them (false: the load of the batch drops it)
	 */
	bool keeps_stage;
} EtlModeOps;

extern const EtlModeOps etl_mode_timestamp;
extern const EtlModeOps etl_mode_serial;
extern const EtlModeOps etl_mode_xid;
extern const EtlModeOps etl_mode_cdc;
extern const EtlModeOps etl_mode_snapshot;
extern const EtlModeOps etl_mode_full;

extern const EtlModeOps *etl_mode_ops(EtlMode mode);
extern void etl_describe_batch(EtlPipeline *p, EtlBatchSource *descr);
extern EtlColumnMap *etl_resolve_columns(EtlPipeline *p, Oid source_relid,
										 Oid target_relid);
extern EtlColumnMap *etl_resolve_columns_ext(EtlPipeline *p, Oid source_relid,
											 Oid target_relid,
											 bool check_perms);

/* shared by the modes */
extern void etl_mode_serial_begin(EtlRun *run);
extern void etl_mode_load_range(EtlRun *run, EtlLoadBatchFn load_batch);

#endif /* ETL_MODE_H */
