/*-------------------------------------------------------------------------
 *
 * runlog.c
 *	  Structured log lines of a run's stages, and the events a run
 *	  announces on the etl_events channel.
 *
 *	  Each stage of a run (run, extract, check, load) logs a stage_start and
 *	  a stage_complete line, and a failed attempt an error line, in the
 *	  server log at level LOG, as logfmt text or as one JSON object per line
 *	  (etl.log_format).  etl.log_min_messages filters them by their own
 *	  level: stage lines are info, an attempt that will be retried warning,
 *	  a failure error.
 *
 *	  Events for listeners (LISTEN etl_events) are JSON: run_failed, sent by
 *	  the autonomous writer together with the failure record so that it is
 *	  heard despite the run's rollback, once the pipeline has failed
 *	  alert_after_failures times in a row; check_failed, sent at the commit
 *	  of a run whose warning or quarantine checks failed.
 *
 * IDENTIFICATION
 *	  src/catalog/runlog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "base/spi_util.h"
#include "catalog/runlog.h"
#include "catalog/unrecorded.h"

int etl_log_format = ETL_LOG_TEXT;
int etl_log_min_messages = INFO;

const struct config_enum_entry etl_log_format_options[] = {
	{ "text", ETL_LOG_TEXT, false },
	{ "json", ETL_LOG_JSON, false },
	{ NULL, 0, false }
};

const struct config_enum_entry etl_log_level_options[] = {
	{ "debug", DEBUG1, false },	   { "info", INFO, false },
	{ "warning", WARNING, false }, { "error", ERROR, false },
	{ "off", PANIC, false },	   { NULL, 0, false }
};

/* longest error message an event carries (pg_notify takes < 8000 bytes) */
#define EVENT_MESSAGE_MAX 2000

/* one log line being built */
typedef struct LogLine
{
	StringInfoData buf;
	bool json;
} LogLine;

/*
 * level_name names a log level as the lines show it.
 */
static const char *
level_name(int level)
{
	switch (level)
	{
		case WARNING:
			return "warning";
		case ERROR:
			return "error";
		default:
			return "info";
	}
}

/*
 * append_iso_timestamp appends a timestamp as ISO 8601 in UTC with
 * microseconds, whatever the session's DateStyle and TimeZone.
 */
static void
append_iso_timestamp(StringInfo buf, TimestampTz ts)
{
	pg_time_t t = timestamptz_to_time_t(ts);
	struct pg_tm *tm = pg_gmtime(&t);
	char stamp[64];
	int usec = (int) (ts % USECS_PER_SEC);

	if (usec < 0)
		usec += USECS_PER_SEC;
	pg_strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", tm);
	appendStringInfo(buf, "%s.%06dZ", stamp, usec);
}

/*
 * needs_quotes tells whether a logfmt value must be quoted.
 */
static bool
needs_quotes(const char *s)
{
	if (*s == '\0')
		return true;
	for (; *s; s++)
		if (*s == ' ' || *s == '"' || *s == '=' || *s == '\\' ||
			(unsigned char) *s < 0x20)
			return true;
	return false;
}

/*
 * add_string adds a string field (NULL: null in JSON, left out in text).
 */
static void
add_string(LogLine *l, const char *key, const char *value)
{
	if (l->json)
	{
		appendStringInfo(&l->buf, "%s\"%s\": ", l->buf.len > 1 ? ", " : "",
						 key);
		if (value)
			escape_json(&l->buf, value);
		else
			appendStringInfoString(&l->buf, "null");
		return;
	}
	if (value == NULL)
		return;
	appendStringInfo(&l->buf, "%s%s=", l->buf.len > 0 ? " " : "", key);
	if (!needs_quotes(value))
	{
		appendStringInfoString(&l->buf, value);
		return;
	}
	appendStringInfoChar(&l->buf, '"');
	for (; *value; value++)
	{
		if (*value == '"' || *value == '\\')
			appendStringInfoChar(&l->buf, '\\');
		if (*value == '\n')
			appendStringInfoString(&l->buf, "\\n");
		else
			appendStringInfoChar(&l->buf, *value);
	}
	appendStringInfoChar(&l->buf, '"');
}

/*
 * add_raw adds a field whose text is a number (or null in JSON).
 */
