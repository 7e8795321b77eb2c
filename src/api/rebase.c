/*-------------------------------------------------------------------------
 *
 * rebase.c
 *	  etl_rebase_xid(source): carries the pipelines of mode xid of a source
 *	  over to the cluster a dump of their database was restored into.
 *
 *	  A restored source holds the _etl_xid values of the old cluster, and
 *	  each pipeline's watermark is a snapshot of the old cluster, which runs
 *	  refuse (another system identifier).  Transaction ids of the old
 *	  cluster mean nothing here: some may lie in this cluster's future, and
 *	  a row stamped with one would be taken by every run.  So the rows are
 *	  stamped again, by what the old snapshots say of them.
 *
 *	  The snapshots of one cluster grow with time: a row a pipeline's
 *	  snapshot saw committed, every later snapshot saw committed too.  With
 *	  the k pipelines ordered by their snapshots, oldest first, a row was
 *	  loaded by pipelines j..k, where j is the first whose snapshot saw its
 *	  _etl_xid committed (k + 1 when none did).  The row gets the transaction
 *	  id 2 + j (3 .. k + 3: ids far below this cluster's oldest running
 *	  one), and pipeline i gets this cluster's current snapshot with the ids
 *	  3 + i .. 3 + k added to its in-progress list: its next run takes
 *	  exactly the rows it had not loaded, and later runs, with snapshots of
 *	  their own, see every re-stamped row as long committed.
 *
 *	  Rows written in this cluster before the call carry this cluster's
 *	  transaction ids, which the old snapshots cannot judge.  They are told
 *	  from the restored ones by their tuple's xmin: pg_restore creates the
 *	  tracking trigger after loading the data (a data-only restore with
 *	  --disable-triggers enables it after), so a row whose xmin is not older
 *	  than its table's trigger was written since, and gets k + 3, which
 *	  every pipeline takes.
 *
 *	  The re-stamping UPDATE is maintenance of a column only etl_ext reads:
 *	  the source's triggers (the tracking trigger, and the user's: one that
 *	  sets updated_at would change every row) are disabled for it, and set
 *	  back as they were, in the same transaction; no other session sees
 *	  them disabled.
 *
 * IDENTIFICATION
 *	  src/api/rebase.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/xid8.h"

#include "api/table_arg.h"
#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "catalog/run_lock.h"
#include "modes/watermark.h"
#include "sql/names.h"

PG_FUNCTION_INFO_V1(etl_rebase_xid);

/* the lowest transaction id a re-stamped row gets */
#define REBASE_FIRST_XID 3

/* a pipeline whose watermark was taken in another cluster */
typedef struct Foreign
{
	EtlPipeline *p;
	uint64 sysid;
	char *snap; /* the old cluster's snapshot, as text */
	uint64 xmin;
	uint64 xmax;
	int nxip;
} Foreign;

/*
 * cmp_foreign orders pipelines by the age of their snapshots, oldest
 * first.
 */
static int
cmp_foreign(const void *a, const void *b)
{
	const Foreign *x = *(Foreign *const *) a;
	const Foreign *y = *(Foreign *const *) b;

	if (x->xmax != y->xmax)
		return x->xmax < y->xmax ? -1 : 1;
	if (x->xmin != y->xmin)
		return x->xmin < y->xmin ? -1 : 1;
	return y->nxip - x->nxip;
}

/*
 * foreign_watermark reads a pipeline's watermark; NULL when it has none
 * or it was taken in this cluster.  Anything else that is not
 * "<system identifier>/<pg_snapshot>" raises 22023.
 */
static Foreign *
foreign_watermark(EtlPipeline *p)
{
	Foreign *f;
	const char *slash;
	char *end;
	Datum snap;

	if (p->watermark == NULL || (slash = strchr(p->watermark, '/')) == NULL)
		return NULL;
	f = palloc0(sizeof(Foreign));
	f->p = p;
	errno = 0;
	f->sysid = strtou64(p->watermark, &end, 10);
	if (errno != 0 || end != slash)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("watermark \"%s\" of pipeline \"%s\" is not a "
							   "transaction snapshot",
							   p->watermark, p->name),
						errhint("Reset it with etl_reset_watermark(%s).",
								quote_literal_cstr(p->name))));
	if (f->sysid == GetSystemIdentifier())
		return NULL;
	f->snap = pstrdup(slash + 1);
	snap = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(f->snap));
	f->xmin = U64FromFullTransactionId(DatumGetFullTransactionId(
		DirectFunctionCall1(pg_snapshot_xmin, snap)));
	f->xmax = U64FromFullTransactionId(DatumGetFullTransactionId(
		DirectFunctionCall1(pg_snapshot_xmax, snap)));
	for (const char *c = strrchr(f->snap, ':') + 1; *c != '\0'; c++)
		if (*c == ',' || c[1] == '\0')
			f->nxip++;
	return f;
}

