/*-------------------------------------------------------------------------
 *
 * deadletter.c
 *	  Dead letters: building them and storing them.
 *
 *	  An attempt keeps the dead letters it finds in a tuplestore (they must
 *	  survive the rollback of the attempt when it fails) that holds
 *	  ETL_DEAD_LETTERS_MEM_KB in memory and spills the rest to a temporary
 *	  file, so that a run's memory does not grow with its bad rows.  The run
 *	  writes them with its other records, in the order found: in the run's
 *	  transaction when the run succeeds, through the autonomous writer when
 *	  it fails.  Both paths write the same JSON array
 *	  (ETL_DEAD_LETTERS_CLOSE and ETL_DEAD_LETTERS_INSERT: a row version
 *	  is pending as one dead letter at most).
 *
 *	  Dead letters may hold personal data: row level security on
 *	  etl.dead_letters shows each role the dead letters of the pipelines
 *	  whose owner's privileges it has; replay (run/replay.c) and resolve
 *	  (api/dead_letters.c) check the same.
 *
 * IDENTIFICATION
 *	  src/transform/deadletter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "base/errors.h"
#include "base/security.h"
#include "base/settings.h"
#include "catalog/runs.h"
#include "sql/run_state.h"
#include "transform/deadletter.h"

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

/* the columns of a dead letter in the tuplestore */
enum
{
	DL_STAGE,
	DL_RECORD,
	DL_SQLERRCODE,
	DL_MESSAGE,
	DL_OCCURRED_AT,
	DL_NATTS
};

/*
 * The dead letters of an attempt, in the order found (see the header).
 * Created outside the attempt's subtransaction, in the run's memory context
 * and under the run's resource owner: the temporary file it spills to
 * would otherwise be closed by the rollback of the attempt.  tmp holds what
 * one dead letter takes on its way in or out, reset after it.  broken says
 * that a write into the store failed part way (temp_file_limit, a full
 * disk): what it holds cannot be read back, nor its file flushed again.
 */
typedef struct EtlDeadLetters
{
	MemoryContext cxt;
	MemoryContext tmp;
	ResourceOwner owner;
	TupleDesc desc;
	Tuplestorestate *store;
	TupleTableSlot *slot;
	bool broken;
} EtlDeadLetters;

/*
 * etl_dead_letters_begin gives the run an empty set of dead letters for
 * its next attempt, in the current memory context and resource owner (the
 * run's: call it outside the attempt's subtransaction), after freeing the
 * previous attempt's (etl_dead_letters_end).
 */
void
etl_dead_letters_begin(EtlRun *run)
{
	MemoryContext cxt;
	MemoryContext old;
	EtlDeadLetters *dls;
	int kb = ETL_DEAD_LETTERS_MEM_KB;

	etl_dead_letters_end(run);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "etl_ext dead letters",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	dls = palloc0(sizeof(EtlDeadLetters));
	dls->cxt = cxt;
	dls->tmp = AllocSetContextCreate(cxt, "etl_ext dead letter",
									 ALLOCSET_SMALL_SIZES);
	dls->owner = CurrentResourceOwner;
	dls->desc = CreateTemplateTupleDesc(DL_NATTS);
	TupleDescInitEntry(dls->desc, DL_STAGE + 1, "stage", TEXTOID, -1, 0);
	TupleDescInitEntry(dls->desc, DL_RECORD + 1, "record", TEXTOID, -1, 0);
	TupleDescInitEntry(dls->desc, DL_SQLERRCODE + 1, "sqlerrcode", INT4OID, -1,
					   0);
	TupleDescInitEntry(dls->desc, DL_MESSAGE + 1, "message", TEXTOID, -1, 0);
	TupleDescInitEntry(dls->desc, DL_OCCURRED_AT + 1, "occurred_at",
					   TIMESTAMPTZOID, -1, 0);
	if (etl_work_mem > 0)
		kb = Min(kb, etl_work_mem);
	dls->store = tuplestore_begin_heap(false, false, kb);
	dls->slot = MakeSingleTupleTableSlot(dls->desc, &TTSOpsMinimalTuple);
	MemoryContextSwitchTo(old);
	run->dead_letters = dls;
	run->dead_letter_count = 0;
}

/*
 * etl_dead_letters_end frees the run's dead letters, if it has any, and
 * closes their temporary file.
 */
void
etl_dead_letters_end(EtlRun *run)
{
	EtlDeadLetters *dls = run->dead_letters;

	if (dls == NULL)
		return;
	run->dead_letters = NULL;
	run->dead_letter_count = 0;
	ExecDropSingleTupleTableSlot(dls->slot);
	tuplestore_end(dls->store);
	MemoryContextDelete(dls->cxt);
}

