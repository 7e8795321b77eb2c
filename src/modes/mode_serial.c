/*-------------------------------------------------------------------------
 *
 * mode_serial.c
 *	  Mode serial: a run takes the source rows whose watermark column (an
 *	  integer drawn from a sequence) is past the stored watermark.
 *
 *	  The upper bound: hi = the largest committed value; then wait for
 *	  every transaction holding a write lock on the source or on the
 *	  sequences its column draws from (nextval() keeps RowExclusiveLock on
 *	  the sequence until the drawing transaction ends), so every id <= hi
 *	  is then committed or gone, also one drawn before its INSERT.  Only
 *	  sound for sequences with CACHE 1 (checked at definition time).  Mode
 *	  cdc bounds its range the same way (etl_mode_serial_begin()).
 *
 * IDENTIFICATION
 *	  src/modes/mode_serial.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "modes/extract.h"
#include "modes/mode.h"
#include "modes/safe_bounds.h"
#include "modes/sequences.h"
#include "modes/watermark.h"
#include "sql/deparse_source.h"
#include "sql/names.h"

/*
 * serial_type_ok tells whether a watermark column of this type suits mode
 * serial: smallint, integer or bigint.
 */
static bool
serial_type_ok(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID;
}

/*
 * check_serial_sequence refuses a serial-mode watermark column whose values
 * come from a sequence that caches more than one value per backend: ids
 * would then commit far out of order and the wait for writers could not
 * cover them.
 */
static void
check_serial_sequence(EtlPipeline *p, Oid relid)
{
	const char *unsafe;
	List *seqs = etl_column_sequences(relid, p->watermark_column, &unsafe);
	ListCell *lc;

	foreach (lc, seqs)
	{
		Oid seqid = lfirst_oid(lc);
		HeapTuple tup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
		int64 cache;

		if (!HeapTupleIsValid(tup))
			continue;
		cache = ((Form_pg_sequence) GETSTRUCT(tup))->seqcache;
		ReleaseSysCache(tup);
		if (cache > 1)
			ereport(
				ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("watermark column \"%s\" of %s draws from sequence "
						"%s, which caches " INT64_FORMAT " values",
						p->watermark_column, p->source,
						etl_relation_sql(seqid), cache),
				 errdetail("With a cache, ids commit out of order across "
						   "sessions and mode serial could skip rows."),
				 errhint("ALTER SEQUENCE %s CACHE 1, or use mode => 'xid' "
						 "(exact change tracking).",
						 etl_relation_sql(seqid))));
	}
}

/*
 * notice_unsafe_serial warns, in a NOTICE pointing to mode xid, when a
 * serial-mode pipeline's source has ids a run cannot wait for (a view, a
 * foreign table, ids from no sequence): a smaller id committed after a
 * larger one was loaded would be skipped.
 */
static void
notice_unsafe_serial(EtlPipeline *p, Oid source)
{
	const char *unsafe;

	(void) etl_column_sequences(source, p->watermark_column, &unsafe);
	if (unsafe == NULL)
		return;
	ereport(NOTICE,
			(errmsg("pipeline \"%s\" may skip ids of %s that commit after a "
					"larger one was loaded",
					p->name, p->source),
			 errdetail("%s", unsafe),
			 errhint("Use mode => 'xid' on the table that is written "
					 "(SELECT etl_track_changes(...)) for exact capture.")));
}

/*
 * check_positions refuses the rows of a serial- or cdc-mode source whose
 * watermark column is NULL or not finite: such a row would never be in a
 * range (NULL, -infinity), or would become the watermark and leave every
 * later row behind it for good (NaN, infinity).  The run fails before it
 * reads anything, naming the row, so the watermark stays where it was.
 */
