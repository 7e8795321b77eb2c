/*-------------------------------------------------------------------------
 *
 * deadletter.c
 *	  Dead letters: building them and storing them.
 *
 *	  A run keeps the dead letters it finds in memory (they must survive the
 *	  rollback of a failed attempt) and writes them with its other records:
 *	  in the run's transaction when the run succeeds, through the autonomous
 *	  writer when it fails.  Both paths insert the same JSON array
 *	  (ETL_DEAD_LETTERS_INSERT).
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
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "base/errors.h"
#include "base/security.h"
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
 * dead_letters_json_range appends the run's dead letters from .. to - 1 as
 * a JSON array of etl.dead_letters rows.
 */
static void
dead_letters_json_range(StringInfo buf, EtlRun *run, int from, int to)
{
	appendStringInfoChar(buf, '[');
	for (int i = from; i < to; i++)
	{
		EtlDeadLetter *dl = list_nth(run->dead_letters, i);

		if (i > from)
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
 * etl_dead_letters_json appends the run's dead letters as a JSON array of
 * etl.dead_letters rows.
 */
void
etl_dead_letters_json(StringInfo buf, EtlRun *run)
{
	dead_letters_json_range(buf, run, 0, list_length(run->dead_letters));
}

/*
 * etl_dead_letters_store inserts the run's dead letters in the current
 * transaction (a succeeding run), ETL_DEAD_LETTERS_CHUNK a statement, each
 * chunk's JSON built and parsed in a memory context reset after it: a run
 * with 100,000 dead letters does not hold them all as one JSON document.
 */
void
etl_dead_letters_store(EtlRun *run)
{
	int n = list_length(run->dead_letters);
	MemoryContext cxt;
	MemoryContext old;

	if (n == 0)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "etl_ext dead letters",
								ALLOCSET_DEFAULT_SIZES);
	for (int from = 0; from < n; from += ETL_DEAD_LETTERS_CHUNK)
	{
		StringInfoData json;
		EtlArgs args;
		EtlUserSwitch sw;

		old = MemoryContextSwitchTo(cxt);
		initStringInfo(&json);
		dead_letters_json_range(&json, run, from,
								Min(n, from + ETL_DEAD_LETTERS_CHUNK));
		etl_args_init(&args);
		etl_args_add(&args, JSONBOID,
					 DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)),
					 false);
		etl_become_extension_owner(&sw);
		etl_spi_exec(ETL_DEAD_LETTERS_INSERT("$1"), &args, SPI_OK_INSERT,
					 InvalidSnapshot);
		etl_restore_user(&sw);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
}
