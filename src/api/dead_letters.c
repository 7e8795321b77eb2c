/*-------------------------------------------------------------------------
 *
 * dead_letters.c
 *	  The SQL-callable functions of dead letters: etl_retry_dead_letters (the
 *	  replay itself is run/replay.c's) and etl_resolve_dead_letter, which
 *	  closes one by hand.  Only the pipeline's owner (or a member, or a
 *	  superuser) may call either for a pipeline's dead letters.
 *
 * IDENTIFICATION
 *	  src/api/dead_letters.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/run_lock.h"
#include "run/replay.h"
#include "run/run.h"

PG_FUNCTION_INFO_V1(etl_retry_dead_letters);
PG_FUNCTION_INFO_V1(etl_resolve_dead_letter);

/*
 * etl_retry_dead_letters(pipeline text)
 *	 RETURNS TABLE (retried bigint, resolved bigint, still_pending bigint)
 *
 * Re-applies the pipeline's current transform and load to its pending dead
 * letters (after a fix of the transform, or once a missing dimension row has
 * arrived): the ones that load now are marked resolved, the others count
 * another try.  Those whose source row has a newer version, or whose row
 * version another pending dead letter holds too, are marked resolved
 * without being replayed.  retried counts the pending dead letters,
 * resolved the reloaded ones and those marked.  The watermark does not
 * move.  A replay of pending dead letters is recorded as a run
 * (run/replay.c), whose id the rows it loads carry.  Only the pipeline's
 * owner (or a member, or a superuser) may.  Waits for a run in progress.
 */
Datum
etl_retry_dead_letters(PG_FUNCTION_ARGS)
{
	EtlEntry e;
	EtlReplayResult res;
	TupleDesc tupdesc;
	Datum values[3];
	bool nulls[3] = { 0 };
	char *name;
	Datum result;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	etl_entry_begin_write(&e, ETL_ENTRY_PINNED, "etl_retry_dead_letters",
						  etl_pipeline_object(name));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "etl_retry_dead_letters must return a composite type");
	etl_require_read_committed("etl_retry_dead_letters");

	etl_replay_dead_letters(name, &res);

	values[0] = Int64GetDatum(res.retried);
	values[1] = Int64GetDatum(res.resolved);
	values[2] = Int64GetDatum(res.still_pending);
	result = etl_entry_tuple(&e, tupdesc, values, nulls);
	etl_entry_end(&e);
	PG_RETURN_DATUM(result);
}

/*
 * dead_letter_owner finds dead letter id ($1 of args) whoever may see it,
 * as the extension owner, and returns its pipeline's name, owner and id;
 * with lock, the dead letter's row is locked FOR
 * UPDATE (waiting for whoever holds it).  A dead letter that does not exist
 * is an error (42704).
 */
static void
dead_letter_owner(int64 id, EtlArgs *args, bool lock, char **pipeline,
				  Oid *owner, int64 *pipeline_id)
{
	EtlUserSwitch sw;
	bool isnull;
	uint64 n;

	etl_become_extension_owner(&sw);
	n = etl_spi_exec(psprintf("SELECT p.name, p.owner::pg_catalog.oid,"
							  " p.pipeline_id"
							  " FROM etl.dead_letters d"
							  " JOIN etl.pipelines p USING (pipeline_id)"
							  " WHERE d.id OPERATOR(pg_catalog.=) $1%s",
							  lock ? " FOR UPDATE OF d" : ""),
					 args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("dead letter " INT64_FORMAT " does not exist", id),
				 errhint("SELECT id FROM etl.dead_letters lists the dead "
						 "letters you may see.")));
	*pipeline = etl_spi_text(0, 0);
	*owner = DatumGetObjectId(etl_spi_datum(0, 1, &isnull));
	*pipeline_id = etl_spi_int64(0, 2, 0);
}

/*
 * refuse_second_pending refuses to reopen dead letter id ($1 of args, of
 * the pipeline named pipeline) while another dead letter of its pipeline
 * holds the same row version, rejected at the same stage, pending (55000):
 * a row version is pending as one dead letter at most, so that replay
 * tries it once and etl.status counts it once.  The caller holds the
 * pipeline's run lock, so no run records the version meanwhile.  Reads as
 * the extension owner.
 */