/*
 * etl_dead_letter_add adds a dead letter to the run's, after those it has:
 * the row record (JSON text, NULL: none) rejected at stage with the error
 * edata, found now (etl_dead_letter_make).  The caller keeps record and
 * edata; the dead letter takes no memory of the caller's context.
 */
void
etl_dead_letter_add(EtlRun *run, const char *stage, char *record,
					ErrorData *edata)
{
	EtlDeadLetters *dls = run->dead_letters;
	ResourceOwner owner = CurrentResourceOwner;
	MemoryContext old;
	EtlDeadLetter *dl;
	Datum values[DL_NATTS];
	bool nulls[DL_NATTS] = { false };

	if (dls == NULL)
		elog(ERROR, "the dead letters of the run were not begun");
	old = MemoryContextSwitchTo(dls->tmp);
	dl = etl_dead_letter_make(stage, record, edata);
	values[DL_STAGE] = CStringGetTextDatum(dl->stage);
	values[DL_RECORD] = dl->record ? CStringGetTextDatum(dl->record) : 0;
	nulls[DL_RECORD] = dl->record == NULL;
	values[DL_SQLERRCODE] = Int32GetDatum(dl->sqlerrcode);
	values[DL_MESSAGE] = CStringGetTextDatum(dl->message);
	values[DL_OCCURRED_AT] = TimestampTzGetDatum(dl->occurred_at);
	/* a spill file is the run's (an error restores the owner on its way) */
	CurrentResourceOwner = dls->owner;
	dls->broken = true;
	tuplestore_putvalues(dls->store, dls->desc, values, nulls);
	dls->broken = false;
	CurrentResourceOwner = owner;
	MemoryContextSwitchTo(old);
	MemoryContextReset(dls->tmp);
	run->dead_letter_count++;
}

/*
 * etl_dead_letters_count returns how many dead letters the run's attempt
 * has found.
 */
int64
etl_dead_letters_count(EtlRun *run)
{
	return run->dead_letter_count;
}

/*
 * etl_dead_letter_known tells whether the row version record (JSON text, as
 * a dead letter holds it) is pending already as a dead letter of the run's
 * pipeline, rejected at the same stage: the same pipeline, stage and record
 * (jsonb equality, found through the hash of the record).  A run rejects
 * such a row again without a new dead letter and without counting it
 * towards the error threshold; a changed version is another record.  The
 * dead letters of a failed run do not count: it loaded nothing, and the
 * next run judges its rows again.  Reads etl.dead_letters and etl.runs as
 * the extension owner, the record as a parameter.  Called for every row a
 * run rejects, it allocates in a memory context of its own, freed before it
 * returns (the record's jsonb and its parse would otherwise stay for the
 * rest of the run).
 */