/*
 * foreign_pipelines locks and returns, ordered oldest snapshot first, the
 * pipelines of mode xid reading the source whose watermark was taken in
 * another cluster (the caller must be allowed to act on each).  Their
 * snapshots must all come from one cluster.
 */
static List *
foreign_pipelines(const char *source_sql, int *count)
{
	EtlArgs args;
	uint64 n;
	List *names = NIL;
	ListCell *lc;
	Foreign **sorted;
	List *result = NIL;
	int k = 0;

	etl_args_init(&args);
	etl_args_add_text(&args, source_sql);
	n = etl_spi_exec("SELECT name FROM etl.pipelines"
					 " WHERE mode OPERATOR(pg_catalog.=) 'xid'"
					 " AND source OPERATOR(pg_catalog.=) $1 ORDER BY name",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	for (uint64 r = 0; r < n; r++)
		names = lappend(names, etl_spi_text(r, 0));

	sorted = palloc(sizeof(Foreign *) * (list_length(names) + 1));
	foreach (lc, names)
	{
		EtlPipeline *p = etl_pipeline_open_locked(
			lfirst(lc), "rebase the watermark of", ETL_OPEN_WAIT, NULL);
		Foreign *f = foreign_watermark(p);

		if (f == NULL)
			continue;
		if (k > 0 && f->sysid != sorted[0]->sysid)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the pipelines of %s hold watermarks of two "
							"clusters",
							source_sql),
					 errdetail("Pipeline \"%s\" was last run in the cluster "
							   "with system identifier " UINT64_FORMAT
							   ", pipeline \"%s\" in " UINT64_FORMAT ".",
							   sorted[0]->p->name, sorted[0]->sysid, p->name,
							   f->sysid),
					 errhint("Reset the watermark of one of them with "
							 "etl_reset_watermark().")));
		sorted[k++] = f;
	}
	qsort(sorted, k, sizeof(Foreign *), cmp_foreign);
	for (int i = 0; i < k; i++)
		result = lappend(result, sorted[i]);
	*count = k;
	return result;
}

/* a trigger disabled while re-stamping, and how it was enabled */
typedef struct SavedTrigger
{
	char *rel_sql;
	char *name;
	char enabled;
} SavedTrigger;

/*
 * disable_triggers disables every trigger (but the internal ones, such as
 * foreign keys') of the source and of each table behind it that is
 * enabled, one by one (ALTER TABLE ONLY), and returns them with their
 * state.
 */
