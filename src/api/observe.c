/*-------------------------------------------------------------------------
 *
 * observe.c
 *	  What etl.status and the metrics show beyond the catalogs: the lag of
 *	  a pipeline, read so that no pipeline can fail or stall the reader.
 *
 *	  The lag reads the newest value of the watermark column from the
 *	  source, which may be a view (or a table with policies) of the pipeline
 *	  owner: reading it runs the owner's code.  So it is read as the owner
 *	  inside a security-restricted operation, as a run does, never with the
 *	  rights of whoever looks at etl.status (a superuser, a monitoring role,
 *	  a pg_cron job).
 *
 *	  Each pipeline's lag is fenced: it is computed in a subtransaction of
 *	  its own that is always rolled back (nothing the owner's code SETs,
 *	  writes, creates or locks outlives it), under a timer of etl.lag_timeout
 *	  that also ends a wait for a lock on the source.  Any error, the
 *	  timeout, an overflow or a value that is not finite gives a NULL lag
 *	  and a LOG line naming the pipeline; only a cancel of the reader's own
 *	  statement (pg_cancel_backend, its statement_timeout) goes through.
 *
 *	  The lags of one statement share an EtlLagCache: the newest value of a
 *	  source column is read once per (owner, relation, column) however many
 *	  pipelines read it, and a read that failed is not tried again.
 *
 * IDENTIFICATION
 *	  src/api/observe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "api/observe.h"
#include "base/entry.h"
#include "base/security.h"
#include "base/settings.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "modes/mode.h"
#include "modes/watermark.h"
#include "sql/columns.h"
#include "sql/names.h"

PG_FUNCTION_INFO_V1(etl_lag);

/* after etl.lag_timeout, the cancel is repeated this often (ms) */
#define LAG_CANCEL_REPEAT_MS 100

/* a read of the newest value of one source column, as one owner */
typedef struct ProbeKey
{
	Oid owner;
	Oid relid;
	AttrNumber attnum;
} ProbeKey;

typedef enum ProbeState
{
	PROBE_RUNNING,
	PROBE_DONE,
	PROBE_FAILED
} ProbeState;

typedef struct Probe
{
	ProbeKey key;
	ProbeState state;
	bool isnull;   /* PROBE_DONE: the source has no value */
	Datum max;	   /* PROBE_DONE: the newest value, in the cache's context */
	int sqlstate;  /* PROBE_FAILED: why */
	char *message; /* PROBE_FAILED: why, in the cache's context */
} Probe;

struct EtlLagCache
{
	MemoryContext cxt;
	HTAB *probes;		   /* ProbeKey -> Probe */
	Probe *current;		   /* the probe being read, until it is done */
	int lookups;		   /* pipelines looked up by name so far */
	EtlPipeline **by_name; /* every pipeline, sorted by name (strcmp) */
	int npipelines;
};

/* the arguments of lag_body */
typedef struct LagBody
{
	EtlLagCache *c;
	EtlPipeline *p;
	EtlLag *lag;
	bool found; /* lag was set */
} LagBody;

/* the timer of etl.lag_timeout, registered on first use */
static bool lag_timer_registered = false;
static TimeoutId lag_timer_id;
static bool lag_timer_armed = false;
static volatile sig_atomic_t lag_timer_fired = false;

/*
 * etl_lag_cache_create returns an empty lag cache living in cxt.
 */
EtlLagCache *
etl_lag_cache_create(MemoryContext cxt)
{
	EtlLagCache *c = MemoryContextAllocZero(cxt, sizeof(EtlLagCache));
	HASHCTL ctl;

	c->cxt = cxt;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(ProbeKey);
	ctl.entrysize = sizeof(Probe);
	ctl.hcxt = cxt;
	c->probes = hash_create("etl_ext lag probes", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return c;
}

/*
 * lag_timer_handler runs in the SIGALRM handler when a lag has taken
 * etl.lag_timeout: it asks for a cancel, as statement_timeout does, and
 * notes that the cancel is the timer's.
 */
static void
lag_timer_handler(void)
{
	lag_timer_fired = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/*
 * lag_timer_arm starts the timer of one lag: it fires etl.lag_timeout from
 * now, then again every LAG_CANCEL_REPEAT_MS (owner code that catches one
 * cancel gets the next).  No timer when etl.lag_timeout is 0.
 */
static void
lag_timer_arm(void)
{
	lag_timer_fired = false;
	lag_timer_armed = etl_lag_timeout > 0;
	if (!lag_timer_armed)
		return;
	if (!lag_timer_registered)
	{
		lag_timer_id = RegisterTimeout(USER_TIMEOUT, lag_timer_handler);
		lag_timer_registered = true;
	}
	enable_timeout_every(
		lag_timer_id,
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), etl_lag_timeout),
		LAG_CANCEL_REPEAT_MS);
}

