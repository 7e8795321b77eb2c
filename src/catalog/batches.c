/*-------------------------------------------------------------------------
 *
 * batches.c
 *	  The batch log (etl.batches).  A run records its batch when it took rows;
 *	  the steps of long work that commits in steps, etl_catch_up and
 *	  etl_backfill (procedures in etl_ext--1.0.sql), record each step as
 *	  'started' and commit that before the step's work (etl_batch_start), which
 *	  completes it ('completed', or 'failed' by the failure record) in its own
 *	  transaction.  A crash in between leaves 'started' (or 'staged') rows: the
 *	  next run, catch-up or backfill of the pipeline marks them 'abandoned' and
 *	  redoes their range (the watermark did not move, and a backfill step
 *	  counts as done only when completed).
 *
 *	  Writes run as the extension owner: callers have checked that the current
 *	  user may run the pipeline.
 *
 * IDENTIFICATION
 *	  src/catalog/batches.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/batches.h"
#include "catalog/run_lock.h"

PG_FUNCTION_INFO_V1(etl_batch_start);
PG_FUNCTION_INFO_V1(etl_batch_recover);

/*
 * etl_catalog_record_batch inserts a row of the batch log for a run; its
 * rows are those of its range, past the run's starting watermark (rows an
 * overlap re-read lie before it).
 */
void
etl_catalog_record_batch(EtlRunRecord *r, const char *kind, const char *status)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, r->run_id);
	etl_args_add_int8(&args, r->pipeline_id);
	etl_args_add_text(&args, r->pipeline);
	etl_args_add_text(&args, kind);
	etl_args_add_text(&args, r->watermark_from);
	etl_args_add_text(&args, r->watermark_to);
	etl_args_add_text(&args, status);
	etl_args_add_int8(&args, Max(r->rows_new, 0));

	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"INSERT INTO etl.batches (run_id, pipeline_id, pipeline, kind,"
		" range_from, range_to, status, rows)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		&args, SPI_OK_INSERT, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_finish_batch sets the status of a batch row written by
 * etl_batch_start (a step of catch-up or backfill) from its run, with the
 * rows of its range (see etl_catalog_record_batch).
 */