static List *
disable_triggers(Oid source)
{
	List *rels = find_all_inheritors(source, NoLock, NULL);
	List *saved = NIL;
	ListCell *lc;

	foreach (lc, rels)
	{
		EtlArgs args;
		uint64 n;

		etl_args_init(&args);
		etl_args_add(&args, OIDOID, ObjectIdGetDatum(lfirst_oid(lc)), false);
		n = etl_spi_exec(
			"SELECT tgname::pg_catalog.text,"
			" tgenabled::pg_catalog.text FROM pg_catalog.pg_trigger"
			" WHERE tgrelid OPERATOR(pg_catalog.=) $1"
			" AND NOT tgisinternal"
			" AND tgenabled OPERATOR(pg_catalog.<>) 'D'"
			" ORDER BY tgname",
			&args, SPI_OK_SELECT, InvalidSnapshot);
		for (uint64 r = 0; r < n; r++)
		{
			SavedTrigger *t = palloc(sizeof(SavedTrigger));

			t->rel_sql = etl_relation_sql(lfirst_oid(lc));
			t->name = etl_spi_text(r, 0);
			t->enabled = etl_spi_text(r, 1)[0];
			saved = lappend(saved, t);
		}
	}
	foreach (lc, saved)
	{
		SavedTrigger *t = lfirst(lc);

		etl_spi_exec(psprintf("ALTER TABLE ONLY %s DISABLE TRIGGER %s",
							  t->rel_sql, quote_identifier(t->name)),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
	}
	return saved;
}

/*
 * restore_triggers enables the triggers disable_triggers disabled, as they
 * were.
 */
static void
restore_triggers(List *saved)
{
	ListCell *lc;

	foreach (lc, saved)
	{
		SavedTrigger *t = lfirst(lc);

		etl_spi_exec(
			psprintf("ALTER TABLE ONLY %s ENABLE %sTRIGGER %s", t->rel_sql,
					 t->enabled == TRIGGER_FIRES_ALWAYS		  ? "ALWAYS "
					 : t->enabled == TRIGGER_FIRES_ON_REPLICA ? "REPLICA "
															  : "",
					 quote_identifier(t->name)),
			NULL, SPI_OK_UTILITY, InvalidSnapshot);
	}
}

/*
 * trigger_ages reads, for each table behind the source that has the
 * tracking trigger, the age of that trigger's catalog row: args gets two
 * arguments, the tables (oid[]) and the ages (int4[]), and their numbers
 * are returned in *relids and *ages.  Ages are stable within a
 * transaction; read them before disable_triggers() rewrites those rows.
 */
static void
trigger_ages(Oid source, EtlArgs *args, int *relids, int *ages)
{
	List *rels = find_all_inheritors(source, NoLock, NULL);
	Datum *elems = palloc(sizeof(Datum) * list_length(rels));
	EtlArgs q;
	ListCell *lc;
	int i = 0;

	foreach (lc, rels)
		elems[i++] = ObjectIdGetDatum(lfirst_oid(lc));
	etl_args_init(&q);
	etl_args_add(&q, OIDARRAYOID,
				 PointerGetDatum(construct_array(elems, i, OIDOID, sizeof(Oid),
												 true, TYPALIGN_INT)),
				 false);
	etl_spi_exec("SELECT pg_catalog.array_agg(tgrelid),"
				 " pg_catalog.array_agg(pg_catalog.age(xmin))"
				 " FROM pg_catalog.pg_trigger"
				 " WHERE tgfoid OPERATOR(pg_catalog.=)"
				 " 'etl_internal.etl_track_changes_trigger()'"
				 "::pg_catalog.regprocedure"
				 " AND tgrelid OPERATOR(pg_catalog.=) ANY ($1)",
				 &q, SPI_OK_SELECT, InvalidSnapshot);
	{
		bool null1;
		bool null2;
		Datum r = etl_spi_datum(0, 0, &null1);
		Datum a = etl_spi_datum(0, 1, &null2);

		*relids =
			etl_args_add(args, OIDARRAYOID,
						 null1 ? (Datum) 0 : datumCopy(r, false, -1), null1);
		*ages =
			etl_args_add(args, INT4ARRAYOID,
						 null2 ? (Datum) 0 : datumCopy(a, false, -1), null2);
	}
}

/*
 * restamp sets the _etl_xid of every row of the source to 2 + j (see the
 * file header), or to k + 3 for a row written since its table's tracking
 * trigger was made, with the source's triggers disabled, under the share
 * row exclusive lock that keeps writers out until the caller's transaction
 * ends.  Sets *rows to the rows re-stamped and *pending to those some
 * pipeline is to load.
 */
static void
restamp(Oid source, const char *source_sql, List *foreign, int64 *rows,
		int64 *pending)
{
	int k = list_length(foreign);
	EtlArgs args;
	StringInfoData sql;
	ListCell *lc;
	List *saved;
	int relids;
	int ages;
	int last;

	etl_spi_exec(
		psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", source_sql),
		NULL, SPI_OK_UTILITY, InvalidSnapshot);
	etl_spi_exec("SELECT pg_catalog.pg_snapshot_xmin("
				 "pg_catalog.pg_current_snapshot())::pg_catalog.text",
				 NULL, SPI_OK_SELECT, InvalidSnapshot);
	if (strtou64(etl_spi_text(0, 0), NULL, 10) <= REBASE_FIRST_XID + k)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this cluster is too young to rebase %d pipelines", k),
				 errdetail("Re-stamped rows get transaction ids %d to %d, "
						   "which must be older than every transaction "
						   "still running.",
						   REBASE_FIRST_XID, REBASE_FIRST_XID + k),
				 errhint("Try again in a moment.")));

	etl_args_init(&args);
	last = etl_args_add(&args, XID8OID,
						FullTransactionIdGetDatum(
							FullTransactionIdFromU64(REBASE_FIRST_XID + k)),
						false);
	trigger_ages(source, &args, &relids, &ages);
	initStringInfo(&sql);
	appendStringInfo(
		&sql,
		"WITH etl_u AS (UPDATE %s AS etl_s SET %s = CASE"
		" WHEN pg_catalog.age(etl_s.xmin) OPERATOR(pg_catalog.<=)"
		" (SELECT m.age FROM ROWS FROM ("
		"pg_catalog.unnest($%d::pg_catalog.oid[]),"
		" pg_catalog.unnest($%d::pg_catalog.int4[])) AS m(relid, age)"
		" WHERE m.relid OPERATOR(pg_catalog.=) etl_s.tableoid) THEN $%d",
		source_sql, ETL_COL_XID, relids, ages, last);
	foreach (lc, foreign)
	{
		Foreign *f = lfirst(lc);
		int snap = etl_args_add_text(&args, f->snap);
		int xid =
			etl_args_add(&args, XID8OID,
						 FullTransactionIdGetDatum(FullTransactionIdFromU64(
							 REBASE_FIRST_XID + foreach_current_index(lc))),
						 false);

		appendStringInfo(&sql,
						 " WHEN pg_catalog.pg_visible_in_snapshot(etl_s.%s, "
						 "$%d::pg_catalog.pg_snapshot) THEN $%d",
						 ETL_COL_XID, snap, xid);
	}
	appendStringInfo(
		&sql,
		" ELSE $%d END RETURNING etl_s.%s) SELECT pg_catalog.count(*),"
		" pg_catalog.count(*) FILTER (WHERE %s OPERATOR(pg_catalog.<>) $%d)"
		" FROM etl_u",
		last, ETL_COL_XID, ETL_COL_XID,
		etl_args_add(&args, XID8OID,
					 FullTransactionIdGetDatum(
						 FullTransactionIdFromU64(REBASE_FIRST_XID)),
					 false));

	saved = disable_triggers(source);
	etl_spi_exec(sql.data, &args, SPI_OK_SELECT, InvalidSnapshot);
	*rows = etl_spi_int64(0, 0, 0);
	*pending = etl_spi_int64(0, 1, 0);
	restore_triggers(saved);
}