/*
 * lag_timer_disarm stops the timer and returns whether it fired.  A cancel
 * it asked for that nothing has acted on yet is withdrawn, so that it
 * cannot cancel what the reader runs next.
 */
static bool
lag_timer_disarm(void)
{
	bool fired;

	if (!lag_timer_armed)
		return false;
	disable_timeout(lag_timer_id, false);
	lag_timer_armed = false;
	fired = lag_timer_fired;
	lag_timer_fired = false;
	if (fired)
		QueryCancelPending = false;
	return fired;
}

/*
 * may_see_lag tells whether the current user may see a pipeline's lag: it
 * has the privileges of the pipeline's owner, or may read the source or its
 * watermark column.  Only ACLs are looked at; nothing is executed.
 */
static bool
may_see_lag(EtlPipeline *p, Oid source, AttrNumber attnum)
{
	Oid user = GetUserId();

	return has_privs_of_role(user, p->owner) ||
		   pg_class_aclcheck(source, user, ACL_SELECT) == ACLCHECK_OK ||
		   pg_attribute_aclcheck(source, attnum, user, ACL_SELECT) ==
			   ACLCHECK_OK;
}

/*
 * probe_max returns the newest value of a source column as the pipeline
 * owner would read it, read once per cache: as the owner, in a
 * security-restricted operation.  A probe that failed before is raised
 * again.  Runs inside the fence of lag_fenced().
 */
static Probe *
probe_max(EtlLagCache *c, EtlPipeline *p, Oid source, AttrNumber attnum,
		  Oid type)
{
	ProbeKey key;
	Probe *probe;
	bool found;
	EtlUserSwitch sw = { 0 };
	Datum d;
	int16 typlen;
	bool typbyval;

	memset(&key, 0, sizeof(key));
	key.owner = p->owner;
	key.relid = source;
	key.attnum = attnum;
	probe = hash_search(c->probes, &key, HASH_ENTER, &found);
	if (found && probe->state == PROBE_FAILED)
		ereport(ERROR, (errcode(probe->sqlstate),
						errmsg_internal("%s", probe->message)));
	if (found && probe->state == PROBE_DONE)
		return probe;

	probe->state = PROBE_RUNNING;
	c->current = probe;
	etl_become_owner(&sw, p->owner);
	etl_spi_exec(psprintf("SELECT pg_catalog.max(%s) FROM %s",
						  quote_identifier(p->watermark_column),
						  etl_relation_sql(source)),
				 NULL, SPI_OK_SELECT, InvalidSnapshot);
	d = etl_spi_datum(0, 0, &probe->isnull);
	if (!probe->isnull)
	{
		MemoryContext old = MemoryContextSwitchTo(c->cxt);

		get_typlenbyval(type, &typlen, &typbyval);
		probe->max = datumCopy(d, typbyval, typlen);
		MemoryContextSwitchTo(old);
	}
	etl_restore_user(&sw);
	probe->state = PROBE_DONE;
	c->current = NULL;
	return probe;
}

/*
 * not_finite raises 22003 for a lag that is not a finite number (a source
 * value of NaN or infinity).
 */
static void
not_finite(EtlPipeline *p)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("lag of pipeline \"%s\" is not a finite number", p->name),
			 errdetail("The newest value of its watermark column is NaN or "
					   "infinite.")));
}

/*
 * greater_of_zero returns a numeric, or 0 when it is negative; raises for
 * NaN and infinity.
 */
