/*-------------------------------------------------------------------------
 *
 * mode_xid.c
 *	  Mode xid: no bound and no wait.  The watermark is the previous run's
 *	  snapshot, and a run takes the rows its own snapshot sees whose
 *	  _etl_xid (the writer's top-level transaction id, set by the tracking
 *	  trigger of etl_track_changes(), track.c) that snapshot did not see
 *	  committed (PgQ's batch algorithm).  A transaction open at one run's
 *	  snapshot is taken by the first run after it commits; nothing else
 *	  waits for it.
 *
 * IDENTIFICATION
 *	  src/modes/mode_xid.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/xid8.h"

#include "modes/extract.h"
#include "modes/mode.h"
#include "modes/track.h"
#include "modes/watermark.h"

/*
 * xid_type_ok tells whether a watermark column of this type suits mode
 * xid: xid8.
 */
static bool
xid_type_ok(Oid type)
{
	return type == XID8OID;
}

/*
 * xid_type_error raises 42804 for a tracking column of mode xid whose type
 * is not xid8.
 */
static void
xid_type_error(EtlPipeline *p, Oid type)
{
	ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
					errmsg("column \"%s\" of %s is of type %s, not xid8",
						   ETL_COL_XID, p->source, format_type_be(type)),
					etl_watermark_domain_detail(type),
					errhint("Mode xid tracks changes through an xid8 column "
							"filled by etl_track_changes(%s).",
							quote_literal_cstr(p->source))));
}

/*
 * check_xid_source checks what mode xid needs: a local table whose changes
 * etl_track_changes() tracks, and no batch_size (a run takes everything
 * committed since the previous run's snapshot).  The watermark column is
 * _etl_xid, whether named or not.
 */
static void
check_xid_source(EtlPipeline *p, Oid source)
{
	char kind = get_rel_relkind(source);

	if (p->watermark_column == NULL)
		p->watermark_column = pstrdup(ETL_COL_XID);
	else if (strcmp(p->watermark_column, ETL_COL_XID) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mode xid tracks changes through column \"%s\", not "
						"\"%s\"",
						ETL_COL_XID, p->watermark_column),
				 errhint("Leave watermark_column out with mode => 'xid'.")));
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("mode xid needs a local table as source, and %s is "
						"not one",
						p->source),
				 errdetail("Transaction ids are only meaningful for the "
						   "tables of this cluster."),
				 errhint("Use mode => 'timestamp' with an overlap for views "
						 "and foreign tables.")));
	if (get_attnum(source, ETL_COL_XID) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("source %s does not track its changes", p->source),
				 errdetail("Mode xid reads the column \"%s\" that "
						   "etl_track_changes() adds.",
						   ETL_COL_XID),
				 errhint("Run SELECT etl_track_changes(%s); as the owner of "
						 "the table.",
						 quote_literal_cstr(p->source))));
	if (p->batch_size > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("batch_size does not apply to mode xid"),
				 errdetail("A run takes every change committed since the "
						   "previous run's snapshot."),
				 errhint("Leave batch_size out.")));
}

/*
 * xid_describe tells the builders that the range is read by snapshot.
 */
static void
xid_describe(EtlPipeline *p, EtlBatchSource *descr)
{
	descr->by_snapshot = true;
}

/*
 * begin_xid sets the range of an xid-mode run: the rows whose _etl_xid is
 * at least the previous snapshot's xmin and not visible in it.  Every table
 * behind the source must track its changes (etl_track_check).
 */
static void
begin_xid(EtlRun *run)
{
	etl_track_check(run->p, run->source_relid);
	if (!run->has_lo)
		return; /* the first run: everything */
	run->xid_prev = etl_xid_watermark_parse(run->p, run->p->watermark);
	run->has_from = true;
	run->from = DirectFunctionCall1(
		pg_snapshot_xmin,
		DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(run->xid_prev)));
	run->lo = run->from;
}

/*
 * xid_snapshot_watermark returns the watermark of an xid-mode run: the
 * system identifier and the run's snapshot, in which the run's own
 * transaction counts as in progress (rows it writes to the source after the
 * run, or wrote before it, are taken by the next run: the scan saw the
 * latter, but once more does no harm to an idempotent load).
 */
static char *
xid_snapshot_watermark(EtlRun *run)
{
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	uint64 me = U64FromFullTransactionId(own);

	etl_spi_exec("SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text",
				 NULL, SPI_OK_SELECT, run->snapshot);
	return etl_xid_watermark_with(etl_spi_text(0, 0), &me,
								  FullTransactionIdIsValid(own) ? 1 : 0);
}

/*
 * xid_normalize_watermark stores a given watermark (a snapshot) with the
 * system identifier of this cluster, refusing one that is no snapshot or
 * was taken in another cluster.
 */
static void
xid_normalize_watermark(EtlPipeline *p, Oid source)
{
	if (p->watermark != NULL)
		p->watermark = psprintf(UINT64_FORMAT "/%s", GetSystemIdentifier(),
								etl_xid_watermark_parse(p, p->watermark));
}

/*
 * xid_snapshot_taken sets the watermark of an xid-mode run from its
 * snapshot (xid_snapshot_watermark()).
 */
static void
xid_snapshot_taken(EtlRun *run)
{
	run->xid_cur = xid_snapshot_watermark(run);
}

const EtlModeOps etl_mode_xid = {
	.name = "xid",
	.has_watermark_column = true,
	.watermark_is_snapshot = true,
	.watermark_is_clock = false,
	.takes_overlap = false,
	.backfills = false,
	.replaces_target = false,
	.row_noun = "source",
	.watermark_type_ok = xid_type_ok,
	.watermark_type_hint = NULL,
	.watermark_type_error = xid_type_error,
	.check_source = check_xid_source,
	.check_watermark_column = xid_normalize_watermark,
	.check_definition = NULL,
	.notice_definition = NULL,
	.describe = xid_describe,
	.begin = begin_xid,
	.snapshot_taken = xid_snapshot_taken,
	.stats = etl_extract_range,
	.load = etl_mode_load_range,
	.reject_left_out = NULL,
	.keeps_stage = false,
};