bool
etl_dead_letter_known(EtlRun *run, const char *stage, const char *record)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;
	MemoryContext cxt;
	MemoryContext old;

	if (record == NULL)
		return false;
	cxt = AllocSetContextCreate(CurrentMemoryContext,
								"etl_ext dead letter lookup",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	etl_args_init(&args);
	etl_args_add_int8(&args, run->p->id);
	etl_args_add_text(&args, stage);
	etl_args_add(&args, JSONBOID,
				 DirectFunctionCall1(jsonb_in, CStringGetDatum(record)),
				 false);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec(
		"SELECT 1 FROM etl.dead_letters d"
		" WHERE d.pipeline_id OPERATOR(pg_catalog.=) $1"
		" AND d.status OPERATOR(pg_catalog.=) 'pending'"
		" AND d.stage OPERATOR(pg_catalog.=) $2"
		" AND pg_catalog.jsonb_hash(d.record) OPERATOR(pg_catalog.=)"
		" pg_catalog.jsonb_hash($3)"
		" AND d.record OPERATOR(pg_catalog.=) $3"
		" AND NOT EXISTS (SELECT FROM etl.runs r"
		" WHERE r.run_id OPERATOR(pg_catalog.=) d.run_id"
		" AND r.status OPERATOR(pg_catalog.=) 'failed')"
		" LIMIT 1",
		&args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return n > 0;
}

/*
 * dead_letters_json_next appends the run's next dead letters (after those
 * read since dead_letters_rewind), at most max of them, as a JSON array of
 * etl.dead_letters rows, and returns how many it appended.
 */
static int64
dead_letters_json_next(StringInfo buf, EtlRun *run, int64 max)
{
	EtlDeadLetters *dls = run->dead_letters;
	TupleTableSlot *slot = dls->slot;
	MemoryContext old;
	int64 n = 0;
	bool isnull;

	appendStringInfoChar(buf, '[');
	while (n < max && tuplestore_gettupleslot(dls->store, true, false, slot))
	{
		Datum record;

		old = MemoryContextSwitchTo(dls->tmp);
		if (n++ > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfo(
			buf,
			"{\"pipeline_id\": " INT64_FORMAT ", \"pipeline\": ", run->p->id);
		escape_json(buf, run->p->name);
		appendStringInfo(buf, ", \"run_id\": " INT64_FORMAT ", \"stage\": ",
						 run->rec.run_id);
		escape_json(buf, TextDatumGetCString(
							 slot_getattr(slot, DL_STAGE + 1, &isnull)));
		record = slot_getattr(slot, DL_RECORD + 1, &isnull);
		appendStringInfo(buf, ", \"record\": %s, \"error_class\": ",
						 isnull ? "null" : TextDatumGetCString(record));
		escape_json(buf,
					etl_error_class_name(etl_error_class(DatumGetInt32(
						slot_getattr(slot, DL_SQLERRCODE + 1, &isnull)))));
		appendStringInfoString(buf, ", \"sqlstate\": ");
		escape_json(buf, unpack_sql_state(DatumGetInt32(
							 slot_getattr(slot, DL_SQLERRCODE + 1, &isnull))));
		appendStringInfoString(buf, ", \"error_message\": ");
		escape_json(buf, TextDatumGetCString(
							 slot_getattr(slot, DL_MESSAGE + 1, &isnull)));
		appendStringInfoString(buf, ", \"occurred_at\": ");
		escape_json(buf, timestamptz_to_str(DatumGetTimestampTz(slot_getattr(
							 slot, DL_OCCURRED_AT + 1, &isnull))));
		appendStringInfoChar(buf, '}');
		MemoryContextSwitchTo(old);
		MemoryContextReset(dls->tmp);
	}
	appendStringInfoChar(buf, ']');
	ExecClearTuple(slot);
	return n;
}

/*
 * etl_dead_letters_json appends the run's dead letters as a JSON array of
 * etl.dead_letters rows, in the order found; an empty array when there are
 * none, or when a write into their store failed (the attempt failed with
 * that error, and the run's next attempt or run finds them again).
 */
void
etl_dead_letters_json(StringInfo buf, EtlRun *run)
{
	if (run->dead_letters == NULL || run->dead_letters->broken)
	{
		appendStringInfoString(buf, "[]");
		return;
	}
	tuplestore_rescan(run->dead_letters->store);
	(void) dead_letters_json_next(buf, run, PG_INT64_MAX);
}

/*
 * etl_dead_letters_store inserts the run's dead letters in the current
 * transaction (a succeeding run), closing the pending letters of the row
 * versions they record again (see runs.h), ETL_DEAD_LETTERS_CHUNK a
 * statement (two: ETL_DEAD_LETTERS_CLOSE, ETL_DEAD_LETTERS_INSERT), each
 * chunk's JSON built and parsed in a memory context reset after it: a run
 * with 100,000 dead letters does not hold them all as one JSON document.
 */
void
etl_dead_letters_store(EtlRun *run)
{
	int64 n = etl_dead_letters_count(run);
	MemoryContext cxt;
	MemoryContext old;

	if (n == 0)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "etl_ext dead letters",
								ALLOCSET_DEFAULT_SIZES);
	tuplestore_rescan(run->dead_letters->store);
	for (int64 from = 0; from < n; from += ETL_DEAD_LETTERS_CHUNK)
	{
		StringInfoData json;
		EtlArgs args;
		EtlUserSwitch sw;

		old = MemoryContextSwitchTo(cxt);
		initStringInfo(&json);
		(void) dead_letters_json_next(&json, run, ETL_DEAD_LETTERS_CHUNK);
		etl_args_init(&args);
		etl_args_add(&args, JSONBOID,
					 DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)),
					 false);
		etl_become_extension_owner(&sw);
		etl_spi_exec(ETL_DEAD_LETTERS_CLOSE("$1"), &args, SPI_OK_UPDATE,
					 InvalidSnapshot);
		etl_spi_exec(ETL_DEAD_LETTERS_INSERT("$1"), &args, SPI_OK_INSERT,
					 InvalidSnapshot);
		etl_restore_user(&sw);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
}