/*
 * etl_rebase_xid(source regclass) RETURNS text
 *
 * For each pipeline of mode xid reading source whose watermark was taken in
 * another cluster (a restored dump): re-stamps the source's rows and sets
 * the watermarks so that each pipeline's next run loads exactly the rows it
 * had not loaded before the dump (see the file header).  Pipelines whose
 * watermark is this cluster's, or none, are left alone.  For the owner of
 * the source, who must also be allowed to alter each pipeline.  Returns what
 * it did.
 */
Datum
etl_rebase_xid(PG_FUNCTION_ARGS)
{
	EtlTableArgText text_arg = {
		.function = "etl_rebase_xid",
		.purpose = "rebase its pipelines",
		.not_table_hint = "Mode xid reads tables that track their changes.",
	};
	Oid relid;
	char *source_sql;
	List *foreign;
	int k;
	int64 rows = 0;
	int64 pending = 0;
	char *snap;
	uint64 *extra;
	FullTransactionId own;
	StringInfoData result;
	ListCell *lc;
	text *out;
	EtlEntry e;

	text_arg.owner_detail = psprintf(
		"Rebasing re-stamps the column %s of every row.", ETL_COL_XID);
	relid = etl_owned_table_arg(fcinfo, &e, &text_arg, &source_sql);
	if (get_attnum(relid, ETL_COL_XID) == InvalidAttrNumber)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("%s does not track its changes", source_sql),
						errhint("Mode xid reads the column \"%s\" that "
								"etl_track_changes() adds.",
								ETL_COL_XID)));

	foreign = foreign_pipelines(source_sql, &k);
	initStringInfo(&result);
	if (k == 0)
		appendStringInfo(&result,
						 "no pipeline of mode xid reading %s has a "
						 "watermark of another cluster",
						 source_sql);
	else
	{
		restamp(relid, source_sql, foreign, &rows, &pending);

		/* pipeline i (from 0): the ids of classes i + 1 .. k are pending */
		own = GetTopFullTransactionId();
		extra = palloc(sizeof(uint64) * (k + 1));
		etl_spi_exec("SELECT pg_catalog.pg_current_snapshot()"
					 "::pg_catalog.text",
					 NULL, SPI_OK_SELECT, InvalidSnapshot);
		snap = etl_spi_text(0, 0);
		appendStringInfo(&result, "rebased pipeline%s", k > 1 ? "s" : "");
		foreach (lc, foreign)
		{
			Foreign *f = lfirst(lc);
			int i = foreach_current_index(lc);
			int n = 0;

			for (int j = i + 1; j <= k; j++)
				extra[n++] = REBASE_FIRST_XID + j;
			extra[n++] = U64FromFullTransactionId(own);
			etl_catalog_set_watermark(f->p,
									  etl_xid_watermark_with(snap, extra, n));
			appendStringInfo(&result, "%s %s", i > 0 ? "," : "",
							 quote_identifier(f->p->name));
		}
		appendStringInfo(&result,
						 " of %s: " INT64_FORMAT
						 " rows re-stamped, " INT64_FORMAT
						 " of them not loaded by every pipeline before the "
						 "dump",
						 source_sql, rows, pending);
	}
	out = etl_entry_text(&e, result.data);
	etl_entry_end(&e);
	PG_RETURN_TEXT_P(out);
}
