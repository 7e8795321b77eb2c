/*-------------------------------------------------------------------------
 *
 * deadletter.c
 *	  Dead letters: building them, storing them, replaying them
 *	  (etl_retry_dead_letters) and closing them by hand
 *	  (etl_resolve_dead_letter).
 *
 *	  A run keeps the dead letters it finds in memory (they must survive the
 *	  rollback of a failed attempt) and writes them with its other records:
 *	  in the run's transaction when the run succeeds, through the autonomous
 *	  writer when it fails.  Both paths insert the same JSON array
 *	  (ETL_DEAD_LETTERS_INSERT).
 *
 *	  Dead letters may hold personal data: row level security on
 *	  etl.dead_letters shows each role the dead letters of the pipelines
 *	  whose owner's privileges it has; replay and resolve check the same.
 *
 * IDENTIFICATION
 *	  src/deadletter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "columns.h"
#include "deadletter.h"
#include "errors.h"
#include "etl_ext.h"
#include "isolate.h"
#include "quality.h"
#include "security.h"

PG_FUNCTION_INFO_V1(etl_retry_dead_letters);
PG_FUNCTION_INFO_V1(etl_resolve_dead_letter);

/*
 * etl_dead_letter_make builds a dead letter (in the current memory
 * context) from the error that rejected a row.
 */
EtlDeadLetter *
etl_dead_letter_make(const char *stage, char *record, ErrorData *edata)
{
	EtlDeadLetter *dl = palloc0(sizeof(EtlDeadLetter));

	dl->stage = stage;
	dl->record = record;
	dl->sqlerrcode = edata->sqlerrcode;
	dl->message =
		edata->detail
			? psprintf("%s\nDETAIL: %s", edata->message, edata->detail)
			: pstrdup(edata->message ? edata->message : "");
	dl->occurred_at = GetCurrentTimestamp();
	return dl;
}

/*
 * etl_dead_letters_json appends the run's dead letters as a JSON array of
 * etl.dead_letters rows.
 */
void
etl_dead_letters_json(StringInfo buf, EtlRun *run)
{
	ListCell *lc;

	appendStringInfoChar(buf, '[');
	foreach (lc, run->dead_letters)
	{
		EtlDeadLetter *dl = lfirst(lc);

		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfo(
			buf,
			"{\"pipeline_id\": " INT64_FORMAT ", \"pipeline\": ", run->p->id);
		escape_json(buf, run->p->name);
		appendStringInfo(buf, ", \"run_id\": " INT64_FORMAT ", \"stage\": ",
						 run->rec.run_id);
		escape_json(buf, dl->stage);
		appendStringInfo(buf, ", \"record\": %s, \"error_class\": ",
						 dl->record ? dl->record : "null");
		escape_json(buf,
					etl_error_class_name(etl_error_class(dl->sqlerrcode)));
		appendStringInfoString(buf, ", \"sqlstate\": ");
		escape_json(buf, unpack_sql_state(dl->sqlerrcode));
		appendStringInfoString(buf, ", \"error_message\": ");
		escape_json(buf, dl->message);
		appendStringInfoString(buf, ", \"occurred_at\": ");
		escape_json(buf, timestamptz_to_str(dl->occurred_at));
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoChar(buf, ']');
}

/*
 * etl_dead_letters_store inserts the run's dead letters in the current
 * transaction (a succeeding run).
 */
void
etl_dead_letters_store(EtlRun *run)
{
	StringInfoData json;
	EtlArgs args;
	EtlUserSwitch sw;

	if (run->dead_letters == NIL)
		return;
	initStringInfo(&json);
	etl_dead_letters_json(&json, run);
	etl_args_init(&args);
	etl_args_add(&args, JSONBOID,
				 DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)),
				 false);
	etl_become_extension_owner(&sw);
	etl_spi_exec(ETL_DEAD_LETTERS_INSERT("$1"), &args, SPI_OK_INSERT,
				 InvalidSnapshot);
	etl_restore_user(&sw);
}

/* replay state */
typedef struct Replay
{
	int64 resolved;
} Replay;

/*
 * replay_loaded marks the dead letters behind staged rows lo .. hi
 * resolved (inside the subtransaction that loaded them).
 */
