/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  etl_metrics() and etl_metric_rows(): the samples of every pipeline,
 *	  built from a handful of catalog queries whatever the number of
 *	  pipelines, and written as the Prometheus text exposition format 0.0.4,
 *	  as JSON, or as rows.
 *
 *	  Counters come from etl.run_totals and etl.check_totals (kept by
 *	  triggers, so their cost does not grow with the history); skipped runs
 *	  and pending dead letters are counted from their indexes as the
 *	  extension owner (counts only, the same for every reader, whom row
 *	  level security would show only their own).  The lag of each timestamp
 *	  pipeline is read fenced, as etl.status reads it (observe.c).  The
 *	  statements run with JIT off: compiling them would cost more than
 *	  running them.
 *
 *	  The output is ordered: the families by name, the samples of a family
 *	  by their labels as jsonb orders them (text format) or as their JSON
 *	  text sorts (JSON format), strings compared under the database's
 *	  collation.
 *
 * IDENTIFICATION
 *	  src/api/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "api/observe.h"
#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "catalog/unrecorded.h"
#include "modes/mode.h"

PG_FUNCTION_INFO_V1(etl_metrics);
PG_FUNCTION_INFO_V1(etl_metric_rows);

/* the families, in the order of their names */
typedef enum FamilyId
{
	F_CHECK_FAILURES,
	F_DEAD_LETTERS,
	F_LAST_RUN_DURATION,
	F_LAST_SUCCESS,
	F_ROWS,
	F_RUN_DURATION,
	F_RUNS,
	F_UNRECORDED,
	F_LAG,
	F_COUNT
} FamilyId;

static const struct
{
	const char *name;
	const char *type;
	const char *help;
} family_defs[F_COUNT] = {
	[F_CHECK_FAILURES] = { "etl_check_failures_total", "counter",
						   "Failed quality checks of each pipeline, by "
						   "check." },
	[F_DEAD_LETTERS] = { "etl_dead_letters_pending", "gauge",
						 "Dead letters of each pipeline waiting for a "
						 "decision." },
	[F_LAST_RUN_DURATION] = { "etl_last_run_duration_seconds", "gauge",
							  "Duration of the last run of each pipeline." },
	[F_LAST_SUCCESS] = { "etl_last_success_timestamp_seconds", "gauge",
						 "When the last successful run of each pipeline "
						 "finished (Unix time)." },
	[F_ROWS] = { "etl_rows_total", "counter",
				 "Rows handled by each pipeline, by kind." },
	[F_RUN_DURATION] = { "etl_run_duration_seconds", "histogram",
						 "Duration of the runs of each pipeline." },
	[F_RUNS] = { "etl_runs_total", "counter",
				 "Runs of each pipeline, by outcome." },
	[F_UNRECORDED] = { "etl_unrecorded_failures", "gauge",
					   "Failed runs of each pipeline whose record is not "
					   "written yet (no background worker was free)." },
	[F_LAG] = { "etl_watermark_lag_seconds", "gauge",
				"How far the watermark of each timestamp pipeline is behind "
				"the newest source row." },
};

/* the row kinds of etl_rows_total, in the order of their names */
#define ROW_KINDS 6
static const char *const row_kinds[ROW_KINDS] = { "deleted",   "extracted",
												  "inserted",  "rejected",
												  "unchanged", "updated" };

/* one sample: labels pipeline, an optional second one, histogram parts */
typedef struct Sample
{
	const char *pipeline;
	const char *key2; /* status, kind or check: sorts before pipeline */
	const char *val2;
	const char *series; /* histograms: _bucket, _count or _sum */
	const char *le;		/* histogram buckets: the bound as text */
	double value;
	bool isnull;
	char *labels; /* the labels as jsonb prints them (JSON format) */
	int labels_len;
} Sample;

typedef struct Family
{
	FamilyId id;
	Sample *samples;
	int n;
	int cap;
} Family;

/* what the catalogs say about one pipeline */
typedef struct PipelineTotals
{
	EtlPipeline *p;
	bool has_totals;  /* a row in etl.run_totals */
	bool has_runs[2]; /* [0] failed, [1] succeeded */
	double runs[2];
	double rows[ROW_KINDS];
	int64 *buckets;
	double runs_sum;
	double seconds_sum;
	int64 last_run_id;
	double last_seconds;
	bool success_at_null;
	double success_at;
	int64 skipped;
	int64 pending_dead_letters;
	int64 unrecorded;
} PipelineTotals;