static Datum
greater_of_zero(EtlPipeline *p, Datum num)
{
	Numeric n = DatumGetNumeric(num);

	if (numeric_is_nan(n) || numeric_is_inf(n))
		not_finite(p);
	if (DatumGetInt32(DirectFunctionCall2(
			numeric_cmp, num, NumericGetDatum(int64_to_numeric(0)))) < 0)
		return NumericGetDatum(int64_to_numeric(0));
	return num;
}

/*
 * lag_difference sets lag to GREATEST(max - watermark, 0) in the type the
 * difference has: an interval for timestamps, a bigint for integers (the
 * subtraction in the column's own type, which raises 22003 on overflow), a
 * numeric for numeric and pg_lsn.  Raises what the subtraction raises
 * (22008 for infinite timestamps).
 */
static void
lag_difference(EtlPipeline *p, Oid type, Datum max, Datum wm, EtlLag *lag)
{
	int64 n;

	switch (type)
	{
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
		{
			Interval *zero = palloc0(sizeof(Interval));
			Datum d = DirectFunctionCall2(timestamp_mi, max, wm);

			if (DatumGetInt32(DirectFunctionCall2(
					interval_cmp, d, IntervalPGetDatum(zero))) < 0)
				d = IntervalPGetDatum(zero);
			lag->type = INTERVALOID;
			lag->value = d;
			return;
		}
		case INT2OID:
			n = DatumGetInt16(DirectFunctionCall2(int2mi, max, wm));
			break;
		case INT4OID:
			n = DatumGetInt32(DirectFunctionCall2(int4mi, max, wm));
			break;
		case INT8OID:
			n = DatumGetInt64(DirectFunctionCall2(int8mi, max, wm));
			break;
		case NUMERICOID:
			lag->type = NUMERICOID;
			lag->value =
				greater_of_zero(p, DirectFunctionCall2(numeric_sub, max, wm));
			return;
		case PG_LSNOID:
			lag->type = NUMERICOID;
			lag->value =
				greater_of_zero(p, DirectFunctionCall2(pg_lsn_mi, max, wm));
			return;
		default:
			elog(ERROR, "etl_ext: no lag for watermark type %u", type);
	}
	lag->type = INT8OID;
	lag->value = Int64GetDatum(Max(n, 0));
}

/*
 * xid_lag sets lag to the transaction ids assigned since the snapshot of
 * the previous run (mode xid): nothing of the source is read.
 */
