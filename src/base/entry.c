/*-------------------------------------------------------------------------
 *
 * entry.c
 *	  The entry protocol of the SQL-callable functions of etl_ext.
 *
 *	  Every SQL-callable function that runs SQL does it between
 *	  etl_entry_begin() and etl_entry_end():
 *
 *		EtlEntry	e;
 *
 *		etl_entry_begin_write(&e, ETL_ENTRY_WRITE, "etl_schedule",
 *							  etl_pipeline_object(name));
 *		... SPI statements under the pinned settings ...
 *		result = etl_entry_text(&e, value);
 *		etl_entry_end(&e);
 *
 *	  Begin refuses a writer on a hot standby (standby.c), opens the SPI
 *	  connection, then opens the GUC nest level of the pinned settings with
 *	  the fence up (security.c, fence.c); end rolls that level back, so the
 *	  caller's settings are exactly what they were whatever the owner's code
 *	  set, and closes the connection, which frees what was allocated in
 *	  between.  Results that outlive the call are made in the caller's
 *	  memory context (etl_entry_text, etl_entry_tuple, etl_entry_to_caller).
 *
 *	  An error needs no cleanup: transaction or subtransaction abort ends
 *	  the SPI connection and pops the GUC nest level (the fence with it).
 *
 *	  SPI_connect() appears nowhere else but in the autonomous writer
 *	  (catalog/autonomous.c), a background worker with a transaction of its
 *	  own.
 *
 * IDENTIFICATION
 *	  src/base/entry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/standby.h"

/*
 * entry_begin is etl_entry_begin() once e->function and e->object are set:
 * the refusal on a standby for a writer, the SPI connection, the pinned
 * settings unless the flags defer or forgo them.
 */
static void
entry_begin(EtlEntry *e, int flags)
{
	if (flags & ETL_ENTRY_WRITE)
		etl_refuse_on_standby(e->function, e->object);
	e->callercxt = CurrentMemoryContext;
	e->flags = flags;
	e->nestlevel = -1;
	e->connected = false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	e->connected = true;
	if (!(flags & (ETL_ENTRY_CALLER_PATH | ETL_ENTRY_NESTED)))
		etl_entry_pin(e);
}

/*
 * etl_entry_begin starts a call of an entry point that does not write:
 * flags say what besides the SPI connection (ETL_ENTRY_*; writers use
 * etl_entry_begin_write()).  With ETL_ENTRY_CALLER_PATH the settings are
 * pinned only by etl_entry_pin(), so that names the caller gave resolve
 * with the caller's search_path first; with ETL_ENTRY_NESTED they are not
 * touched at all (a function called from the SQL of a run, possibly in a
 * parallel worker, where no setting may change).
 */
void
etl_entry_begin(EtlEntry *e, int flags)
{
	if (flags & ETL_ENTRY_WRITE)
		elog(ERROR, "etl_ext: a writer enters with etl_entry_begin_write");
	e->function = e->object = NULL;
	entry_begin(e, flags);
}

/*
 * etl_entry_begin_write is etl_entry_begin() for an entry point that
 * writes: on a hot standby it first raises 25006 naming function (its SQL
 * name) and object (`pipeline "orders"`, `table public.orders`), before
 * anything is read or locked.
 */
void
etl_entry_begin_write(EtlEntry *e, int flags, const char *function,
					  const char *object)
{
	e->function = function;
	e->object = object;
	entry_begin(e, flags | ETL_ENTRY_WRITE);
}

/*
 * etl_entry_pin opens the GUC nest level of the pinned settings with the
 * fence up (etl_pin_settings), plus no JIT for ETL_ENTRY_MONITOR.  Called
 * by etl_entry_begin(), or by the entry point itself after it resolved the
 * caller's names (ETL_ENTRY_CALLER_PATH).  Once per call.
 */
void
etl_entry_pin(EtlEntry *e)
{
	if (e->nestlevel >= 0)
		elog(ERROR, "etl_ext: settings pinned twice in one call");
	e->nestlevel = etl_pin_settings();
	if (e->flags & ETL_ENTRY_MONITOR)
		(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * etl_entry_end ends a call that did not fail: every setting changed since
 * the settings were pinned, by etl_ext or by the owner's code, SET or SET
 * LOCAL, is rolled back and the fence comes down (etl_unpin_settings);
 * then the SPI connection closes, freeing what was allocated since
 * etl_entry_begin() outside the caller's memory context, and the caller's
 * context is current again.
 */
void
etl_entry_end(EtlEntry *e)
{
	if (e->nestlevel >= 0)
		etl_unpin_settings(e->nestlevel);
	e->nestlevel = -1;
	if (e->connected && SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	e->connected = false;
}

/*
 * etl_entry_text returns s as a text in the caller's memory context, which
 * outlives etl_entry_end(); NULL for NULL.
 */
text *
etl_entry_text(EtlEntry *e, const char *s)
{
	MemoryContext old;
	text *result;

	if (s == NULL)
		return NULL;
	old = MemoryContextSwitchTo(e->callercxt);
	result = cstring_to_text(s);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * etl_entry_tuple forms a row of tupdesc (blessed here) from values and
 * nulls in the caller's memory context and returns it as a composite
 * Datum that outlives etl_entry_end().
 */
Datum
etl_entry_tuple(EtlEntry *e, TupleDesc tupdesc, Datum *values, bool *nulls)
{
	MemoryContext old = MemoryContextSwitchTo(e->callercxt);
	Datum result;

	tupdesc = BlessTupleDesc(tupdesc);
	result = HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * etl_entry_to_caller switches to the caller's memory context, for a result
 * of another kind, and returns the context that was current (switch back
 * to it with MemoryContextSwitchTo).
 */
MemoryContext
etl_entry_to_caller(EtlEntry *e)
{
	return MemoryContextSwitchTo(e->callercxt);
}
