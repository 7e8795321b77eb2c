/*-------------------------------------------------------------------------
 *
 * mode_snapshot.c
 *	  Mode snapshot: every run reads the whole source and compares it, key
 *	  by key, with the signatures (key hash, row hash) stored by the previous
 *	  runs (etl.snapshot_signatures): new and changed keys are loaded, keys
 *	  that left the source deleted from the target (or, with
 *	  options.delete_mode 'soft', stamped), and the signatures brought up to
 *	  date.  A key that repeats in the source is loaded once; its other rows
 *	  become dead letters.
 *
 * IDENTIFICATION
 *	  src/modes/mode_snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "loads/load.h"
#include "modes/mode.h"
#include "sql/deparse_snapshot.h"
#include "sql/deparse_stage.h"

/* what the comparison found */
typedef struct EtlSnapshotDiff
{
	int64 batch;	/* rows of the transformed source */
	int64 new_keys; /* keys without a signature */
	int64 changed;	/* keys whose row hash differs */
	int64 vanished; /* signatures whose key left the source */
} EtlSnapshotDiff;

/*
 * check_snapshot checks what mode snapshot needs: a key (signatures are
 * kept per key) and, with options.delete_mode 'soft', a timestamp column in
 * the target to stamp vanished rows with.
 */
static void
check_snapshot(EtlPipeline *p, Oid source, Oid target)
{
	char *mode = etl_option_text(p, "delete_mode", "hard");

	if (p->key == NIL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mode snapshot needs a key"),
						errdetail("It keeps one signature per key to find "
								  "changed and vanished rows."),
						errhint("Pass key => ARRAY['column', ...], or give "
								"the target a primary key.")));
	if (strcmp(mode, "soft") == 0)
	{
		char *col = etl_option_text(p, "soft_delete_column", "_deleted_at");
		AttrNumber attnum = get_attnum(target, col);
		Oid type = attnum != InvalidAttrNumber ? get_atttype(target, attnum)
											   : InvalidOid;

		if (type != TIMESTAMPTZOID && type != TIMESTAMPOID)
			ereport(
				ERROR,
				(errcode(attnum == InvalidAttrNumber
							 ? ERRCODE_UNDEFINED_COLUMN
							 : ERRCODE_DATATYPE_MISMATCH),
				 errmsg("soft delete column \"%s\" of target %s %s", col,
						p->target,
						attnum == InvalidAttrNumber ? "does not exist"
													: "is not a timestamp"),
				 errdetail("With delete_mode soft, rows whose key left the "
						   "source get the run's start time in it."),
				 errhint("ALTER TABLE %s ADD COLUMN %s timestamptz; or name "
						 "another column with options => "
						 "'{\"soft_delete_column\": ...}'.",
						 p->target, quote_identifier(col))));
	}
	else if (strcmp(mode, "hard") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid delete_mode \"%s\" of pipeline \"%s\"",
							   mode, p->name),
						errhint("Valid values are: hard, soft.")));
}

/*
 * snapshot_describe tells the builders and the loads that the batch is the
 * whole source, and where vanished keys are stamped instead of deleted
 * (options.delete_mode 'soft').
 */
static void
snapshot_describe(EtlPipeline *p, EtlBatchSource *descr)
{
	descr->whole_source = true;
	if (strcmp(etl_option_text(p, "delete_mode", "hard"), "soft") == 0)
		descr->soft_delete_column = quote_identifier(
			etl_option_text(p, "soft_delete_column", "_deleted_at"));
}

/*
 * snapshot_stats leaves the count of the source to the load.
 */
static void
snapshot_stats(EtlRun *run)
{
	run->rec.rows_extracted = -1; /* the load counts them */
}

/* rows of signatures read and written at a time */
#define SIGNATURE_CHUNK 10000

/*
 * write_signatures brings the stored signatures up to date from a query
 * that runs as the pipeline owner (it reads the transformed source): with
 * remember, one that returns key hash, row hash and key of the signatures
 * to store (all_new: none is stored yet); otherwise one that returns the
 * key hashes of the signatures to delete.  Its rows are read in chunks and
 * written as the extension owner, the only role that writes
 * etl.snapshot_signatures, from arrays in memory: the writing statements
 * read nothing the pipeline owner can change.
 */
