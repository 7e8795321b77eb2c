/*-------------------------------------------------------------------------
 *
 * replay.c
 *	  The replay of dead letters (etl_retry_dead_letters): a run of the
 *	  orchestrator of run.c whose batch is the pending dead letters.  Their
 *	  source rows are staged in a temporary table of the pipeline owner and
 *	  loaded as the owner (transform/isolate.c), then marked as the extension
 *	  owner.  Which dead letters those are is read before any code of the
 *	  owner runs and kept in C memory: the marking statements get their ids
 *	  as an int8[] parameter and never read anything the owner can write,
 *	  alter or cast.
 *
 * IDENTIFICATION
 *	  src/run/replay.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "base/errors.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "catalog/runs.h"
#include "checks/quality.h"
#include "loads/load.h"
#include "loads/load_ops.h"
#include "modes/mode.h"
#include "modes/watermark.h"
#include "run/replay.h"
#include "run/run.h"
#include "sql/columns.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_stage.h"
#include "sql/deparse_stage_table.h"
#include "transform/deadletter.h"
#include "transform/isolate.h"
#include "transform/stage.h"

/*
 * Replay state.  The pending dead letters are read into ids[] (ordered by
 * id) before any code of the pipeline owner runs; staged row n is dead
 * letter ids[n - 1].  The hooks, which write as the extension owner, take
 * the dead letters' ids from here and never from the stage: the stage is a
 * temporary table of the pipeline owner, whose code (transform functions,
 * triggers, RLS policies of the target) runs between chunks and could
 * rewrite it, change its column types or add casts from them.
 */
typedef struct Replay
{
	int64 pipeline_id;
	int64 *ids;
	int64 nids;
	int64 pending;	  /* pending when the replay started */
	int64 resolved;	  /* reloaded */
	int64 superseded; /* marked resolved without replaying (supersede) */
	int64 duplicates; /* closed, their row version pending twice */
	int64 gone;		  /* of the superseded, those whose source row is gone */
	int64 rejected;	  /* replayed rows that failed again */
} Replay;

/*
 * int8_array builds an int8[] of ids[0 .. n - 1] in the current memory
 * context.
 */
