/*-------------------------------------------------------------------------
 *
 * mode_cdc.c
 *	  Mode cdc: the source is a table of change rows (the key under the
 *	  target's column names, an operation column c, r, i, u or d, and a
 *	  watermark column that orders the changes, _cdc_lsn by default).  A run
 *	  takes the change rows past the stored watermark, bounded like mode
 *	  serial (etl_mode_serial_begin()); of each key only its last change
 *	  counts: inserts and updates are loaded, deletes delete the key's
 *	  target row.  The change metadata (columns named _cdc_..., and the
 *	  operation column) is never loaded.
 *
 * IDENTIFICATION
 *	  src/modes/mode_cdc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "loads/load.h"
#include "modes/extract.h"
#include "modes/mode.h"
#include "modes/watermark.h"
#include "sql/deparse_load.h"

/*
 * cdc_type_ok tells whether a watermark column of this type suits mode
 * cdc: an integer, numeric, pg_lsn, timestamptz or timestamp.
 */
static bool
cdc_type_ok(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID ||
		   type == NUMERICOID || type == PG_LSNOID || type == TIMESTAMPTZOID ||
		   type == TIMESTAMPOID;
}

/*
 * cdc_default_column names the default watermark column (_cdc_lsn) when
 * the definition names none.
 */
static void
cdc_default_column(EtlPipeline *p, Oid source)
{
	if (p->watermark_column == NULL)
		p->watermark_column = pstrdup(ETL_CDC_DEFAULT_LSN);
}

/*
 * check_cdc_source checks what mode cdc needs of the change rows: an
 * operation column of a string type, and the key columns under the
 * target's names (deletes match on them).
 */
static void
check_cdc_source(EtlPipeline *p, Oid source, Oid target)
{
	char *op = etl_option_text(p, "op_column", ETL_CDC_DEFAULT_OP);
	AttrNumber attnum = get_attnum(source, op);
	ListCell *lc;

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("operation column \"%s\" does not exist in source %s",
						op, p->source),
				 errdetail("Mode cdc reads each change row's operation (c, "
						   "r, i, u or d) from it."),
				 errhint("Name it with options => '{\"op_column\": "
						 "\"...\"}'.")));
	if (TypeCategory(get_atttype(source, attnum)) != TYPCATEGORY_STRING)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("operation column \"%s\" of %s is of type %s, not a "
						"string type",
						op, p->source,
						format_type_be(get_atttype(source, attnum)))));
	if (p->key == NIL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("mode cdc needs a key"),
						errdetail("Only the last change of each key counts, "
								  "and deletes find their rows by key."),
						errhint("Pass key => ARRAY['column', ...], or give "
								"the target a primary key.")));
	foreach (lc, p->key)
		if (get_attnum(source, lfirst(lc)) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" does not exist in source %s",
							(char *) lfirst(lc), p->source),
					 errdetail("In mode cdc the change rows carry the key "
							   "under the target's column names."),
					 errhint("Rename the column in the change table, or "
							 "choose another key.")));
}

/*
 * cdc_describe tells the builders that the batch is each key's last change,
 * and which source columns are change metadata, never loaded.
 */
static void
cdc_describe(EtlPipeline *p, EtlBatchSource *descr)
{
	descr->last_changes = true;
	descr->omit_prefix = ETL_CDC_PREFIX;
	descr->omit_column = etl_option_text(p, "op_column", ETL_CDC_DEFAULT_OP);
}

/*
 * check_cdc_operations refuses change rows whose operation is none of
 * c, r, i (insert), u (update), d (delete), in any case: the run fails
 * before it loads anything, and the watermark stays.
 */
static void
check_cdc_operations(EtlRun *run)
{
	EtlArgs args;
	char *op = etl_option_text(run->p, "op_column", ETL_CDC_DEFAULT_OP);

	etl_run_args(run, &args);
	if (etl_spi_exec(etl_deparse_cdc_bad_operations(etl_batch_sql(run), op),
					 &args, SPI_OK_SELECT, run->snapshot) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s change rows of pipeline \"%s\" have an unknown "
					"operation",
					etl_spi_text(0, 1), run->p->name),
			 errdetail("Column \"%s\" holds %s; the operations are c, r, i "
					   "(insert), u (update) and d (delete).",
					   op,
					   etl_spi_isnull(0, 0)
						   ? "NULL"
						   : quote_literal_cstr(etl_spi_text(0, 0))),
			 errhint("Correct or remove those change rows, or set "
					 "options => '{\"op_column\": ...}'.")));
}

/*
 * cdc_stats counts the change rows of the range and finds the next
 * watermark (etl_extract_range_stats()), then refuses change rows with an
 * unknown operation.
 */
static void
cdc_stats(EtlRun *run)
{
	if (etl_extract_range_stats(run))
		check_cdc_operations(run);
}

/*
 * count_cdc_unchanged counts as unchanged the change rows of a mode cdc run
 * that changed nothing: changes superseded by a later change of their key in
 * the range (the load sees each key's last change only) and deletes of keys
 * the target does not have.  They are the extracted rows (every change row
 * of the range) that were neither loaded, rejected nor deleted.  A transform
 * that is not one-to-one yields rows that are not change rows: its counts
 * are left as the load made them.
 */
static void
count_cdc_unchanged(EtlRun *run)
{
	EtlRunRecord *r = &run->rec;
	int64 rest;

	if (!run->map->one_to_one)
		return;
	rest = r->rows_extracted - r->rows_inserted - r->rows_updated -
		   r->rows_deleted - r->rows_unchanged - r->rows_rejected;
	if (rest > 0)
		r->rows_unchanged += rest;
}

/*
 * cdc_load loads the range's last changes of inserted and updated keys,
 * then applies the deletes (keys whose last change is a delete) and counts
 * what changed nothing.
 */
static void
cdc_load(EtlRun *run, EtlLoadBatchFn load_batch)
{
	if (run->rec.rows_extracted == 0)
		return;
	load_batch(run);
	run->rec.rows_deleted += etl_load_exec(
		run, etl_deparse_cdc_delete(etl_batch_sql(run)), SPI_OK_DELETE);
	count_cdc_unchanged(run);
}

const EtlModeOps etl_mode_cdc = {
	.name = "cdc",
	.has_watermark_column = true,
	.watermark_is_snapshot = false,
	.watermark_is_clock = false,
	.takes_overlap = false,
	.backfills = true,
	.replaces_target = false,
	.row_noun = "change",
	.watermark_type_ok = cdc_type_ok,
	.watermark_type_hint =
		"Order the change rows by a pg_lsn, integer, numeric or "
		"timestamp column.",
	.watermark_type_error = NULL,
	.check_source = cdc_default_column,
	.check_watermark_column = NULL,
	.check_definition = check_cdc_source,
	.notice_definition = NULL,
	.describe = cdc_describe,
	.begin = etl_mode_serial_begin,
	.snapshot_taken = NULL,
	.stats = cdc_stats,
	.load = cdc_load,
	.reject_left_out = NULL,
	.keeps_stage = false,
};