static void
write_signatures(EtlRun *run, const char *query, bool remember, bool all_new)
{
	EtlArgs args;
	Portal portal;
	MemoryContext chunk_cxt = AllocSetContextCreate(
		CurrentMemoryContext, "etl_ext signatures", ALLOCSET_DEFAULT_SIZES);

	etl_run_args(run, &args);
	portal = etl_spi_cursor_open(query, &args, run->snapshot);
	while (etl_spi_cursor_fetch(portal, SIGNATURE_CHUNK) > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(chunk_cxt);
		Datum key_hashes = etl_spi_column_array(0);

		if (remember)
		{
			Datum row_hashes = etl_spi_column_array(1);
			Datum keys = etl_spi_column_array(2);

			etl_catalog_remember_signatures(run->p->id, key_hashes, row_hashes,
											keys, all_new);
		}
		else
			etl_catalog_forget_signatures(run->p->id, key_hashes);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunk_cxt);
	}
	etl_spi_cursor_close(portal);
	MemoryContextDelete(chunk_cxt);
}

/*
 * snapshot_classify compares the transformed source with the stored
 * signatures in one read.
 */
static void
snapshot_classify(EtlRun *run, EtlSnapshotDiff *d)
{
	EtlArgs args;

	etl_run_args(run, &args);
	etl_spi_query_parallel(etl_deparse_snapshot_classify(etl_batch_sql(run)),
						   &args, run->snapshot);
	d->batch = etl_spi_int64(0, 0, 0);
	d->new_keys = etl_spi_int64(0, 1, 0);
	d->changed = etl_spi_int64(0, 2, 0);
	d->vanished = etl_spi_int64(0, 3, 0);
}

/*
 * snapshot_reject_repeats hands to hooks->rejected, as bad rows of the
 * stage "load", the source rows a snapshot run left out because their key
 * repeats in the source: the dedupe load kept one row per key (the one
 * stored last), and without a watermark column nothing tells whether
 * another one is newer, so each of the others is a dead letter whose
 * message names the key.  Call after the load, before the stage is
 * dropped; returns how many.
 */
static int64
snapshot_reject_repeats(EtlRun *run, EtlIsolateHooks *hooks)
{
	StringInfoData names;
	ListCell *lc;
	EtlArgs args;
	int64 n;
	int64 *rns;
	char **keys;

	if (!run->dedupe || run->stage_table == NULL)
		return 0;
	initStringInfo(&names);
	foreach (lc, run->map->columns)
		if (((EtlColumn *) lfirst(lc))->is_key)
			appendStringInfo(&names, "%s%s", names.len ? ", " : "",
							 ((EtlColumn *) lfirst(lc))->name);

	run->rn_lo = 1;
	run->rn_hi = run->stage_rows;
	etl_run_args(run, &args);
	n = (int64) etl_spi_exec(etl_deparse_repeated_versions(etl_batch_sql(run)),
							 &args, SPI_OK_SELECT, run->snapshot);
	rns = palloc(sizeof(int64) * Max(n, 1));
	keys = palloc(sizeof(char *) * Max(n, 1));
	for (int64 i = 0; i < n; i++)
	{
		rns[i] = etl_spi_int64(i, 0, 0);
		keys[i] = etl_spi_text(i, 1);
	}
	for (int64 i = 0; i < n; i++)
	{
		ErrorData *edata = palloc0(sizeof(ErrorData));
		char *record;

		run->rn_lo = run->rn_hi = rns[i];
		etl_run_args(run, &args);
		etl_spi_exec(etl_deparse_stage_record(etl_batch_sql(run)), &args,
					 SPI_OK_SELECT, run->snapshot);
		record = etl_spi_text(0, 0);
		edata->sqlerrcode = ERRCODE_UNIQUE_VIOLATION;
		edata->message = psprintf("key (%s)=%s repeats in the source of "
								  "snapshot pipeline \"%s\"",
								  names.data, keys[i], run->p->name);
		edata->detail = pstrdup(
			"A snapshot loads one row per key, and without a watermark "
			"column nothing tells which version is the latest: the row "
			"stored last was loaded, this one was not.");
		hooks->rejected(run, rns[i], "load", edata, record, hooks->arg);
	}
	run->rn_lo = 1;
	run->rn_hi = run->stage_rows;
	return n;
}

/*
 * delete_vanished deletes the target rows of the vanished keys (with soft,
 * stamps them: etl_deparse_snapshot_delete()) and returns how many, planned
 * without nested loops.  The statement reads the transformed source twice
 * (the keys left, the keys the target still finds), each time through the
 * CTE of the whole source; with the signatures' statistics behind (a first
 * load just stored them) the planner takes the vanished keys for one row
 * and would rescan that CTE for each of them.  An error rolls the setting
 * back with the subtransaction (or transaction) it ends.
 */