static void
check_positions(EtlRun *run)
{
	const char *col = quote_identifier(run->p->watermark_column);
	AttrNumber attnum =
		get_attnum(run->source_relid, run->p->watermark_column);
	HeapTuple tup;
	bool notnull;
	bool isnull;
	EtlArgs args;
	StringInfoData sql;
	char *value;

	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(run->source_relid),
						  Int16GetDatum(attnum));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for attribute %d of relation %u",
			 attnum, run->source_relid);
	notnull = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
	ReleaseSysCache(tup);
	initStringInfo(&sql);
	if (!etl_deparse_unpositioned_row(&sql, run->source_sql, col, run->wm_type,
									  notnull))
		return; /* an integer or pg_lsn column without NULLs */

	etl_args_init(&args);
	if (etl_spi_exec(sql.data, &args, SPI_OK_SELECT, InvalidSnapshot) == 0)
		return;
	(void) etl_spi_datum(0, 1, &isnull);
	value = isnull ? "NULL" : etl_spi_text(0, 1);
	ereport(ERROR,
			(errcode(isnull ? ERRCODE_NULL_VALUE_NOT_ALLOWED
							: ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("a %s row of pipeline \"%s\" has %s%s in its watermark "
					"column \"%s\"",
					etl_mode_ops(run->p->mode)->row_noun, run->p->name,
					isnull ? "no value" : "the value ", isnull ? "" : value,
					run->p->watermark_column),
			 errdetail("The row: %s.  Mode %s takes rows in the order of that "
					   "column, so a row without a finite value in it would "
					   "be skipped for good or would leave every later row "
					   "behind the watermark; nothing was loaded and the "
					   "watermark stays.",
					   etl_spi_text(0, 0), etl_mode_names[run->p->mode]),
			 errhint("Give the row a position, or remove it, in %s.",
					 run->source_sql)));
}

/*
 * etl_mode_serial_begin sets the range of a serial-mode run (and of a
 * cdc-mode run, whose change rows are ordered like ids): the largest
 * committed value, then a wait for the source's current writers and for the
 * transactions that drew from the column's sequences.  Ids of a CACHE 1
 * sequence are handed out in order, so every id up to that value was drawn
 * before it was read: a transaction still holding one holds the sequence's
 * lock, and once it is gone every such id is committed or never will be.
 */
void
etl_mode_serial_begin(EtlRun *run)
{
	EtlArgs args;
	StringInfoData sql;
	bool isnull;
	Datum hi;

	check_positions(run);
	initStringInfo(&sql);
	etl_deparse_source_max(&sql, run->source_sql,
						   quote_identifier(run->p->watermark_column));
	etl_args_init(&args);
	etl_spi_exec(sql.data, &args, SPI_OK_SELECT, InvalidSnapshot);
	hi = etl_spi_datum(0, 0, &isnull);

	run->has_from = run->has_lo;
	run->from = run->lo;
	run->has_hi = !isnull;
	run->hi = isnull ? (Datum) 0
					 : datumCopy(hi, get_typbyval(run->wm_type),
								 get_typlen(run->wm_type));
	run->hi_type = run->wm_type;
	run->hi_inclusive = true;
	if (isnull)
	{
		/* nothing committed yet: nothing to extract this time */
		run->nothing = true;
		return;
	}

	{
		const char *unsafe;

		etl_wait_for_writers(run->source_relid,
							 etl_column_sequences(run->source_relid,
												  run->p->watermark_column,
												  &unsafe));
	}
}

const EtlModeOps etl_mode_serial = {
	.name = "serial",
	.has_watermark_column = true,
	.watermark_is_snapshot = false,
	.watermark_is_clock = false,
	.takes_overlap = false,
	.backfills = true,
	.replaces_target = false,
	.row_noun = "source",
	.watermark_type_ok = serial_type_ok,
	.watermark_type_hint = "Use an integer column filled from a sequence, or "
						   "mode => 'timestamp' for a timestamp.",
	.watermark_type_error = NULL,
	.check_source = NULL,
	.check_watermark_column = check_serial_sequence,
	.check_definition = NULL,
	.notice_definition = notice_unsafe_serial,
	.describe = NULL,
	.begin = etl_mode_serial_begin,
	.snapshot_taken = NULL,
	.stats = etl_extract_range,
	.load = etl_mode_load_range,
	.reject_left_out = NULL,
	.keeps_stage = false,
};