static void
xid_lag(EtlPipeline *p, EtlLag *lag)
{
	EtlArgs args;
	char *text;

	etl_args_init(&args);
	etl_args_add_text(&args, etl_xid_watermark_parse(p, p->watermark));
	etl_spi_exec("SELECT GREATEST(pg_catalog.pg_snapshot_xmax("
				 "pg_catalog.pg_current_snapshot())::pg_catalog.text::"
				 "pg_catalog.numeric OPERATOR(pg_catalog.-) "
				 "pg_catalog.pg_snapshot_xmax("
				 "$1::pg_catalog.pg_snapshot)::pg_catalog.text::"
				 "pg_catalog.numeric, 0)",
				 &args, SPI_OK_SELECT, InvalidSnapshot);
	text = etl_spi_text(0, 0);
	lag->type = NUMERICOID;
	lag->value =
		DirectFunctionCall3(numeric_in, CStringGetDatum(text),
							ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * lag_body computes the lag of a pipeline (the body of lag_fenced()).  The
 * source is looked up with the caller's rights and lock (a lock wait runs
 * under the timer); b->found stays false when the caller may not see the
 * lag, the watermark column no longer suits the mode, or a mode xid
 * watermark was taken in another cluster.  An empty source has a lag of 0.
 */
static void
lag_body(LagBody *b)
{
	EtlPipeline *p = b->p;
	EtlLag *lag = b->lag;
	Oid source;
	AttrNumber attnum;
	Oid type;
	MemoryContext old;

	source = etl_resolve_relation(p->source, "source", true);
	if (!OidIsValid(source))
		return;
	attnum = get_attnum(source, p->watermark_column);
	if (attnum == InvalidAttrNumber || !may_see_lag(p, source, attnum))
		return;
	type = get_atttype(source, attnum);
	if (!etl_watermark_type_ok(p->mode, type))
		return;

	if (etl_mode_ops(p->mode)->watermark_is_snapshot)
	{
		/* another cluster's snapshot (a restore): unknown until rebased */
		if (!etl_xid_watermark_is_local(p->watermark))
			return;
		xid_lag(p, lag);
	}
	else
	{
		Probe *probe = probe_max(b->c, p, source, attnum, type);
		Datum wm = etl_watermark_datum(p, p->watermark, type, -1);

		/* GREATEST(NULL - watermark, 0) is 0: nothing newer */
		lag_difference(p, type, probe->isnull ? wm : probe->max, wm, lag);
	}

	old = MemoryContextSwitchTo(b->c->cxt);
	if (lag->type == INTERVALOID)
		lag->value = datumCopy(lag->value, false, sizeof(Interval));
	else if (lag->type == NUMERICOID)
		lag->value = datumCopy(lag->value, false, -1);
	MemoryContextSwitchTo(old);
	b->found = true;
}

/*
 * is_readers_cancel tells whether an error is a cancel of the reader's own
 * statement (pg_cancel_backend, its statement_timeout), raised by
 * PostgreSQL itself rather than by the owner's code, and not by the lag's
 * timer.
 */
static bool
is_readers_cancel(ErrorData *edata, bool timer_fired)
{
	return !timer_fired && edata->sqlerrcode == ERRCODE_QUERY_CANCELED &&
		   edata->funcname != NULL &&
		   strcmp(edata->funcname, "ProcessInterrupts") == 0;
}

/*
 * log_unknown_lag writes the LOG line of a lag that could not be read, with
 * the SQLSTATE of what went wrong.
 */
static void
log_unknown_lag(EtlPipeline *p, int sqlstate, const char *why)
{
	ereport(LOG,
			(errcode(sqlstate),
			 errmsg("lag of pipeline \"%s\" is unknown: %s", p->name, why)));
}

/*
 * lag_fenced computes the lag of a pipeline in a subtransaction that is
 * always rolled back, under the timer of etl.lag_timeout.  Returns whether
 * lag was set; an error or the timeout leaves it unset and writes a LOG
 * line, except a cancel of the reader's statement, which is raised again.
 */
static bool
lag_fenced(EtlLagCache *c, EtlPipeline *p, EtlLag *lag)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	LagBody body = { c, p, lag, false };
	ErrorData *volatile edata = NULL;
	volatile bool fired = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		lag_timer_arm();
		lag_body(&body);
		fired = lag_timer_disarm();
	}
	PG_CATCH();
	{
		fired = lag_timer_disarm();
		MemoryContextSwitchTo(c->cxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;

	if (edata != NULL && is_readers_cancel(edata, fired))
		ReThrowError(edata);
	if (fired)
		edata = NULL;
	if (c->current != NULL)
	{
		/* the probe itself failed: the other pipelines reading it too */
		c->current->state = PROBE_FAILED;
		c->current->sqlstate =
			edata ? edata->sqlerrcode : ERRCODE_QUERY_CANCELED;
		c->current->message =
			edata ? edata->message
				  : MemoryContextStrdup(
						c->cxt,
						psprintf("reading it took longer than etl.lag_timeout "
								 "(%d ms)",
								 etl_lag_timeout));
		c->current = NULL;
	}
	if (fired)
	{
		log_unknown_lag(p, ERRCODE_QUERY_CANCELED,
						psprintf("reading it took longer than etl.lag_timeout "
								 "(%d ms)",
								 etl_lag_timeout));
		return false;
	}
	if (edata != NULL)
	{
		log_unknown_lag(p, edata->sqlerrcode, edata->message);
		return false;
	}
	return body.found;
}

/*
 * etl_pipeline_lag sets lag to the lag of a pipeline and returns true, or
 * returns false when it has none to show: before the first run, when its
 * owner is gone, when the reader may not see it, or when it could not be
 * read (an error or etl.lag_timeout, logged).  The caller has entered with
 * the monitoring settings (ETL_ENTRY_MONITOR of base/entry.h); the value
 * lives in the cache's memory context.
 */
bool
etl_pipeline_lag(EtlLagCache *cache, EtlPipeline *p, EtlLag *lag)
{
	if (p->watermark == NULL || p->watermark_column == NULL ||
		!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p->owner)))
		return false;
	return lag_fenced(cache, p, lag);
}