static int64
delete_vanished(EtlRun *run, const char *soft)
{
	int nestlevel = NewGUCNestLevel();
	int64 n;

	(void) set_config_option("enable_nestloop", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	n = etl_load_exec(run,
					  etl_deparse_snapshot_delete(etl_batch_sql(run), soft),
					  soft ? SPI_OK_UPDATE : SPI_OK_DELETE);
	AtEOXact_GUC(true, nestlevel);
	return n;
}

/*
 * snapshot_finish applies what the comparison found besides the load
 * of new and changed rows: the vanished keys are deleted from the target
 * (or, with options.delete_mode 'soft', stamped), keys back in the source
 * revived, and the signatures of new and changed keys stored.  When rows
 * of the run were rejected (dead letters, rows set aside by a quarantine
 * check, rows pending already as dead letters), the signatures are those
 * of the rows the run's stage kept (every rejection removes its row from
 * the stage, which the mode keeps until now: keeps_stage): a rejected key
 * keeps the signature it had, or none, so that the next run compares it
 * again and loads it once it can, and it is not revived; every other key
 * is signed, and leaving the source later, deleted.  Keys that repeat in
 * the source (snapshot_reject_repeats()) get no signature.  Returns the
 * target rows deleted or stamped.
 */
static int64
snapshot_finish(EtlRun *run, EtlSnapshotDiff *d)
{
	char *soft = NULL;
	int64 deleted = 0;
	bool rejects =
		run->dead_letter_count + run->known_rejects > run->repeat_rejects;
	bool staged = rejects && run->stage_table != NULL;

	if (strcmp(etl_option_text(run->p, "delete_mode", "hard"), "soft") == 0)
		soft = etl_option_text(run->p, "soft_delete_column", "_deleted_at");

	if (d->vanished > 0)
		deleted = delete_vanished(run, soft);
	if (soft && d->new_keys > 0)
		(void) etl_load_exec(
			run, etl_deparse_snapshot_revive(etl_batch_sql(run), soft, staged),
			SPI_OK_UPDATE);
	if (d->vanished > 0)
		write_signatures(
			run, etl_deparse_snapshot_vanished_keys(etl_batch_sql(run)), false,
			false);
	/* every rejection has a stage; without one, no key could be told apart */
	if (d->new_keys + d->changed > 0 && (!rejects || staged))
	{
		bool none_yet =
			d->new_keys == d->batch && d->changed == 0 && d->vanished == 0;

		write_signatures(
			run,
			etl_deparse_snapshot_signatures(
				etl_batch_sql(run), none_yet,
				run->repeat_rejects > 0 || (staged && run->dedupe), staged),
			true, none_yet);
	}
	return deleted;
}

/*
 * snapshot_load compares the source with the signatures, loads the new and
 * changed keys, and applies what else the comparison found
 * (snapshot_finish()).
 */
static void
snapshot_load(EtlRun *run, EtlLoadBatchFn load_batch)
{
	EtlSnapshotDiff d;

	snapshot_classify(run, &d);
	if (d.new_keys + d.changed > 0)
		load_batch(run);
	run->rec.rows_extracted = d.batch;
	if (d.new_keys + d.changed == 0)
	{
		/* nothing loaded; a quarantine check may have set rows aside */
		run->rec.rows_rejected = run->dead_letter_count;
		run->rec.rows_unchanged = d.batch - run->rec.rows_rejected;
	}
	run->rec.rows_deleted += snapshot_finish(run, &d);
}

const EtlModeOps etl_mode_snapshot = {
	.name = "snapshot",
	.has_watermark_column = false,
	.watermark_is_snapshot = false,
	.watermark_is_clock = false,
	.takes_overlap = false,
	.backfills = false,
	.replaces_target = false,
	.row_noun = "source",
	.watermark_type_ok = NULL,
	.watermark_type_hint = NULL,
	.watermark_type_error = NULL,
	.check_source = NULL,
	.check_watermark_column = NULL,
	.check_definition = check_snapshot,
	.notice_definition = NULL,
	.describe = snapshot_describe,
	.begin = NULL,
	.snapshot_taken = NULL,
	.stats = snapshot_stats,
	.load = snapshot_load,
	.reject_left_out = snapshot_reject_repeats,
	.keeps_stage = true,
};