typedef struct Metrics
{
	int npipelines;
	PipelineTotals *pipelines; /* in the order of their names */
	HTAB *by_id;			   /* pipeline_id -> index */
	int nbuckets;
	char **bucket_texts; /* the bounds of the histogram, as text */
	List *checks;		 /* CheckTotal * */
	Family families[F_COUNT];
} Metrics;

typedef struct CheckTotal
{
	int64 pipeline_id;
	char *name;
	double failures;
} CheckTotal;

typedef struct IdEntry
{
	int64 id;
	int index;
} IdEntry;

/*
 * collate compares two strings as the database's default collation does
 * (as jsonb compares its strings and ORDER BY a text column).
 */
static int
collate(const char *a, const char *b)
{
	return varstr_cmp(a, strlen(a), b, strlen(b), DEFAULT_COLLATION_OID);
}

/*
 * find_pipeline returns the totals of a pipeline by id, or NULL when it is
 * not (or no longer) in etl.pipelines.
 */
static PipelineTotals *
find_pipeline(Metrics *m, int64 id)
{
	IdEntry *e = hash_search(m->by_id, &id, HASH_FIND, NULL);

	return e ? &m->pipelines[e->index] : NULL;
}

/*
 * read_pipelines reads every pipeline (ordered by name) and the duration
 * buckets of the histogram.
 */