static void
replay_loaded(EtlRun *run, int64 lo, int64 hi, void *arg)
{
	Replay *rp = arg;
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, lo);
	etl_args_add_int8(&args, hi);
	etl_become_extension_owner(&sw);
	rp->resolved += etl_spi_exec(
		psprintf("UPDATE etl.dead_letters SET status = 'resolved',"
				 " resolved_at = pg_catalog.now(),"
				 " resolution = 'reloaded by etl_retry_dead_letters'"
				 " WHERE id IN (SELECT etl_ref FROM pg_temp.%s"
				 " WHERE etl_rn BETWEEN $1 AND $2 AND %s)",
				 run->stage_table, etl_stage_filter(run, NULL)),
		&args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * replay_rejected counts another failed try on the dead letter behind
 * staged row rn, with the error of this try.
 */
static void
replay_rejected(EtlRun *run, int64 rn, const char *stage, ErrorData *edata,
				char *record, void *arg)
{
	EtlDeadLetter *dl = etl_dead_letter_make(stage, record, edata);
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, rn);
	etl_args_add_text(&args, stage);
	etl_args_add_text(&args, unpack_sql_state(dl->sqlerrcode));
	etl_args_add_text(&args,
					  etl_error_class_name(etl_error_class(dl->sqlerrcode)));
	etl_args_add_text(&args, dl->message);
	etl_become_extension_owner(&sw);
	etl_spi_exec(
		psprintf("UPDATE etl.dead_letters SET"
				 " retry_count = retry_count OPERATOR(pg_catalog.+) 1,"
				 " stage = $2, sqlstate = $3, error_class = $4,"
				 " error_message = $5"
				 " WHERE id = (SELECT etl_ref FROM pg_temp.%s"
				 " WHERE etl_rn = $1)",
				 run->stage_table),
		&args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * etl_retry_dead_letters(pipeline text)
 *	 RETURNS TABLE (retried bigint, resolved bigint, still_pending bigint)
 *
 * Re-applies the pipeline's current transform and load to its pending dead
 * letters (after a fix of the transform, or once a missing dimension row has
 * arrived): the ones that load now are marked resolved, the others count
 * another try.  The watermark does not move.  Only the pipeline's owner (or
 * a member, or a superuser) may.  Waits for a run in progress.
 */
Datum
etl_retry_dead_letters(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	EtlRun run = { 0 };
	Replay rp = { 0 };
	EtlIsolateHooks hooks = { replay_loaded, replay_rejected, &rp };
	EtlLoadCounts total = { 0 };
	EtlUserSwitch sw = { 0 };
	EtlArgs args;
	TupleDesc tupdesc;
	Datum values[3];
	bool nulls[3] = { 0 };
	int nestlevel;
	int64 n;
	char *name;
	HeapTuple tuple;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "etl_retry_dead_letters must return a composite type");
	etl_require_read_committed("etl_retry_dead_letters");

	etl_spi_connect();
	nestlevel = etl_pin_settings();
	run.p = etl_catalog_load(name, false, InvalidSnapshot);
	(void) etl_lock_pipeline(run.p->id, true);
	{
		Snapshot snap = RegisterSnapshot(GetLatestSnapshot());

		run.p = etl_catalog_load(name, false, snap);
		UnregisterSnapshot(snap);
	}
	etl_check_pipeline_owner(run.p->name, run.p->owner,
							 "retry the dead letters of");
	etl_check_role_exists(run.p->name, run.p->owner);
	run.rec.run_id = 0;
	run.rec.started_at = GetCurrentTimestamp();
	run.target_empty = -1;

	etl_become_owner(&sw, run.p->owner);
	etl_run_resolve_relations(&run);
	run.map = etl_resolve_columns(run.p, run.source_relid, run.target_relid);
	etl_require_unique_key(run.p, run.target_relid);
	if (!run.map->row_local)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot replay the dead letters of pipeline \"%s\"",
						run.p->name),
				 errdetail("Its transform is not row-local: run over a few "
						   "source rows, it would compute their aggregates, "
						   "DISTINCT or window functions alone and overwrite "
						   "the target's rows with partial results."),
				 errhint("Fix the rows in the source and reload them, or "
						 "resolve the dead letters by hand with "
						 "etl_resolve_dead_letter().")));
	run.snapshot = RegisterSnapshot(GetLatestSnapshot());
	etl_stage_create(&run);
	etl_args_init(&args);
	etl_args_add_int8(&args, run.p->id);
	n = etl_stage_fill(
		&run,
		psprintf(
			"SELECT pg_catalog.row_number() OVER (ORDER BY d.id), d.id, r.*"
			" FROM etl.dead_letters d,"
			" LATERAL pg_catalog.jsonb_populate_record(NULL::%s, d.record) r"
			" WHERE d.pipeline_id OPERATOR(pg_catalog.=) $1"
			" AND d.status OPERATOR(pg_catalog.=) 'pending'"
			" AND d.record IS NOT NULL",
			run.source_sql),
		&args);
	run.stage_rows = n;

	/*
	 * What a run would have done to these rows: the transform's bad rows
	 * first, then the checks that keep rows out (critical, quarantine),
	 * then the load.
	 */
	etl_isolate_transform(&run, n, &hooks);
	(void) etl_checks_replay(&run, n, &hooks);
	etl_load_isolated(&run, n, &hooks, &total);
	etl_stage_drop(&run);
	UnregisterSnapshot(run.snapshot);
	etl_restore_user(&sw);

	etl_unpin_settings(nestlevel);
	etl_spi_finish();

	MemoryContextSwitchTo(callercxt);
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int64GetDatum(n);
	values[1] = Int64GetDatum(rp.resolved);
	values[2] = Int64GetDatum(n - rp.resolved);
	tuple = heap_form_tuple(tupdesc, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

/*
 * etl_resolve_dead_letter(id bigint, status text, resolution text)
 *	 RETURNS boolean
 *
 * Closes a dead letter by hand: status 'resolved' or 'ignored' (or
 * 'pending' to reopen it), with a note.  Only the pipeline's owner (or a
 * member, or a superuser) may.
 */
Datum
etl_resolve_dead_letter(PG_FUNCTION_ARGS)
{
	int64 id;
	char *status;
	char *resolution;
	EtlArgs args;
	EtlUserSwitch sw;
	int nestlevel;
	char *pipeline;
	Oid owner;
	bool isnull;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("dead letter id and status must not be NULL")));
	id = PG_GETARG_INT64(0);
	status = text_to_cstring(PG_GETARG_TEXT_PP(1));
	resolution =
		PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(status, "resolved") != 0 && strcmp(status, "ignored") != 0 &&
		strcmp(status, "pending") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid dead letter status \"%s\"", status),
				 errhint("Valid values are: resolved, ignored, pending.")));

	etl_spi_connect();
	nestlevel = etl_pin_settings();

	/* find it whoever may see it, then check the caller's rights */
	etl_args_init(&args);
	etl_args_add_int8(&args, id);
	etl_become_extension_owner(&sw);
	if (etl_spi_exec(
			"SELECT p.name, p.owner::pg_catalog.oid FROM etl.dead_letters d"
			" JOIN etl.pipelines p USING (pipeline_id)"
			" WHERE d.id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF d",
			&args, SPI_OK_SELECT, InvalidSnapshot) == 0)
	{
		etl_restore_user(&sw);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("dead letter " INT64_FORMAT " does not exist", id),
				 errhint("SELECT id FROM etl.dead_letters lists the dead "
						 "letters you may see.")));
	}
	etl_restore_user(&sw);
	pipeline = etl_spi_text(0, 0);
	owner = DatumGetObjectId(etl_spi_datum(0, 1, &isnull));
	etl_check_pipeline_owner(pipeline, owner, "resolve the dead letters of");

	etl_args_add_text(&args, status);
	etl_args_add_text(&args, resolution);
	etl_become_extension_owner(&sw);
	etl_spi_exec("UPDATE etl.dead_letters SET status = $2, resolution = $3,"
				 " resolved_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'pending'"
				 " THEN NULL ELSE pg_catalog.now() END"
				 " WHERE id OPERATOR(pg_catalog.=) $1",
				 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);

	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_BOOL(true);
}