static void
add_raw(LogLine *l, const char *key, const char *value)
{
	if (l->json)
		appendStringInfo(&l->buf, "%s\"%s\": %s", l->buf.len > 1 ? ", " : "",
						 key, value ? value : "null");
	else if (value)
		appendStringInfo(&l->buf, "%s%s=%s", l->buf.len > 0 ? " " : "", key,
						 value);
}

/*
 * begin_line starts a line of run r with its common fields.
 */
static void
begin_line(LogLine *l, EtlRunRecord *r, int level, const char *stage,
		   const char *event)
{
	StringInfoData ts;

	initStringInfo(&l->buf);
	l->json = etl_log_format == ETL_LOG_JSON;
	if (l->json)
		appendStringInfoChar(&l->buf, '{');
	initStringInfo(&ts);
	append_iso_timestamp(&ts, GetCurrentTimestamp());
	add_string(l, "ts", ts.data);
	add_string(l, "level", level_name(level));
	add_string(l, "pipeline", r->pipeline);
	add_raw(l, "run_id", psprintf(INT64_FORMAT, r->run_id));
	add_string(l, "stage", stage);
	add_string(l, "event", event);
}

/*
 * emit_line writes a finished line to the server log, without the
 * statement and context that would follow it there.
 */
static void
emit_line(LogLine *l)
{
	if (l->json)
		appendStringInfoChar(&l->buf, '}');
	ereport(LOG, (errmsg_internal("%s%s", l->json ? "" : "etl: ", l->buf.data),
				  errhidestmt(true), errhidecontext(true)));
	pfree(l->buf.data);
}

/*
 * log_stage logs an event of a stage of run r (rows, ms < 0: not known).
 */
static void
log_stage(EtlRunRecord *r, const char *stage, const char *event, int64 rows,
		  double ms)
{
	LogLine l;

	if (etl_log_min_messages > INFO)
		return;
	begin_line(&l, r, INFO, stage, event);
	add_raw(&l, "rows", rows >= 0 ? psprintf(INT64_FORMAT, rows) : NULL);
	add_raw(&l, "duration_ms", ms >= 0 ? psprintf("%.3f", ms) : NULL);
	add_raw(&l, "attempt", psprintf("%d", r->attempts));
	emit_line(&l);
}

/*
 * etl_log_stage_begin logs the start of a stage of run r; start receives
 * the time.
 */
void
etl_log_stage_begin(EtlRunRecord *r, const char *stage, instr_time *start)
{
	log_stage(r, stage, "stage_start", -1, -1);
	INSTR_TIME_SET_CURRENT(*start);
}

/*
 * etl_log_stage_end logs the completion of a stage of run r that started
 * at start (rows < 0: not known) and returns its milliseconds.
 */
double
etl_log_stage_end(EtlRunRecord *r, const char *stage, instr_time start,
				  int64 rows)
{
	instr_time now;
	double ms;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	ms = INSTR_TIME_GET_MILLISEC(now);
	log_stage(r, stage, "stage_complete", rows, ms);
	return ms;
}

/*
 * etl_log_run_end logs the completion of a successful run.
 */
void
etl_log_run_end(EtlRunRecord *r)
{
	long secs;
	int usecs;

	TimestampDifference(r->started_at, GetCurrentTimestamp(), &secs, &usecs);
	log_stage(r, "run", "stage_complete", r->rows_extracted,
			  secs * 1000.0 + usecs / 1000.0);
}

/*
 * etl_log_skipped logs a run skipped because the pipeline was busy.
 */
void
etl_log_skipped(EtlRunRecord *r)
{
	log_stage(r, "run", "skipped", -1, -1);
}

/*
 * etl_log_error logs a failed attempt of run r at stage (NULL: "run"): a
 * warning when it will be retried, else an error.
 */
void
etl_log_error(EtlRunRecord *r, const char *stage, ErrorData *edata,
			  bool retrying)
{
	LogLine l;
	int level = retrying ? WARNING : ERROR;

	if (etl_log_min_messages > level)
		return;
	begin_line(&l, r, level, stage ? stage : "run", "error");
	add_raw(&l, "rows", NULL);
	add_raw(&l, "duration_ms", NULL);
	add_raw(&l, "attempt", psprintf("%d", r->attempts));
	add_string(&l, "sqlstate", unpack_sql_state(edata->sqlerrcode));
	add_string(&l, "error", edata->message);
	emit_line(&l);
}

/*
 * append_clipped appends a string as JSON, cut to at most max bytes on a
 * character boundary.
 */