static void
read_pipelines(Metrics *m, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	List *all = etl_catalog_load_all();
	HASHCTL ctl;
	ListCell *lc;
	int i = 0;

	MemoryContextSwitchTo(cxt);
	m->npipelines = list_length(all);
	m->pipelines = palloc0(sizeof(PipelineTotals) * Max(m->npipelines, 1));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(IdEntry);
	ctl.hcxt = cxt;
	m->by_id = hash_create("etl_ext metrics pipelines", 1024, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	foreach (lc, all)
	{
		EtlPipeline *p = lfirst(lc);
		IdEntry *e = hash_search(m->by_id, &p->id, HASH_ENTER, NULL);

		e->index = i;
		m->pipelines[i++].p = p;
	}

	etl_spi_exec("SELECT b::pg_catalog.text"
				 " FROM pg_catalog.unnest(etl_internal.etl_duration_buckets())"
				 " WITH ORDINALITY AS u(b, i) ORDER BY i",
				 NULL, SPI_OK_SELECT, InvalidSnapshot);
	MemoryContextSwitchTo(cxt);
	m->nbuckets = SPI_processed;
	m->bucket_texts = palloc(sizeof(char *) * Max(m->nbuckets, 1));
	for (i = 0; i < m->nbuckets; i++)
	{
		m->bucket_texts[i] = etl_spi_text(i, 0);
	}
	for (i = 0; i < m->npipelines; i++)
		m->pipelines[i].buckets = palloc0(sizeof(int64) * Max(m->nbuckets, 1));
	MemoryContextSwitchTo(old);
}

/*
 * add_buckets adds a bigint[] of cumulative bucket counts to a pipeline's.
 */
static void
add_buckets(Metrics *m, PipelineTotals *t, Datum arr)
{
	Datum *elems;
	bool *nulls;
	int n;

	deconstruct_array(DatumGetArrayTypeP(arr), INT8OID, 8, FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (int i = 0; i < n && i < m->nbuckets; i++)
		if (!nulls[i])
			t->buckets[i] += DatumGetInt64(elems[i]);
}

/*
 * read_run_totals reads etl.run_totals: runs, durations, row counts and the
 * last run of each pipeline and outcome.  Row counts are summed as numeric
 * before they become double precision.
 */
static void
read_run_totals(Metrics *m)
{
	uint64 n;

	n = etl_spi_exec(
		"SELECT t.pipeline_id, t.status, t.runs::pg_catalog.float8,"
		" t.seconds, t.buckets, t.last_run_id, t.last_seconds,"
		" EXTRACT(epoch FROM t.last_finished_at)::pg_catalog.float8,"
		" (pg_catalog.sum(t.rows_deleted) OVER w)::pg_catalog.float8,"
		" (pg_catalog.sum(t.rows_extracted) OVER w)::pg_catalog.float8,"
		" (pg_catalog.sum(t.rows_inserted) OVER w)::pg_catalog.float8,"
		" (pg_catalog.sum(t.rows_rejected) OVER w)::pg_catalog.float8,"
		" (pg_catalog.sum(t.rows_unchanged) OVER w)::pg_catalog.float8,"
		" (pg_catalog.sum(t.rows_updated) OVER w)::pg_catalog.float8"
		" FROM etl.run_totals t"
		" WINDOW w AS (PARTITION BY t.pipeline_id)"
		" ORDER BY t.pipeline_id, t.status",
		NULL, SPI_OK_SELECT, InvalidSnapshot);
	for (uint64 r = 0; r < n; r++)
	{
		PipelineTotals *t = find_pipeline(m, etl_spi_int64(r, 0, 0));
		char *status;
		int64 last;
		int s;

		if (t == NULL)
			continue;
		status = etl_spi_text(r, 1);
		s = strcmp(status, "succeeded") == 0;
		if (!s && strcmp(status, "failed") != 0)
			continue;
		t->has_totals = true;
		t->has_runs[s] = true;
		t->runs[s] = etl_spi_float8(r, 2, 0);
		t->runs_sum += t->runs[s];
		t->seconds_sum += etl_spi_float8(r, 3, 0);
		add_buckets(m, t, etl_spi_datum(r, 4, &(bool){ false }));
		last = etl_spi_int64(r, 5, 0);
		if (last > t->last_run_id || t->last_run_id == 0)
		{
			t->last_run_id = last;
			t->last_seconds = etl_spi_float8(r, 6, 0);
		}
		if (s)
		{
			t->success_at_null = etl_spi_isnull(r, 7);
			t->success_at = etl_spi_float8(r, 7, 0);
		}
		for (int k = 0; k < ROW_KINDS; k++)
			t->rows[k] = etl_spi_float8(r, 8 + k, 0);
	}
}

/*
 * read_counts reads, as the extension owner (row level security would
 * hide other owners' rows), the skipped runs and the pending dead letters
 * of each pipeline, then the failures of each check.
 */
static void
read_counts(Metrics *m, MemoryContext cxt)
{
	EtlUserSwitch sw;
	uint64 n;

	etl_become_extension_owner(&sw);
	n = etl_spi_exec(
		"SELECT r.pipeline_id, pg_catalog.count(*) FROM etl.runs r"
		" WHERE r.status OPERATOR(pg_catalog.=) 'skipped'"
		" GROUP BY r.pipeline_id",
		NULL, SPI_OK_SELECT, InvalidSnapshot);
	for (uint64 r = 0; r < n; r++)
	{
		PipelineTotals *t = find_pipeline(m, etl_spi_int64(r, 0, 0));

		if (t != NULL)
			t->skipped = etl_spi_int64(r, 1, 0);
	}
	n = etl_spi_exec("SELECT d.pipeline_id, pg_catalog.count(*)"
					 " FROM etl.dead_letters d"
					 " WHERE d.status OPERATOR(pg_catalog.=) 'pending'"
					 " GROUP BY d.pipeline_id",
					 NULL, SPI_OK_SELECT, InvalidSnapshot);
	for (uint64 r = 0; r < n; r++)
	{
		PipelineTotals *t = find_pipeline(m, etl_spi_int64(r, 0, 0));

		if (t != NULL)
			t->pending_dead_letters = etl_spi_int64(r, 1, 0);
	}
	n = etl_spi_exec(
		"SELECT c.pipeline_id, c.name,"
		" COALESCE(pg_catalog.sum(t.failures), 0)::pg_catalog.float8"
		" FROM etl.checks c JOIN etl.pipelines p"
		" ON p.pipeline_id OPERATOR(pg_catalog.=) c.pipeline_id"
		" LEFT JOIN etl.check_totals t"
		" ON t.pipeline_id OPERATOR(pg_catalog.=) c.pipeline_id"
		" AND t.check_name OPERATOR(pg_catalog.=) c.name"
		" GROUP BY c.pipeline_id, c.name, p.name ORDER BY c.name, p.name",
		NULL, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	for (uint64 r = 0; r < n; r++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		CheckTotal *ct = palloc(sizeof(CheckTotal));

		ct->pipeline_id = etl_spi_int64(r, 0, 0);
		ct->name = etl_spi_text(r, 1);
		ct->failures = etl_spi_float8(r, 2, 0);
		m->checks = lappend(m->checks, ct);
		MemoryContextSwitchTo(old);
	}
}

/*
 * add_sample appends a sample to a family and returns it.
 */
static Sample *
add_sample(Metrics *m, FamilyId id, const char *pipeline, double value)
{
	Family *f = &m->families[id];
	Sample *s;

	if (f->n == f->cap)
	{
		f->cap = f->cap ? f->cap * 2 : 64;
		f->samples = f->samples ? repalloc(f->samples, sizeof(Sample) * f->cap)
								: palloc(sizeof(Sample) * f->cap);
	}
	s = &f->samples[f->n++];
	memset(s, 0, sizeof(Sample));
	s->pipeline = pipeline;
	s->value = value;
	return s;
}

/*
 * add_labelled appends a sample with a second label.
 */
static void
add_labelled(Metrics *m, FamilyId id, const char *pipeline, const char *key,
			 const char *val, double value)
{
	Sample *s = add_sample(m, id, pipeline, value);

	s->key2 = key;
	s->val2 = val;
}

/*
 * add_histogram appends the histogram of a pipeline's run durations: a
 * cumulative bucket per bound, +Inf, _count and _sum.
 */
static void
add_histogram(Metrics *m, PipelineTotals *t)
{
	const char *name = t->p->name;
	Sample *s;

	for (int i = 0; i < m->nbuckets; i++)
	{
		s = add_sample(m, F_RUN_DURATION, name, (double) t->buckets[i]);
		s->series = "_bucket";
		s->le = m->bucket_texts[i];
	}
	s = add_sample(m, F_RUN_DURATION, name, t->runs_sum);
	s->series = "_bucket";
	s->le = "+Inf";
	s = add_sample(m, F_RUN_DURATION, name, t->runs_sum);
	s->series = "_count";
	s = add_sample(m, F_RUN_DURATION, name, t->seconds_sum);
	s->series = "_sum";
}

/*
 * sorted_names returns n names sorted as the database's collation sorts
 * them (the statuses and row kinds, which label samples before pipeline).
 */
static const char **
sorted_names(const char *const *names, int n)
{
	const char **sorted = palloc(sizeof(char *) * n);

	for (int i = 0; i < n; i++)
	{
		int j = i;

		while (j > 0 && collate(sorted[j - 1], names[i]) > 0)
		{
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = names[i];
	}
	return sorted;
}

/*
 * build_samples turns what was read into the samples of every family, in
 * the order of the text format: by their labels without .series and le as
 * jsonb orders them (a second label, whose name is shorter, before
 * pipeline), then finite bounds by value, +Inf, and the parts without a
 * bound by .series.  Pipelines come in the order of their names and checks
 * in that of theirs, so each family is built in that order rather than
 * sorted.  Lags are read here (fenced, as the reader).
 */
static void
build_samples(Metrics *m, EtlLagCache *lags)
{
	static const char *const status_names[3] = { "failed", "skipped",
												 "succeeded" };
	const char **statuses = sorted_names(status_names, 3);
	const char **kinds = sorted_names(row_kinds, ROW_KINDS);
	ListCell *lc;

	foreach (lc, m->checks)
	{
		CheckTotal *ct = lfirst(lc);
		PipelineTotals *t = find_pipeline(m, ct->pipeline_id);

		if (t != NULL)
			add_labelled(m, F_CHECK_FAILURES, t->p->name, "check", ct->name,
						 ct->failures);
	}
	for (int i = 0; i < m->npipelines; i++)
	{
		PipelineTotals *t = &m->pipelines[i];
		const char *name = t->p->name;
		EtlLag lag;

		add_sample(m, F_DEAD_LETTERS, name, (double) t->pending_dead_letters);
		if (t->unrecorded > 0)
			add_sample(m, F_UNRECORDED, name, (double) t->unrecorded);
		if (etl_mode_ops(t->p->mode)->watermark_is_clock &&
			etl_pipeline_lag(lags, t->p, &lag))
			add_sample(m, F_LAG, name, etl_lag_seconds(&lag));
		if (!t->has_totals)
			continue;
		add_histogram(m, t);
		add_sample(m, F_LAST_RUN_DURATION, name, t->last_seconds);
		if (t->has_runs[1])
			add_sample(m, F_LAST_SUCCESS, name, t->success_at)->isnull =
				t->success_at_null;
	}
	for (int k = 0; k < ROW_KINDS; k++)
	{
		int kind = 0;

		while (strcmp(row_kinds[kind], kinds[k]) != 0)
			kind++;
		for (int i = 0; i < m->npipelines; i++)
			if (m->pipelines[i].has_totals)
				add_labelled(m, F_ROWS, m->pipelines[i].p->name, "kind",
							 kinds[k], m->pipelines[i].rows[kind]);
	}
	for (int st = 0; st < 3; st++)
		for (int i = 0; i < m->npipelines; i++)
		{
			PipelineTotals *t = &m->pipelines[i];
			int s = strcmp(statuses[st], "succeeded") == 0;

			if (strcmp(statuses[st], "skipped") == 0)
			{
				if (t->skipped > 0)
					add_labelled(m, F_RUNS, t->p->name, "status", statuses[st],
								 (double) t->skipped);
			}
			else if (t->has_runs[s])
				add_labelled(m, F_RUNS, t->p->name, "status", statuses[st],
							 t->runs[s]);
		}
}

/*
 * labels_json returns the labels of a sample as jsonb prints them (keys
 * ordered by length, then bytewise), built in buf, a scratch buffer.
 */
static char *
labels_json(Sample *s, StringInfo buf)
{
	const char *keys[4];
	const char *vals[4];
	int n = 0;

	if (s->labels != NULL)
		return s->labels;
	if (s->le != NULL)
	{
		keys[n] = "le";
		vals[n++] = s->le;
	}
	if (s->key2 != NULL)
	{
		keys[n] = s->key2;
		vals[n++] = s->val2;
	}
	if (s->series != NULL)
	{
		keys[n] = ".series";
		vals[n++] = s->series;
	}
	keys[n] = "pipeline";
	vals[n++] = s->pipeline;

	resetStringInfo(buf);
	appendStringInfoChar(buf, '{');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendBinaryStringInfo(buf, ", ", 2);
		escape_json(buf, keys[i]);
		appendBinaryStringInfo(buf, ": ", 2);
		escape_json(buf, vals[i]);
	}
	appendStringInfoChar(buf, '}');
	s->labels = pnstrdup(buf->data, buf->len);
	s->labels_len = buf->len;
	return s->labels;
}

/*
 * push_string pushes a string key or value into a jsonb being built.
 */
static void
push_string(JsonbParseState **state, JsonbIteratorToken token, const char *str)
{
	JsonbValue v;

	v.type = jbvString;
	v.val.string.val = (char *) str;
	v.val.string.len = strlen(str);
	(void) pushJsonbValue(state, token, &v);
}

/*
 * labels_jsonb returns the labels of a sample as jsonb (etl_metric_rows).
 */
static Datum
labels_jsonb(Sample *s)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_string(&state, WJB_KEY, "pipeline");
	push_string(&state, WJB_VALUE, s->pipeline);
	if (s->key2 != NULL)
	{
		push_string(&state, WJB_KEY, s->key2);
		push_string(&state, WJB_VALUE, s->val2);
	}
	if (s->series != NULL)
	{
		push_string(&state, WJB_KEY, ".series");
		push_string(&state, WJB_VALUE, s->series);
	}
	if (s->le != NULL)
	{
		push_string(&state, WJB_KEY, "le");
		push_string(&state, WJB_VALUE, s->le);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(result));
}

/*
 * compare_json_order orders samples by the text of their labels (the
 * JSON format's order).
 */
static int
compare_json_order(const void *a, const void *b)
{
	const Sample *x = a;
	const Sample *y = b;

	return varstr_cmp(x->labels, x->labels_len, y->labels, y->labels_len,
					  DEFAULT_COLLATION_OID);
}

/*
 * sort_json_order sorts the samples of a family by the text of their
 * labels (the JSON format's order); in the common case they are in that
 * order already and only checked.
 */
static void
sort_json_order(Family *f)
{
	StringInfoData buf;
	bool sorted = true;

	initStringInfo(&buf);
	for (int j = 0; j < f->n; j++)
	{
		(void) labels_json(&f->samples[j], &buf);
		if (j > 0 && sorted &&
			compare_json_order(&f->samples[j - 1], &f->samples[j]) > 0)
			sorted = false;
	}
	if (!sorted)
		qsort(f->samples, f->n, sizeof(Sample), compare_json_order);
}

/*
 * family_order returns the families in the order of their names.
 */
static Family **
family_order(Metrics *m)
{
	Family **order = palloc(sizeof(Family *) * F_COUNT);

	for (int i = 0; i < F_COUNT; i++)
	{
		Family *f = &m->families[i];
		int j = i;

		f->id = i;
		/* insertion sort of a handful of families */
		while (j > 0 && collate(family_defs[order[j - 1]->id].name,
								family_defs[f->id].name) > 0)
		{
			order[j] = order[j - 1];
			j--;
		}
		order[j] = f;
	}
	return order;
}

/*
 * append_label appends name="value" with the exposition format's escapes
 * (backslash, double quote, newline).
 */
static void
append_label(StringInfo buf, const char *name, const char *value)
{
	const char *c;

	appendStringInfoString(buf, name);
	appendBinaryStringInfo(buf, "=\"", 2);
	for (c = value; *c; c++)
		if (*c == '\\' || *c == '"' || *c == '\n')
			break;
	if (*c == '\0')
		appendBinaryStringInfo(buf, value, c - value);
	else
		for (c = value; *c; c++)
		{
			if (*c == '\\')
				appendBinaryStringInfo(buf, "\\\\", 2);
			else if (*c == '"')
				appendBinaryStringInfo(buf, "\\\"", 2);
			else if (*c == '\n')
				appendBinaryStringInfo(buf, "\\n", 2);
			else
				appendStringInfoChar(buf, *c);
		}
	appendStringInfoChar(buf, '"');
}

/*
 * append_text_value appends a value as the text format writes it.
 */
static void
append_text_value(StringInfo buf, double v)
{
	if (isinf(v))
		appendStringInfoString(buf, v > 0 ? "+Inf" : "-Inf");
	else
		appendStringInfoString(buf, float8out_internal(v));
}

/*
 * write_text writes the Prometheus text exposition format 0.0.4: per
 * family HELP, TYPE and its samples, families separated by a newline, the
 * whole ended by one; empty without samples.
 */
static char *
write_text(Metrics *m)
{
	Family **order = family_order(m);
	StringInfoData buf;
	bool any = false;

	initStringInfo(&buf);
	for (int i = 0; i < F_COUNT; i++)
	{
		Family *f = order[i];
		const char *name = family_defs[f->id].name;
		bool first = true;

		for (int j = 0; j < f->n; j++)
		{
			Sample *s = &f->samples[j];
			bool second_first;

			if (s->isnull)
				continue;
			if (first)
			{
				appendStringInfo(&buf, "%s# HELP %s %s\n# TYPE %s %s",
								 any ? "\n" : "", name,
								 family_defs[f->id].help, name,
								 family_defs[f->id].type);
				first = false;
				any = true;
			}
			appendStringInfoChar(&buf, '\n');
			appendStringInfoString(&buf, name);
			if (s->series != NULL)
				appendStringInfoString(&buf, s->series);
			appendStringInfoChar(&buf, '{');
			/* label names in order, le last */
			second_first = s->key2 != NULL && collate(s->key2, "pipeline") < 0;
			if (second_first)
			{
				append_label(&buf, s->key2, s->val2);
				appendStringInfoChar(&buf, ',');
			}
			append_label(&buf, "pipeline", s->pipeline);
			if (s->key2 != NULL && !second_first)
			{
				appendStringInfoChar(&buf, ',');
				append_label(&buf, s->key2, s->val2);
			}
			if (s->le != NULL)
			{
				appendStringInfoChar(&buf, ',');
				append_label(&buf, "le", s->le);
			}
			appendBinaryStringInfo(&buf, "} ", 2);
			append_text_value(&buf, s->value);
		}
	}
	if (any)
		appendStringInfoChar(&buf, '\n');
	return buf.data;
}

/*
 * append_json_value appends a value as to_jsonb(double precision) prints
 * it: a number (as numeric prints it), or a string for NaN and infinity.
 */
static void
append_json_value(StringInfo buf, Sample *s)
{
	char *text;

	if (s->isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	text = float8out_internal(s->value);
	if (!IsValidJsonNumber(text, strlen(text)))
	{
		escape_json(buf, text);
		return;
	}
	/* without an exponent, numeric prints it the same, but for -0 */
	if (strchr(text, 'e') == NULL && strcmp(text, "-0") != 0)
	{
		appendStringInfoString(buf, text);
		return;
	}
	appendStringInfoString(
		buf,
		DatumGetCString(DirectFunctionCall1(
			numeric_out, DirectFunctionCall3(numeric_in, CStringGetDatum(text),
											 ObjectIdGetDatum(InvalidOid),
											 Int32GetDatum(-1)))));
}

/*
 * write_json writes {"metrics": [{"help", "name", "type", "samples":
 * [{"value", "labels"}]}]} as jsonb prints it.
 */
static char *
write_json(Metrics *m)
{
	Family **order = family_order(m);
	StringInfoData buf;
	bool any = false;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"metrics\": [");
	for (int i = 0; i < F_COUNT; i++)
	{
		Family *f = order[i];

		if (f->n == 0)
			continue;
		sort_json_order(f);
		appendStringInfoString(&buf, any ? ", {\"help\": " : "{\"help\": ");
		escape_json(&buf, family_defs[f->id].help);
		appendStringInfoString(&buf, ", \"name\": ");
		escape_json(&buf, family_defs[f->id].name);
		appendStringInfoString(&buf, ", \"type\": ");
		escape_json(&buf, family_defs[f->id].type);
		appendStringInfoString(&buf, ", \"samples\": [");
		for (int j = 0; j < f->n; j++)
		{
			appendStringInfoString(&buf,
								   j ? ", {\"value\": " : "{\"value\": ");
			append_json_value(&buf, &f->samples[j]);
			appendStringInfoString(&buf, ", \"labels\": ");
			appendStringInfoString(&buf, f->samples[j].labels);
			appendStringInfoChar(&buf, '}');
		}
		appendStringInfoString(&buf, "]}");
		any = true;
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/*
 * collect reads the catalogs and builds every sample, in the current
 * memory context (SPI connected, monitoring settings in force).
 */
static Metrics *
collect(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	Metrics *m = palloc0(sizeof(Metrics));
	EtlLagCache *lags = etl_lag_cache_create(cxt);
	List *unrecorded;
	ListCell *lc;

	read_pipelines(m, cxt);
	read_run_totals(m);
	read_counts(m, cxt);
	MemoryContextSwitchTo(cxt);
	unrecorded = etl_unrecorded_list(0);
	foreach (lc, unrecorded)
	{
		EtlUnrecorded *u = lfirst(lc);
		PipelineTotals *t = find_pipeline(m, u->pipeline_id);

		if (t != NULL)
			t->unrecorded++;
	}
	build_samples(m, lags);
	MemoryContextSwitchTo(cxt);
	return m;
}

/*
 * etl_metrics(format text DEFAULT 'prometheus') RETURNS text
 *
 * The metrics of every pipeline in the Prometheus text exposition format
 * 0.0.4, or ('json') as a JSON document.
 */
Datum
etl_metrics(PG_FUNCTION_ARGS)
{
	char *format =
		PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool json;
	Metrics *m;
	char *out;
	EtlEntry e;
	text *result;

	if (format == NULL ||
		(strcmp(format, "prometheus") != 0 && strcmp(format, "json") != 0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid metrics format \"%s\"",
							   format ? format : "<NULL>"),
						errhint("Valid values are: prometheus, json.")));
	json = strcmp(format, "json") == 0;

	etl_entry_begin(&e, ETL_ENTRY_MONITOR);
	m = collect();
	out = json ? write_json(m) : write_text(m);
	result = etl_entry_text(&e, out);
	etl_entry_end(&e);
	PG_RETURN_TEXT_P(result);
}

/*
 * etl_metric_rows() RETURNS TABLE (metric text, type text, help text,
 *									 labels jsonb, value double precision)
 *
 * The samples of etl_metrics(), one row each (histogram rows carry their
 * part as the label .series).
 */
Datum
etl_metric_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Family **order;
	Metrics *m;
	EtlEntry e;

	InitMaterializedSRF(fcinfo, 0);
	etl_entry_begin(&e, ETL_ENTRY_MONITOR);
	m = collect();
	order = family_order(m);
	for (int i = 0; i < F_COUNT; i++)
	{
		Family *f = order[i];
		Datum values[5];
		bool nulls[5] = { false, false, false, false, false };

		values[0] = CStringGetTextDatum(family_defs[f->id].name);
		values[1] = CStringGetTextDatum(family_defs[f->id].type);
		values[2] = CStringGetTextDatum(family_defs[f->id].help);
		for (int j = 0; j < f->n; j++)
		{
			Sample *s = &f->samples[j];

			values[3] = labels_jsonb(s);
			values[4] = Float8GetDatum(s->value);
			nulls[4] = s->isnull;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
								 nulls);
		}
	}
	etl_entry_end(&e);
	return (Datum) 0;
}