static void
refuse_second_pending(int64 id, EtlArgs *args, const char *pipeline)
{
	EtlUserSwitch sw;
	uint64 n;

	etl_become_extension_owner(&sw);
	n = etl_spi_exec(
		"SELECT o.id FROM etl.dead_letters d JOIN etl.dead_letters o"
		" ON o.pipeline_id OPERATOR(pg_catalog.=) d.pipeline_id"
		" AND o.status OPERATOR(pg_catalog.=) 'pending'"
		" AND pg_catalog.jsonb_hash(o.record) OPERATOR(pg_catalog.=)"
		" pg_catalog.jsonb_hash(d.record)"
		" AND o.record OPERATOR(pg_catalog.=) d.record"
		" AND o.stage OPERATOR(pg_catalog.=) d.stage"
		" AND o.id OPERATOR(pg_catalog.<>) d.id"
		" WHERE d.id OPERATOR(pg_catalog.=) $1 ORDER BY o.id LIMIT 1",
		args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n > 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("dead letter " INT64_FORMAT " cannot be reopened", id),
			 errdetail("Dead letter " INT64_FORMAT " of pipeline \"%s\" "
					   "holds the same row version, rejected at the same "
					   "stage, and is pending: a row version is pending "
					   "as one dead letter at most.",
					   etl_spi_int64(0, 0, 0), pipeline),
			 errhint("Replay or resolve dead letter " INT64_FORMAT " instead.",
					 etl_spi_int64(0, 0, 0))));
}

/*
 * etl_resolve_dead_letter(id bigint, status text, resolution text)
 *	 RETURNS boolean
 *
 * Closes a dead letter by hand: status 'resolved' or 'ignored' (or
 * 'pending' to reopen it), with a note.  Only the pipeline's owner (or a
 * member, or a superuser) may.  Reopening waits for the pipeline's run
 * lock, held until the caller's transaction ends, and is refused while
 * another dead letter holds the same row version pending
 * (refuse_second_pending).
 */
Datum
etl_resolve_dead_letter(PG_FUNCTION_ARGS)
{
	int64 id;
	char *status;
	char *resolution;
	EtlArgs args;
	EtlUserSwitch sw;
	EtlEntry e;
	char *pipeline;
	Oid owner;
	int64 pipeline_id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("dead letter id and status must not be NULL")));
	id = PG_GETARG_INT64(0);
	etl_entry_begin_write(&e, ETL_ENTRY_PINNED, "etl_resolve_dead_letter",
						  psprintf("dead letter " INT64_FORMAT, id));
	status = text_to_cstring(PG_GETARG_TEXT_PP(1));
	resolution =
		PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(status, "resolved") != 0 && strcmp(status, "ignored") != 0 &&
		strcmp(status, "pending") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid dead letter status \"%s\"", status),
				 errhint("Valid values are: resolved, ignored, pending.")));

	/*
	 * Find it whoever may see it and check the caller's rights before
	 * locking it, so that a role refused never waits for, nor holds, a lock
	 * on another owner's dead letter; then lock it and check again, as the
	 * row is now committed.
	 */
	etl_args_init(&args);
	etl_args_add_int8(&args, id);
	dead_letter_owner(id, &args, false, &pipeline, &owner, &pipeline_id);
	etl_check_pipeline_owner(pipeline, owner, "resolve the dead letters of");

	/*
	 * Reopening waits for a run of the pipeline (its run lock, as a replay
	 * does), which may be recording the same row version again.
	 */
	if (strcmp(status, "pending") == 0)
		(void) etl_lock_pipeline(pipeline_id, true);
	dead_letter_owner(id, &args, true, &pipeline, &owner, &pipeline_id);
	etl_check_pipeline_owner(pipeline, owner, "resolve the dead letters of");
	if (strcmp(status, "pending") == 0)
		refuse_second_pending(id, &args, pipeline);

	etl_args_add_text(&args, status);
	etl_args_add_text(&args, resolution);
	etl_become_extension_owner(&sw);
	etl_spi_exec("UPDATE etl.dead_letters SET status = $2, resolution = $3,"
				 " resolved_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'pending'"
				 " THEN NULL ELSE pg_catalog.now() END"
				 " WHERE id OPERATOR(pg_catalog.=) $1",
				 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);

	etl_entry_end(&e);
	PG_RETURN_BOOL(true);
}