void
etl_catalog_finish_batch(int64 batch_id, EtlRunRecord *r, const char *status,
						 const char *error)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, batch_id);
	etl_args_add_int8(&args, r->run_id);
	etl_args_add_text(&args, status);
	etl_args_add_int8(&args, Max(r->rows_new, 0));
	etl_args_add_int8(&args, r->pipeline_id);
	etl_args_add_text(&args, r->watermark_from);
	etl_args_add_text(&args, r->watermark_to);
	etl_args_add_text(&args, error);
	etl_become_extension_owner(&sw);
	/* a catch-up step learns its range from its run */
	etl_spi_exec("UPDATE etl.batches SET run_id = $2, status = $3, rows = $4,"
				 " range_from = COALESCE(range_from, $6),"
				 " range_to = COALESCE(range_to, $7), error = $8,"
				 " updated_at = pg_catalog.now()"
				 " WHERE batch_id OPERATOR(pg_catalog.=) $1"
				 " AND pipeline_id OPERATOR(pg_catalog.=) $5",
				 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_catalog_complete_batch marks a step's batch row completed.
 */
void
etl_catalog_complete_batch(int64 batch_id, EtlRunRecord *r)
{
	etl_catalog_finish_batch(batch_id, r, "completed", NULL);
}

/*
 * etl_batch_recover_pipeline marks the batch rows a crash left 'started' or
 * 'staged' as 'abandoned' (but except_batch, the caller's own step) and
 * returns how many.  Called by every run, so
 * that any next run of the pipeline finds them.
 */
int64
etl_batch_recover_pipeline(EtlPipeline *p, int64 except_batch)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_int8(&args, except_batch);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec(
		"UPDATE etl.batches SET status = 'abandoned',"
		" updated_at = pg_catalog.now(),"
		" error = 'left ' OPERATOR(pg_catalog.||) status OPERATOR(pg_catalog.||)"
		" ' by a session that ended before its step committed'"
		" WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
		" AND status OPERATOR(pg_catalog.=) ANY ('{started,staged}')"
		" AND batch_id OPERATOR(pg_catalog.<>) $2",
		&args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
	return (int64) n;
}

/*
 * etl_catch_up_tail tells whether a catch-up step that extracted nothing
 * (the run of pipeline p triggered_by "catch_up" for its row batch_id of
 * the batch log) is the empty last step of a catch-up: the step before it
 * -- the pipeline's latest catch-up batch before this step's, leaving out
 * those a crash abandoned -- completed with a full batch (batch_size rows
 * or more), so the procedure ran this one only to learn that nothing is
 * left.  Such a step is no batch to judge: the run skips the quality
 * checks for it.  A catch-up that finds nothing at all is judged like any
 * run.
 */
bool
etl_catch_up_tail(EtlPipeline *p, int64 batch_id, const char *triggered_by)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;
	bool isnull = true;
	bool tail;

	if (batch_id == 0 || triggered_by == NULL ||
		strcmp(triggered_by, "catch_up") != 0 || p->batch_size <= 0)
		return false;
	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_int8(&args, batch_id);
	etl_args_add_int8(&args, p->batch_size);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT b.status OPERATOR(pg_catalog.=) 'completed'"
					 " AND b.rows OPERATOR(pg_catalog.>=) $3"
					 " FROM etl.batches b"
					 " WHERE b.pipeline_id OPERATOR(pg_catalog.=) $1"
					 " AND b.batch_id OPERATOR(pg_catalog.<) $2"
					 " AND b.kind OPERATOR(pg_catalog.=) 'catch_up'"
					 " AND b.status OPERATOR(pg_catalog.<>) 'abandoned'"
					 " ORDER BY b.batch_id DESC LIMIT 1",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	tail = n == 1 && DatumGetBool(etl_spi_datum(0, 0, &isnull)) && !isnull;
	etl_restore_user(&sw);
	return tail;
}

/*
 * etl_batch_recover(pipeline text) RETURNS bigint
 */
Datum
etl_batch_recover(PG_FUNCTION_ARGS)
{
	EtlPipeline *p;
	EtlEntry e;
	int64 n = 0;

	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	p = etl_catalog_load_runnable(fcinfo, 0);
	/* a step running now holds the run lock: its row is not a leftover */
	if (etl_pipeline_lock_holder(p->id) == 0)
		n = etl_batch_recover_pipeline(p, 0);
	etl_entry_end(&e);
	PG_RETURN_INT64(n);
}

/*
 * etl_batch_start(pipeline text, kind text, range_from text, range_to text)
 *	 RETURNS bigint
 *
 * Writes a 'started' row of the batch log for a step about to run (the
 * caller commits it before the step) and returns its id; NULL when a drop
 * of the pipeline is in progress (the row would wait for it, then refer to
 * a pipeline that is gone): the step that follows is skipped then.
 */
Datum
etl_batch_start(PG_FUNCTION_ARGS)
{
	EtlPipeline *p;
	EtlArgs args;
	EtlUserSwitch sw;
	EtlEntry e;
	int64 id;

	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	p = etl_catalog_load_runnable(fcinfo, 0);
	if (!etl_catalog_try_lock_key(p->id))
	{
		etl_entry_end(&e);
		PG_RETURN_NULL();
	}
	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_text(&args, p->name);
	etl_args_add_text(
		&args, PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	etl_args_add_text(
		&args, PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	etl_args_add_text(
		&args, PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)));
	etl_become_extension_owner(&sw);
	etl_spi_exec("INSERT INTO etl.batches (pipeline_id, pipeline, kind,"
				 " range_from, range_to, status)"
				 " VALUES ($1, $2, $3, $4, $5, 'started') RETURNING batch_id",
				 &args, SPI_OK_INSERT_RETURNING, InvalidSnapshot);
	etl_restore_user(&sw);
	id = etl_spi_int64(0, 0, 0);
	etl_entry_end(&e);
	PG_RETURN_INT64(id);
}