/*
 * etl_lag_text returns a lag as etl.status shows it (the type's output
 * under the pinned IntervalStyle).
 */
char *
etl_lag_text(EtlLag *lag)
{
	switch (lag->type)
	{
		case INTERVALOID:
			return DatumGetCString(
				DirectFunctionCall1(interval_out, lag->value));
		case INT8OID:
			return psprintf(INT64_FORMAT, DatumGetInt64(lag->value));
		default:
			return DatumGetCString(
				DirectFunctionCall1(numeric_out, lag->value));
	}
}

/*
 * etl_lag_seconds returns an interval lag in seconds, as EXTRACT(epoch
 * FROM lag) gives them.
 */
double
etl_lag_seconds(EtlLag *lag)
{
	Datum epoch;

	Assert(lag->type == INTERVALOID);
	epoch = DirectFunctionCall2(extract_interval, CStringGetTextDatum("epoch"),
								lag->value);
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, epoch));
}

/*
 * compare_names orders pipelines by name, bytewise (for bsearch).
 */
static int
compare_names(const void *a, const void *b)
{
	return strcmp((*(EtlPipeline *const *) a)->name,
				  (*(EtlPipeline *const *) b)->name);
}

/*
 * lookup_pipeline returns the pipeline of that name, or NULL.  The first
 * lookup of a cache reads that one pipeline; a second one reads them all
 * (the reader is going through many: a row of etl.status each), then
 * looks them up in memory.
 */
static EtlPipeline *
lookup_pipeline(EtlLagCache *c, const char *name)
{
	MemoryContext old;
	EtlPipeline key;
	EtlPipeline *keyp = &key;
	EtlPipeline **found;

	if (c->lookups++ == 0)
		return etl_catalog_load(name, true, InvalidSnapshot);
	if (c->by_name == NULL)
	{
		List *all;
		ListCell *lc;
		int i = 0;

		old = MemoryContextSwitchTo(c->cxt);
		all = etl_catalog_load_all();
		MemoryContextSwitchTo(c->cxt);
		c->npipelines = list_length(all);
		c->by_name = palloc(sizeof(EtlPipeline *) * Max(c->npipelines, 1));
		foreach (lc, all)
			c->by_name[i++] = lfirst(lc);
		qsort(c->by_name, c->npipelines, sizeof(EtlPipeline *), compare_names);
		MemoryContextSwitchTo(old);
	}
	key.name = (char *) name;
	found = bsearch(&keyp, c->by_name, c->npipelines, sizeof(EtlPipeline *),
					compare_names);
	return found ? *found : NULL;
}

/*
 * etl_lag(pipeline text) RETURNS text
 *
 * The distance from a pipeline's watermark to the newest value of its
 * watermark column in the source: an interval in mode timestamp (and cdc by
 * a timestamp), a number in modes serial and cdc, the transaction ids
 * assigned since the previous run's snapshot in mode xid, 0 when caught
 * up.  Read with the rights of the pipeline owner in a security-restricted
 * operation, fenced (see the header).  NULL before the first run, for an
 * unknown pipeline, when the caller may not read the source (and is not a
 * member of the owner's role), and when it could not be read: any error,
 * etl.lag_timeout, a lag past bigint or not finite (logged).  The calls of
 * one statement (a row of etl.status each) share what they read.
 */
Datum
etl_lag(PG_FUNCTION_ARGS)
{
	EtlLagCache *c = fcinfo->flinfo->fn_extra;
	EtlPipeline *p;
	EtlLag lag;
	EtlEntry e;
	text *result = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (c == NULL)
	{
		c = etl_lag_cache_create(fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = c;
	}

	etl_entry_begin(&e, ETL_ENTRY_MONITOR);
	p = lookup_pipeline(c, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (p != NULL && etl_pipeline_lag(c, p, &lag))
		result = etl_entry_text(&e, etl_lag_text(&lag));
	etl_entry_end(&e);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