static void
append_clipped(StringInfo buf, const char *s, int max)
{
	int len = strlen(s);

	if (len > max)
		s = pnstrdup(s, pg_mbcliplen(s, len, max));
	escape_json(buf, s);
}

/*
 * consecutive_failures counts the failed runs of the pipeline since its
 * last success, as the run's transaction sees them: from etl.run_totals
 * (the failures in a row after the last success, kept by its trigger, so
 * that the count does not read the history), plus those whose record waits
 * in a file (unrecorded.c).
 */
static int64
consecutive_failures(EtlPipeline *p)
{
	EtlArgs args;

	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_spi_exec(
		"SELECT CASE WHEN f.streak_after OPERATOR(pg_catalog.=) s.id"
		" THEN f.streak ELSE 0 END, s.id"
		" FROM (SELECT COALESCE((SELECT t.last_run_id"
		" FROM etl.run_totals t"
		" WHERE t.pipeline_id OPERATOR(pg_catalog.=) $1"
		" AND t.status OPERATOR(pg_catalog.=) 'succeeded'), 0) AS id) s"
		" LEFT JOIN etl.run_totals f"
		" ON f.pipeline_id OPERATOR(pg_catalog.=) $1"
		" AND f.status OPERATOR(pg_catalog.=) 'failed'",
		&args, SPI_OK_SELECT, InvalidSnapshot);
	return etl_spi_int64(0, 0, 0) +
		   etl_unrecorded_count_since(p->id, etl_spi_int64(0, 1, 0));
}

/*
 * append_event_head appends the fields every event has.
 */
static void
append_event_head(StringInfo buf, EtlPipeline *p, EtlRunRecord *r,
				  const char *event)
{
	appendStringInfoString(buf, "{\"event\": ");
	escape_json(buf, event);
	appendStringInfoString(buf, ", \"pipeline\": ");
	escape_json(buf, p->name);
	appendStringInfo(buf,
					 ", \"run_id\": " INT64_FORMAT ", \"at\": ", r->run_id);
	{
		StringInfoData ts;

		initStringInfo(&ts);
		append_iso_timestamp(&ts, GetCurrentTimestamp());
		escape_json(buf, ts.data);
	}
}

/*
 * etl_run_failed_event appends to the autonomous writer's payload the
 * run_failed event of failed run r of pipeline p (", \"event\": {...}"),
 * when the pipeline has now failed alert_after_failures times in a row;
 * failed_checks: the run's failed checks as a JSON array.
 */
void
etl_run_failed_event(StringInfo buf, EtlPipeline *p, EtlRunRecord *r,
					 const char *failed_checks)
{
	int64 failures = consecutive_failures(p) + 1;

	if (failures < p->alert_after_failures)
		return;
	appendStringInfoString(buf, ", \"event\": ");
	append_event_head(buf, p, r, "run_failed");
	appendStringInfoString(buf, ", \"sqlstate\": ");
	escape_json(buf, r->sqlstate);
	appendStringInfoString(buf, ", \"error_class\": ");
	escape_json(buf, r->error_class);
	appendStringInfoString(buf, ", \"error\": ");
	append_clipped(buf, r->error, EVENT_MESSAGE_MAX);
	appendStringInfo(buf,
					 ", \"attempts\": %d, \"rows_rejected\": " INT64_FORMAT
					 ", \"consecutive_failures\": " INT64_FORMAT
					 ", \"alert_after_failures\": %d, \"failed_checks\": ",
					 r->attempts, r->rows_rejected, failures,
					 p->alert_after_failures);
	appendStringInfoString(buf, failed_checks);
	appendStringInfoChar(buf, '}');
}

/*
 * etl_notify_failed_checks sends, at the commit of successful run r of
 * pipeline p, a check_failed event listing its failed (warning or
 * quarantine) checks, failed_checks (a JSON array).
 */
void
etl_notify_failed_checks(EtlPipeline *p, EtlRunRecord *r,
						 const char *failed_checks)
{
	StringInfoData buf;
	EtlArgs args;

	initStringInfo(&buf);
	append_event_head(&buf, p, r, "check_failed");
	appendStringInfo(&buf, ", \"failed_checks\": %s}", failed_checks);

	etl_args_init(&args);
	etl_args_add_text(&args, ETL_EVENTS_CHANNEL);
	etl_args_add_text(&args, buf.data);
	etl_spi_exec("SELECT pg_catalog.pg_notify($1, $2)", &args, SPI_OK_SELECT,
				 InvalidSnapshot);
}