static Datum
int8_array(const int64 *ids, int64 n)
{
	Datum *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int64 i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, (int) n, INT8OID,
										   sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/*
 * check_staged_range raises an internal error unless staged rows lo .. hi
 * are rows of the replay.
 */
static void
check_staged_range(Replay *rp, int64 lo, int64 hi)
{
	if (lo < 1 || hi > rp->nids || lo > hi)
		elog(ERROR,
			 "etl_ext: staged rows " INT64_FORMAT " .. " INT64_FORMAT
			 " out of range 1 .. " INT64_FORMAT,
			 lo, hi, rp->nids);
}

/*
 * replay_ids returns the ids of the dead letters behind staged rows
 * lo .. hi as an int8[].
 */
static Datum
replay_ids(Replay *rp, int64 lo, int64 hi)
{
	check_staged_range(rp, lo, hi);
	return int8_array(rp->ids + (lo - 1), hi - lo + 1);
}

/*
 * replay_loaded marks the dead letters behind staged rows lo .. hi
 * resolved (inside the subtransaction that loaded them).
 */
static void
replay_loaded(EtlRun *run, int64 lo, int64 hi, void *arg)
{
	Replay *rp = arg;
	EtlArgs args;
	StringInfoData sql;
	EtlUserSwitch sw;
	int64 *ids;
	uint64 n;
	int nids = 0;

	check_staged_range(rp, lo, hi);

	/*
	 * The rows of lo .. hi this load took (rows held back for later are
	 * not), read as the pipeline owner; only row numbers come out, mapped
	 * to the ids read before any of the owner's code ran.
	 */
	etl_args_init(&args);
	etl_args_add_int8(&args, lo);
	etl_args_add_int8(&args, hi);
	initStringInfo(&sql);
	etl_deparse_stage_taken(&sql, run->stage_table,
							etl_stage_filter(etl_batch_sql(run), NULL));
	n = etl_spi_exec(sql.data, &args, SPI_OK_SELECT, InvalidSnapshot);
	ids = palloc(sizeof(int64) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		int64 rn = etl_spi_int64(i, 0, 0);

		if (rn >= lo && rn <= hi)
			ids[nids++] = rp->ids[rn - 1];
	}
	if (nids == 0)
		return;

	etl_args_init(&args);
	etl_args_add(&args, INT8ARRAYOID, int8_array(ids, nids), false);
	etl_args_add_int8(&args, rp->pipeline_id);
	etl_become_extension_owner(&sw);
	rp->resolved +=
		etl_spi_exec("UPDATE etl.dead_letters SET status = 'resolved',"
					 " resolved_at = pg_catalog.now(),"
					 " resolution = 'reloaded by etl_retry_dead_letters'"
					 " WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
					 " AND pipeline_id OPERATOR(pg_catalog.=) $2"
					 " AND status OPERATOR(pg_catalog.=) 'pending'",
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
	Replay *rp = arg;
	EtlDeadLetter *dl = etl_dead_letter_make(stage, record, edata);
	EtlArgs args;
	EtlUserSwitch sw;

	rp->rejected++;
	etl_args_init(&args);
	etl_args_add(&args, INT8ARRAYOID, replay_ids(rp, rn, rn), false);
	etl_args_add_int8(&args, rp->pipeline_id);
	etl_args_add_text(&args, stage);
	etl_args_add_text(&args, unpack_sql_state(dl->sqlerrcode));
	etl_args_add_text(&args,
					  etl_error_class_name(etl_error_class(dl->sqlerrcode)));
	etl_args_add_text(&args, dl->message);
	etl_become_extension_owner(&sw);
	etl_spi_exec("UPDATE etl.dead_letters SET"
				 " retry_count = retry_count OPERATOR(pg_catalog.+) 1,"
				 " stage = $3, sqlstate = $4, error_class = $5,"
				 " error_message = $6"
				 " WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
				 " AND pipeline_id OPERATOR(pg_catalog.=) $2"
				 " AND status OPERATOR(pg_catalog.=) 'pending'",
				 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * read_pending reads the ids of the pipeline's pending dead letters with a
 * record into rp, in id order, and locks them (a concurrent
 * etl_resolve_dead_letter waits).  Runs as the extension owner before any
 * code of the pipeline owner, reading only etl.dead_letters.
 */
static void
read_pending(Replay *rp)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_int8(&args, rp->pipeline_id);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT id FROM etl.dead_letters"
					 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
					 " AND status OPERATOR(pg_catalog.=) 'pending'"
					 " AND record IS NOT NULL"
					 " ORDER BY id FOR UPDATE",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	rp->nids = (int64) n;
	rp->ids = palloc(sizeof(int64) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		rp->ids[i] = etl_spi_int64(i, 0, 0);
}

/*
 * int64_cmp orders int64 values (bsearch, qsort).
 */
static int
int64_cmp(const void *a, const void *b)
{
	int64 x = *(const int64 *) a;
	int64 y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * drop_ids removes the ids gone[0 .. ngone - 1] (sorted here) from rp->ids,
 * keeping the order of the others.
 */
static void
drop_ids(Replay *rp, int64 *gone, int64 ngone)
{
	int64 kept = 0;

	qsort(gone, ngone, sizeof(int64), int64_cmp);
	for (int64 i = 0; i < rp->nids; i++)
		if (bsearch(&rp->ids[i], gone, ngone, sizeof(int64), int64_cmp) ==
			NULL)
			rp->ids[kept++] = rp->ids[i];
	rp->nids = kept;
}

/*
 * source_identity returns the columns that identify a row of the source:
 * its primary key, or else the pipeline's key when the source has all of
 * those columns; NIL when neither (a view without them).
 */
static List *
source_identity(EtlRun *run)
{
	List *keys = NIL;
	ListCell *lc;

	if (run->source_relkind == RELKIND_RELATION ||
		run->source_relkind == RELKIND_PARTITIONED_TABLE)
		keys = etl_primary_key_columns(run->source_relid);
	if (keys != NIL)
		return keys;
	foreach (lc, run->p->key)
		if (get_attnum(run->source_relid, lfirst(lc)) == InvalidAttrNumber)
			return NIL;
	return run->p->key;
}

/*
 * close_duplicates closes, among the dead letters rp->ids (pending, locked
 * by read_pending), those whose row version another of them holds too,
 * rejected at the same stage: the one of the latest run (then the highest
 * id) stays, the others are resolved as superseded by it, so that a
 * replay tries each row version once.  Runs keep a version pending once
 * (ETL_DEAD_LETTERS_CLOSE of catalog/runs.h); these are letters an earlier
 * build left pending twice.  Removes them from rp->ids and returns how
 * many.  Runs as the extension owner before any code of the pipeline
 * owner, reading only etl.dead_letters.
 */
static int64
close_duplicates(Replay *rp)
{
	EtlArgs args;
	EtlUserSwitch sw;
	int64 n;
	int64 *dup;

	if (rp->nids < 2)
		return 0;
	etl_args_init(&args);
	etl_args_add(&args, INT8ARRAYOID, int8_array(rp->ids, rp->nids), false);
	etl_args_add_int8(&args, rp->pipeline_id);
	etl_become_extension_owner(&sw);
	n = (int64) etl_spi_exec(
		"UPDATE etl.dead_letters d SET status = 'resolved',"
		" resolved_at = pg_catalog.now(), resolution = s.resolution"
		" FROM (SELECT DISTINCT ON (o.id) o.id,"
		" CASE WHEN k.run_id OPERATOR(pg_catalog.>) o.run_id"
		" THEN 'superseded: recorded again by run ' OPERATOR(pg_catalog.||)"
		" k.run_id"
		" ELSE 'superseded: pending already as dead letter '"
		" OPERATOR(pg_catalog.||) k.id END AS resolution"
		" FROM etl.dead_letters o JOIN etl.dead_letters k"
		" ON k.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id"
		" AND k.status OPERATOR(pg_catalog.=) 'pending'"
		" AND pg_catalog.jsonb_hash(k.record) OPERATOR(pg_catalog.=)"
		" pg_catalog.jsonb_hash(o.record)"
		" AND k.record OPERATOR(pg_catalog.=) o.record"
		" AND k.stage OPERATOR(pg_catalog.=) o.stage"
		" AND (COALESCE(k.run_id, 0) OPERATOR(pg_catalog.>)"
		" COALESCE(o.run_id, 0)"
		" OR (k.run_id IS NOT DISTINCT FROM o.run_id"
		" AND k.id OPERATOR(pg_catalog.>) o.id))"
		" WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)"
		" AND o.pipeline_id OPERATOR(pg_catalog.=) $2"
		" AND o.status OPERATOR(pg_catalog.=) 'pending'"
		" ORDER BY o.id, COALESCE(k.run_id, 0) DESC, k.id DESC) s"
		" WHERE d.id OPERATOR(pg_catalog.=) s.id"
		" AND d.pipeline_id OPERATOR(pg_catalog.=) $2"
		" AND d.status OPERATOR(pg_catalog.=) 'pending'"
		" RETURNING d.id",
		&args, SPI_OK_UPDATE_RETURNING, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n == 0)
		return 0;
	dup = palloc(sizeof(int64) * n);
	for (int64 i = 0; i < n; i++)
		dup[i] = etl_spi_int64(i, 0, 0);
	drop_ids(rp, dup, n);
	return n;
}

/*
 * supersede_mark marks resolved as superseded, with resolution, the n dead
 * letters ids of the replay, as the extension owner, and returns
 * how many it marked.
 */
static int64
supersede_mark(Replay *rp, const int64 *ids, int64 n, const char *resolution)
{
	EtlArgs args;
	EtlUserSwitch sw;
	int64 marked;

	if (n == 0)
		return 0;
	etl_args_init(&args);
	etl_args_add(&args, INT8ARRAYOID, int8_array(ids, n), false);
	etl_args_add_int8(&args, rp->pipeline_id);
	etl_args_add_text(&args, resolution);
	etl_become_extension_owner(&sw);
	marked =
		(int64) etl_spi_exec("UPDATE etl.dead_letters SET status = 'resolved',"
							 " resolved_at = pg_catalog.now(), resolution = $3"
							 " WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
							 " AND pipeline_id OPERATOR(pg_catalog.=) $2"
							 " AND status OPERATOR(pg_catalog.=) 'pending'",
							 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
	return marked;
}

/*
 * supersede marks resolved, without replaying them, the dead letters whose
 * source row the replay would load over a newer state of the source.  With
 * a watermark column: the source row has a newer version than the one
 * they hold (a watermark value past the record's), loaded by a later run
 * or due to be loaded by the next.  Without one (modes snapshot and full,
 * whose runs make the target mirror the source): no source row of their
 * key is the record any more (its current version was loaded by a later
 * run or is due to be), or none has their key (the run deleted it from the
 * target, or will).  The row is found by the source's primary key, or by
 * the pipeline's key when the source has those columns; without either, or
 * with a NULL key part, nothing is superseded.  Removes them from rp->ids,
 * counts the gone ones in rp->gone and returns how many it marked.  Called
 * as the pipeline owner (it reads the source); marks as the extension
 * owner, ids checked against rp->ids.
 */
static int64
supersede(EtlRun *run, Replay *rp)
{
	EtlPipeline *p = run->p;
	List *keys;
	char *sql;
	EtlArgs args;
	int64 *sup;
	int64 *newer;
	int64 *gone;
	int64 nsup;
	int64 nnewer = 0;
	int64 ngone = 0;
	int64 marked;

	if (rp->nids == 0)
		return 0;
	if (p->watermark_column != NULL)
	{
		AttrNumber attnum = get_attnum(run->source_relid, p->watermark_column);

		if (attnum == InvalidAttrNumber)
			return 0;
		etl_check_watermark_type(p, get_atttype(run->source_relid, attnum));
	}
	keys = source_identity(run);
	if (keys == NIL ||
		(sql = etl_deparse_superseded(etl_batch_sql(run), keys)) == NULL)
		return 0;

	etl_args_init(&args);
	etl_args_add(&args, INT8ARRAYOID, int8_array(rp->ids, rp->nids), false);
	etl_args_add_int8(&args, p->id);
	nsup = (int64) etl_spi_exec(sql, &args, SPI_OK_SELECT, run->snapshot);
	if (nsup == 0)
		return 0;
	sup = palloc(sizeof(int64) * nsup);
	newer = palloc(sizeof(int64) * nsup);
	gone = palloc(sizeof(int64) * nsup);
	for (int64 i = 0; i < nsup; i++)
	{
		bool isnull;
		Datum is_gone;

		sup[i] = etl_spi_int64(i, 0, 0);
		if (bsearch(&sup[i], rp->ids, rp->nids, sizeof(int64), int64_cmp) ==
			NULL)
			elog(ERROR,
				 "etl_ext: dead letter " INT64_FORMAT
				 " is not one of those replayed",
				 sup[i]);
		is_gone = etl_spi_datum(i, 1, &isnull);
		if (!isnull && DatumGetBool(is_gone))
			gone[ngone++] = sup[i];
		else
			newer[nnewer++] = sup[i];
	}

	marked = supersede_mark(rp, newer, nnewer, ETL_RESOLUTION_SUPERSEDED);
	rp->gone = supersede_mark(rp, gone, ngone, ETL_RESOLUTION_GONE);
	marked += rp->gone;

	drop_ids(rp, sup, nsup);
	return marked;
}

/*
 * supersede_notice counts in NOTICEs the dead letters supersede() marked:
 * those whose source row has a newer version, then those whose source row
 * is gone.
 */
static void
supersede_notice(EtlRun *run, Replay *rp)
{
	int64 newer = rp->superseded - rp->gone;

	if (newer > 0)
		ereport(NOTICE,
				(errmsg_plural(INT64_FORMAT " dead letter of pipeline \"%s\" "
											"is superseded",
							   INT64_FORMAT " dead letters of pipeline \"%s\" "
											"are superseded",
							   newer, newer, run->p->name),
				 errdetail_plural(
					 "Its source row has a newer version, loaded by a later "
					 "run or due to be loaded by the next; it was marked "
					 "resolved without replaying it.",
					 "Their source rows have newer versions, loaded by a "
					 "later run or due to be loaded by the next; they were "
					 "marked resolved without replaying them.",
					 newer)));
	if (rp->gone > 0)
		ereport(NOTICE,
				(errmsg_plural(INT64_FORMAT " dead letter of pipeline \"%s\" "
											"is superseded",
							   INT64_FORMAT " dead letters of pipeline \"%s\" "
											"are superseded",
							   rp->gone, rp->gone, run->p->name),
				 errdetail_plural(
					 "Its row is gone from the source, and the pipeline's "
					 "runs delete from the target the rows the source no "
					 "longer has; it was marked resolved without replaying "
					 "it.",
					 "Their rows are gone from the source, and the "
					 "pipeline's runs delete from the target the rows the "
					 "source no longer has; they were marked resolved "
					 "without replaying them.",
					 rp->gone)));
}

/*
 * record_replay records a replay as a run of the pipeline, triggered_by
 * 'replay', in the caller's transaction: the replayed rows as extracted,
 * what the load did with them, those that failed again as rejected.  Its
 * id is the one the loaded rows carry in _etl_run_id, so the run totals
 * and the metrics count them.  The watermark does not move.
 */
static void
record_replay(EtlRun *run, Replay *rp, int64 replayed, EtlLoadCounts *total)
{
	EtlRunRecord *r = &run->rec;

	r->pipeline_id = run->p->id;
	r->pipeline = run->p->name;
	r->status = "succeeded";
	r->rows_extracted = replayed;
	r->rows_inserted = total->inserted;
	r->rows_updated = total->updated;
	r->rows_deleted = total->deleted;
	r->rows_unchanged = total->unchanged;
	r->rows_rejected = rp->rejected;
	r->watermark_from = r->watermark_to = run->p->watermark;
	r->attempts = 1;
	r->finished_at = GetCurrentTimestamp();
	r->run_by = GetUserId();
	r->triggered_by = "replay";
	r->extract_ms = r->transform_ms = r->check_ms = r->load_ms = -1;
	etl_catalog_record_run(r);
}

/*
 * replay_stage stages the source rows of the dead letters rp->ids (row n
 * is ids[n - 1]) in the run's stage table and returns how many.  Runs as
 * the pipeline owner.
 */
static int64
replay_stage(EtlRun *run, Replay *rp)
{
	EtlArgs args;
	StringInfoData sql;
	int64 n;

	etl_stage_create(run);
	etl_args_init(&args);
	etl_args_add(&args, INT8ARRAYOID, int8_array(rp->ids, rp->nids), false);
	etl_args_add_int8(&args, run->p->id);
	initStringInfo(&sql);
	etl_deparse_stage_dead_letters(&sql, run->source_sql);
	n = etl_stage_fill(run, sql.data, &args);
	if (n != rp->nids)
		elog(ERROR,
			 "etl_ext: staged " INT64_FORMAT " of " INT64_FORMAT
			 " dead letters of pipeline \"%s\"",
			 n, rp->nids, run->p->name);
	run->stage_rows = n;
	return n;
}

/*
 * replay_prepare resolves what a replay of the pipeline needs, as its
 * owner: relations, column map, a unique key, a row-local transform
 * (refused otherwise), the snapshot the source is read with.
 */
static void
replay_prepare(EtlRun *run)
{
	etl_run_resolve_relations(run);
	run->map =
		etl_resolve_columns(run->p, run->source_relid, run->target_relid);
	etl_load_require_unique_key(run->p, run->target_relid);
	if (!run->map->row_local)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot replay the dead letters of pipeline \"%s\"",
						run->p->name),
				 errdetail("Its transform is not row-local: run over a few "
						   "source rows, it would compute their aggregates, "
						   "DISTINCT or window functions alone and overwrite "
						   "the target's rows with partial results."),
				 errhint("Fix the rows in the source and reload them, or "
						 "resolve the dead letters by hand with "
						 "etl_resolve_dead_letter().")));
	run->snapshot = RegisterSnapshot(GetLatestSnapshot());
}

/*
 * replay_begin starts a replay once the run lock is held: the replay
 * counts from there (it may have waited for a run).
 */
static void
replay_begin(EtlRun *run, void *arg)
{
	run->rec.started_at = GetCurrentTimestamp();
}

/*
 * replay_attempt is the attempt of a replay (the run orchestrator's, in a
 * subtransaction): it reads which dead letters are pending before any code
 * of the pipeline owner runs, marks those the source supersedes,
 * and loads the others as a run would have (transform, checks, load, each
 * row isolated), recorded as a run when there were any.
 */
static void
replay_attempt(EtlRun *run, void *arg)
{
	Replay *rp = arg;
	EtlIsolateHooks hooks = { replay_loaded, replay_rejected, rp };
	EtlLoadCounts total = { 0 };
	EtlUserSwitch sw = { 0 };
	int64 n = 0;

	/* what to replay is fixed before the owner's code can run */
	rp->pipeline_id = run->p->id;
	read_pending(rp);
	rp->pending = rp->nids;
	run->rec.run_id = rp->pending > 0 ? etl_catalog_next_run_id() : 0;
	rp->duplicates = close_duplicates(rp);
	if (rp->duplicates > 0)
		ereport(
			NOTICE,
			(errmsg_plural(INT64_FORMAT " dead letter of pipeline \"%s\" "
										"holds a row version pending twice",
						   INT64_FORMAT " dead letters of pipeline \"%s\" "
										"hold row versions pending twice",
						   rp->duplicates, rp->duplicates, run->p->name),
			 errdetail_plural(
				 "Another pending dead letter holds the same row version, "
				 "rejected at the same stage; it was marked resolved and "
				 "that one is replayed.",
				 "Other pending dead letters hold the same row versions, "
				 "rejected at the same stages; they were marked resolved "
				 "and those are replayed.",
				 rp->duplicates)));

	etl_become_owner(&sw, run->p->owner);
	replay_prepare(run);
	rp->superseded = supersede(run, rp);
	supersede_notice(run, rp);
	if (rp->nids > 0)
	{
		n = replay_stage(run, rp);

		/*
		 * What a run would have done to these rows: the transform's bad
		 * rows first, then the checks that keep rows out (critical,
		 * quarantine), then the load.
		 */
		etl_isolate_transform(run, n, &hooks);
		(void) etl_checks_replay(run, n, &hooks);
		etl_load_isolated(run, n, &hooks, &total);
		etl_load_finish(run);
		etl_stage_drop(run);
	}
	UnregisterSnapshot(run->snapshot);
	run->snapshot = NULL;
	etl_restore_user(&sw);
	if (rp->pending > 0)
		record_replay(run, rp, n, &total);
}

/*
 * etl_replay_dead_letters replays the pending dead letters of the pipeline
 * name (etl_retry_dead_letters, api/dead_letters.c) and says what became
 * of them in *res.  A replay is a run whose batch is the pending dead
 * letters (etl_run_orchestrated): it waits for the pipeline's run lock,
 * runs one attempt (replay_attempt) in a subtransaction, is never retried
 * and records no failure: an error is raised as it came, and nothing of
 * the attempt stays.  The caller has entered through the entry protocol.
 */
void
etl_replay_dead_letters(const char *name, EtlReplayResult *res)
{
	static const EtlRunKind replay = {
		.action = "retry the dead letters of",
		.wait = true,
		.retried = false,
		.begin = replay_begin,
		.attempt = replay_attempt,
		.end = NULL,
	};
	EtlRunRequest req = { .triggered_by = "replay" };
	EtlRunRecord rec;
	Replay rp = { 0 };

	etl_run_orchestrated(name, &req, &replay, &rp, &rec);
	res->retried = rp.pending;
	res->resolved = rp.resolved + rp.superseded + rp.duplicates;
	res->still_pending =
		rp.pending - rp.resolved - rp.superseded - rp.duplicates;
}
