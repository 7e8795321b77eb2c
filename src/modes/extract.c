/*-------------------------------------------------------------------------
 *
 * extract.c
 *	  One strategy per mode for the range of source rows a run takes, and
 *	  the safe upper bound that keeps late commits from being lost.
 *
 *	  A row written by a transaction still open when a run extracts is
 *	  invisible to it; if the watermark moved past that row it would be lost.
 *	  The upper bound therefore stops below every write still in flight:
 *
 *	  timestamp	 hi = least(clock, start of the oldest transaction open in
 *				 this database), read from the backend status array; rows
 *				 with watermark < hi are extracted.  A writer's now() is its
 *				 start time, so a writer still open cannot have written below
 *				 hi, and every writer that started before hi has finished.
 *				 Waiting for the table's current lockers would not do: a
 *				 transaction that began before the run and writes after it
 *				 would be lost.
 *	  serial	 hi = the largest committed value; then wait for every
 *				 transaction holding a write lock on the source or on the
 *				 sequences its column draws from (nextval() keeps
 *				 RowExclusiveLock on the sequence until the drawing
 *				 transaction ends), so every id <= hi is then committed or
 *				 gone, also one drawn before its INSERT.  Only sound for
 *				 sequences with CACHE 1 (checked at definition time).
 *	  xid		 no bound and no wait: the watermark is the previous run's
 *				 snapshot, and a run takes the rows its own snapshot sees
 *				 whose _etl_xid (the writer's top-level transaction id) that
 *				 snapshot did not see committed (PgQ's batch algorithm).  A
 *				 transaction open at one run's snapshot is taken by the
 *				 first run after it commits; nothing else waits for it.
 *
 *	  The snapshot for the range statistics and the load is taken after the
 *	  bound (and the wait), and shared by those statements, so the count, the
 *	  new watermark and the rows loaded all describe the same data.
 *
 * IDENTIFICATION
 *	  src/modes/extract.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "utils/array.h"
#include "access/relation.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "base/security.h"
#include "loads/load.h"
#include "modes/extract.h"
#include "modes/sequences.h"
#include "modes/track.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"
#include "sql/run_state.h"

static char *prepared_writer(Oid source);

/*
 * etl_watermark_type_ok tells whether a watermark column of this type suits
 * the mode: exactly one of the built-in types, never a domain over one (whose
 * checks could run the code of the column's owner wherever a watermark is
 * read).
 */
bool
etl_watermark_type_ok(EtlMode mode, Oid type)
{
	switch (mode)
	{
		case ETL_MODE_TIMESTAMP:
			return type == TIMESTAMPTZOID || type == TIMESTAMPOID;
		case ETL_MODE_SERIAL:
			return type == INT2OID || type == INT4OID || type == INT8OID;
		case ETL_MODE_XID:
			return type == XID8OID;
		case ETL_MODE_CDC:
			return type == INT2OID || type == INT4OID || type == INT8OID ||
				   type == NUMERICOID || type == PG_LSNOID ||
				   type == TIMESTAMPTZOID || type == TIMESTAMPOID;
		default:
			return false;
	}
}

/*
 * domain_detail returns the errdetail of a watermark column whose type is a
 * domain (0 otherwise, which errdetail-less ereports accept).
 */
static int
domain_detail(Oid type)
{
	Oid base = getBaseType(type);

	if (base == type)
		return 0;
	return errdetail("Type %s is a domain over %s: its CHECK constraints "
					 "would run wherever a watermark is read, whoever reads "
					 "it.",
					 format_type_be(type), format_type_be(base));
}

/*
 * etl_check_watermark_type raises 42804 when the watermark column's type
 * does not suit the pipeline's mode (a domain over a type that would suit
 * included).
 */
void
etl_check_watermark_type(EtlPipeline *p, Oid type)
{
	switch (p->mode)
	{
		case ETL_MODE_TIMESTAMP:
			if (etl_watermark_type_ok(p->mode, type))
				return;
			ereport(
				ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("watermark column \"%s\" of %s is of type %s, which "
						"mode timestamp cannot use",
						p->watermark_column, p->source, format_type_be(type)),
				 domain_detail(type),
				 errhint("Use a timestamptz or timestamp column, or mode => "
						 "'serial' for an increasing integer.")));
			break;
		case ETL_MODE_XID:
			if (etl_watermark_type_ok(p->mode, type))
				return;
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of %s is of type %s, not xid8",
							ETL_COL_XID, p->source, format_type_be(type)),
					 domain_detail(type),
					 errhint("Mode xid tracks changes through an xid8 column "
							 "filled by etl_track_changes(%s).",
							 quote_literal_cstr(p->source))));
			break;
		case ETL_MODE_CDC:
			if (etl_watermark_type_ok(p->mode, type))
				return;
			ereport(
				ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("watermark column \"%s\" of %s is of type %s, "
						"which mode cdc cannot use",
						p->watermark_column, p->source, format_type_be(type)),
				 domain_detail(type),
				 errhint("Order the change rows by a pg_lsn, integer, "
						 "numeric or timestamp column.")));
			break;
		case ETL_MODE_SERIAL:
			if (etl_watermark_type_ok(p->mode, type))
				return;
			ereport(
				ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("watermark column \"%s\" of %s is of type %s, which "
						"mode serial cannot use",
						p->watermark_column, p->source, format_type_be(type)),
				 domain_detail(type),
				 errhint("Use an integer column filled from a sequence, or "
						 "mode => 'timestamp' for a timestamp.")));
			break;
		default:
			break;
	}
}

typedef struct WatermarkErrorArg
{
	const char *pipeline;
	const char *text;
} WatermarkErrorArg;

static void
watermark_error_callback(void *arg)
{
	WatermarkErrorArg *a = arg;

	errcontext("watermark \"%s\" of pipeline \"%s\"", a->text, a->pipeline);
}

/*
 * etl_watermark_datum converts watermark text (a stored watermark, a reset
 * value, a backfill bound) to a value of the watermark column's type: the
 * type's input function, under the pinned DateStyle, as the pipeline owner
 * in a security-restricted operation.  The type must be one the mode
 * accepts (42804 otherwise): never a domain, whose CHECK constraints could
 * run the code of the column's owner.  An unreadable value is reported with
 * the pipeline's name.
 */
Datum
etl_watermark_datum(EtlPipeline *p, const char *text, Oid type, int32 typmod)
{
	ErrorContextCallback errcb;
	WatermarkErrorArg arg = { p->name, text };
	EtlUserSwitch sw = { 0 };
	Oid typinput;
	Oid typioparam;
	Datum result;

	etl_check_watermark_type(p, type);
	errcb.callback = watermark_error_callback;
	errcb.arg = &arg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	getTypeInputInfo(type, &typinput, &typioparam);
	etl_become_owner(&sw, p->owner);
	result = OidInputFunctionCall(typinput, (char *) text, typioparam, typmod);
	etl_restore_user(&sw);
	error_context_stack = errcb.previous;
	return result;
}

/*
 * etl_watermark_is_finite tells whether a value of a watermark column's type
 * is a position: not NaN, infinity or -infinity (numeric, timestamp and
 * timestamptz; integers and pg_lsn always are).
 */
bool
etl_watermark_is_finite(Oid type, Datum value)
{
	switch (type)
	{
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return !TIMESTAMP_NOT_FINITE(DatumGetTimestamp(value));
		case NUMERICOID:
			return !numeric_is_nan(DatumGetNumeric(value)) &&
				   !numeric_is_inf(DatumGetNumeric(value));
		default:
			return true;
	}
}

/*
 * etl_check_watermark_finite refuses a watermark (text, read as value of
 * type) that is no position: NaN, infinity or -infinity.  stored: the
 * pipeline's stored watermark, which a run reads; else a value given to
 * etl_reset_watermark.
 */
void
etl_check_watermark_finite(EtlPipeline *p, const char *text, Oid type,
						   Datum value, bool stored)
{
	if (etl_watermark_is_finite(type, value))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("watermark \"%s\" of pipeline \"%s\" is not finite", text,
					p->name),
			 errdetail("A watermark is the position of the last row loaded: "
					   "no row lies past NaN or infinity, and every row lies "
					   "past -infinity."),
			 stored ? errhint("Reset it: SELECT etl_reset_watermark(%s, <last "
							  "loaded value>), or NULL to reload everything.",
							  quote_literal_cstr(p->name))
					: errhint("Give the last value loaded, or NULL to reload "
							  "everything.")));
}

/*
 * oldest_open_xact_start returns least(clock, start of the oldest open
 * transaction of another client backend or background worker connected to
 * this database).  The clock is read first: a transaction that starts
 * afterwards cannot write below it.
 */
static TimestampTz
oldest_open_xact_start(void)
{
	TimestampTz result = GetCurrentTimestamp();
	int n;

	if (!pgstat_track_activities)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("mode timestamp needs track_activities = on"),
			 errdetail(
				 "The safe upper bound of a run is the start of the oldest "
				 "open transaction, which only track_activities publishes."),
			 errhint("SET track_activities = on, or use mode => 'xid'.")));

	/* the backend status snapshot is per transaction: take a fresh one */
	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid <= 0 || be->st_procpid == MyProcPid ||
			be->st_databaseid != MyDatabaseId)
			continue;
		if (be->st_backendType != B_BACKEND &&
			be->st_backendType != B_BG_WORKER)
			continue;
		if (be->st_xact_start_timestamp != 0 &&
			be->st_xact_start_timestamp < result)
			result = be->st_xact_start_timestamp;
		/*
		 * A backend running a statement whose transaction has not published
		 * its start yet (the moments between taking the statement's
		 * timestamp, which becomes its now(), and starting the
		 * transaction): its statement start stands in.
		 */
		else if (be->st_xact_start_timestamp == 0 &&
				 (be->st_state == STATE_RUNNING ||
				  be->st_state == STATE_FASTPATH) &&
				 be->st_activity_start_timestamp != 0 &&
				 be->st_activity_start_timestamp < result)
			result = be->st_activity_start_timestamp;
	}
	pgstat_clear_backend_activity_snapshot();
	return result;
}

/*
 * watermark_as_timestamptz converts a timestamp-mode watermark to
 * timestamptz for comparisons with the clock.
 */
static TimestampTz
watermark_as_timestamptz(EtlRun *run, Datum value)
{
	if (run->wm_type == TIMESTAMPTZOID)
		return DatumGetTimestampTz(value);
	return DatumGetTimestampTz(
		DirectFunctionCall1(timestamp_timestamptz, value));
}

/*
 * begin_timestamp sets the range of a timestamp-mode run.
 */
static void
begin_timestamp(EtlRun *run)
{
	TimestampTz hi = oldest_open_xact_start();

	if (run->has_lo &&
		watermark_as_timestamptz(run, run->lo) > GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("watermark of pipeline \"%s\" is in the future",
						run->p->name),
				 errdetail("The watermark is %s; no run can have produced it.",
						   run->p->watermark),
				 errhint("Reset it: SELECT etl_reset_watermark(%s, <last "
						 "loaded value>), or NULL to reload everything.",
						 quote_literal_cstr(run->p->name))));

	run->has_hi = true;
	run->hi = TimestampTzGetDatum(hi);
	run->hi_type = TIMESTAMPTZOID;
	run->hi_inclusive = false;

	/*
	 * A prepared transaction that wrote the source has no backend to
	 * publish its start: its rows may carry any time before its PREPARE.
	 * Nothing new is taken until it is committed or rolled back.
	 */
	{
		char *gid = prepared_writer(run->source_relid);

		if (gid != NULL)
		{
			ereport(NOTICE,
					(errmsg("pipeline \"%s\" waits for prepared transaction "
							"%s, which wrote %s",
							run->p->name, quote_literal_cstr(gid),
							run->source_sql),
					 errdetail("Its rows may be older than any bound; "
							   "nothing new is taken until it commits or "
							   "rolls back.")));
			run->nothing = true;
		}
	}

	if (run->has_lo)
	{
		Interval *ov = run->p->overlap;
		bool zero = ov->time == 0 && ov->day == 0 && ov->month == 0;

		run->has_from = true;
		run->rereads = !zero;
		if (zero)
			run->from = run->lo;
		else if (run->wm_type == TIMESTAMPTZOID)
			run->from = DirectFunctionCall2(timestamptz_mi_interval, run->lo,
											IntervalPGetDatum(ov));
		else
			run->from = DirectFunctionCall2(timestamp_mi_interval, run->lo,
											IntervalPGetDatum(ov));
	}
}

/*
 * collect_written collects the relations whose writers a serial- or
 * cdc-mode run waits for: a table or materialized view itself, every
 * partition of a partitioned table (a writer may insert into a partition
 * directly), every relation a view reads, recursively.  Foreign tables
 * have no local writers: nothing to wait for (remote sources rely on
 * re-reads and the idempotent load).
 */
static bool collect_written_walker(Node *node, List **relids);

static void
collect_written(Oid relid, List **relids)
{
	if (list_member_oid(*relids, relid))
		return;
	switch (get_rel_relkind(relid))
	{
		case RELKIND_RELATION:
		case RELKIND_MATVIEW:
			*relids = lappend_oid(*relids, relid);
			break;
		case RELKIND_PARTITIONED_TABLE:
			*relids = list_concat_unique_oid(
				*relids, find_all_inheritors(relid, NoLock, NULL));
			break;
		case RELKIND_VIEW:
		{
			Relation view = relation_open(relid, AccessShareLock);
			Query *q = copyObject(get_view_query(view));

			relation_close(view, AccessShareLock);
			*relids = lappend_oid(*relids, relid);
			(void) query_tree_walker(q, collect_written_walker, relids,
									 QTW_EXAMINE_RTES_BEFORE);
			break;
		}
		default:
			break;
	}
}

static bool
collect_written_walker(Node *node, List **relids)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			collect_written(rte->relid, relids);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, collect_written_walker,
								 relids, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, collect_written_walker, relids);
}

/*
 * written_relids_arg starts args with one argument, the oid[] of the
 * relations behind the source (collect_written) and of the sequences
 * given; false when there is none (a foreign table).
 */
static bool
written_relids_arg(Oid source, List *sequences, EtlArgs *args)
{
	List *relids = NIL;
	Datum *elems;
	ListCell *lc;
	int i = 0;

	collect_written(source, &relids);
	relids = list_concat_unique_oid(relids, sequences);
	if (relids == NIL)
		return false;
	elems = palloc(sizeof(Datum) * list_length(relids));
	foreach (lc, relids)
		elems[i++] = ObjectIdGetDatum(lfirst_oid(lc));
	etl_args_init(args);
	etl_args_add(args, OIDARRAYOID,
				 PointerGetDatum(construct_array(elems, i, OIDOID, sizeof(Oid),
												 true, TYPALIGN_INT)),
				 false);
	return true;
}

/*
 * wait_for_writers waits until every transaction that holds a write lock
 * (RowExclusiveLock or stronger) on the relations behind the source, or on
 * one of the sequences given, has finished.  nextval() holds that lock on
 * its sequence until the end of the transaction that drew the value, so a
 * transaction holding an id it has not inserted yet is waited for as well.
 * Unlike WaitForLockers(ShareLock), it does not wait for VACUUM, ANALYZE or
 * CREATE INDEX CONCURRENTLY, which only hold ShareUpdateExclusiveLock.
 * Prepared transactions are waited for too.
 */
static void
wait_for_writers(Oid source, List *sequences)
{
	EtlArgs args;
	uint64 n;
	ListCell *lc;
	List *vxids = NIL;

	if (!written_relids_arg(source, sequences, &args))
		return;
	/* a prepared transaction (no pid) is waited for by its xid */
	n = etl_spi_exec(
		"SELECT DISTINCT l.virtualtransaction, t.transactionid::pg_catalog.text"
		" FROM pg_catalog.pg_locks l"
		" LEFT JOIN pg_catalog.pg_locks t ON l.pid IS NULL AND t.pid IS NULL"
		" AND t.locktype OPERATOR(pg_catalog.=) 'transactionid'"
		" AND t.virtualtransaction OPERATOR(pg_catalog.=) l.virtualtransaction"
		" WHERE l.locktype OPERATOR(pg_catalog.=) 'relation' AND l.granted"
		" AND l.database OPERATOR(pg_catalog.=) (SELECT oid FROM"
		" pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=)"
		" pg_catalog.current_database())"
		" AND l.relation OPERATOR(pg_catalog.=) ANY ($1)"
		" AND l.mode OPERATOR(pg_catalog.=) ANY ('{RowExclusiveLock,"
		"ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}')"
		" AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()",
		&args, SPI_OK_SELECT, InvalidSnapshot);
	for (uint64 r = 0; r < n; r++)
	{
		char *v = etl_spi_text(r, 0);
		char *xid = etl_spi_text(r, 1);
		VirtualTransactionId *vxid = palloc0(sizeof(VirtualTransactionId));
		char *slash = strchr(v, '/');

		if (xid != NULL)
		{
			vxid->backendId = InvalidBackendId;
			vxid->localTransactionId =
				(LocalTransactionId) strtoul(xid, NULL, 10);
		}
		else if (slash != NULL)
		{
			vxid->backendId = (BackendId) strtol(v, NULL, 10);
			vxid->localTransactionId =
				(LocalTransactionId) strtoul(slash + 1, NULL, 10);
			/* prepared without a transaction id: it writes nothing more */
			if (vxid->backendId == InvalidBackendId)
				continue;
		}
		else
			continue;
		vxids = lappend(vxids, vxid);
	}
	foreach (lc, vxids)
	{
		VirtualTransactionId *vxid = lfirst(lc);

		if (vxid->backendId == InvalidBackendId)
			XactLockTableWait((TransactionId) vxid->localTransactionId, NULL,
							  NULL, XLTW_None);
		else
			(void) VirtualXactLock(*vxid, true);
	}
}

/*
 * prepared_writer returns the gid of a prepared transaction holding a write
 * lock on a relation behind the source, or NULL.
 */
static char *
prepared_writer(Oid source)
{
	EtlArgs args;

	if (!written_relids_arg(source, NIL, &args))
		return NULL;
	if (etl_spi_exec(
			"SELECT x.gid FROM pg_catalog.pg_locks l"
			" JOIN pg_catalog.pg_locks t ON t.pid IS NULL"
			" AND t.locktype OPERATOR(pg_catalog.=) 'transactionid'"
			" AND t.virtualtransaction OPERATOR(pg_catalog.=)"
			" l.virtualtransaction"
			" JOIN pg_catalog.pg_prepared_xacts x ON x.transaction"
			" OPERATOR(pg_catalog.=) t.transactionid"
			" WHERE l.pid IS NULL"
			" AND l.locktype OPERATOR(pg_catalog.=) 'relation'"
			" AND l.relation OPERATOR(pg_catalog.=) ANY ($1)"
			" AND l.mode OPERATOR(pg_catalog.=) ANY ('{RowExclusiveLock,"
			"ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}')"
			" AND x.database OPERATOR(pg_catalog.=)"
			" pg_catalog.current_database() LIMIT 1",
			&args, SPI_OK_SELECT, InvalidSnapshot) == 0)
		return NULL;
	return etl_spi_text(0, 0);
}

/*
 * not_finite_sql returns the condition that col, a watermark column of
 * type, holds a value that is no position (NaN, infinity, -infinity), or
 * NULL when its type has none.
 */
static const char *
not_finite_sql(const char *col, Oid type)
{
	switch (type)
	{
		case NUMERICOID:
			return psprintf("%s = ANY ('{NaN,Infinity,-Infinity}')", col);
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return psprintf("%s = ANY ('{infinity,-infinity}')", col);
		default:
			return NULL;
	}
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
	const char *odd = not_finite_sql(col, run->wm_type);
	AttrNumber attnum =
		get_attnum(run->source_relid, run->p->watermark_column);
	HeapTuple tup;
	bool notnull;
	bool isnull;
	EtlArgs args;
	char *value;

	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(run->source_relid),
						  Int16GetDatum(attnum));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for attribute %d of relation %u",
			 attnum, run->source_relid);
	notnull = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
	ReleaseSysCache(tup);
	if (notnull && odd == NULL)
		return; /* an integer or pg_lsn column without NULLs */

	etl_args_init(&args);
	if (etl_spi_exec(
			psprintf("SELECT pg_catalog.to_jsonb(etl_s)::pg_catalog.text,"
					 " etl_s.%s::pg_catalog.text FROM %s AS etl_s WHERE %s%s%s"
					 " LIMIT 1",
					 col, run->source_sql,
					 notnull ? "" : psprintf("etl_s.%s IS NULL", col),
					 notnull || odd == NULL ? "" : " OR ",
					 odd ? psprintf("etl_s.%s", odd) : ""),
			&args, SPI_OK_SELECT, InvalidSnapshot) == 0)
		return;
	(void) etl_spi_datum(0, 1, &isnull);
	value = isnull ? "NULL" : etl_spi_text(0, 1);
	ereport(ERROR,
			(errcode(isnull ? ERRCODE_NULL_VALUE_NOT_ALLOWED
							: ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("a %s row of pipeline \"%s\" has %s%s in its watermark "
					"column \"%s\"",
					run->p->mode == ETL_MODE_CDC ? "change" : "source",
					run->p->name, isnull ? "no value" : "the value ",
					isnull ? "" : value, run->p->watermark_column),
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
 * begin_serial sets the range of a serial-mode run: the largest committed
 * value, then a wait for the source's current writers and for the
 * transactions that drew from the column's sequences.  Ids of a CACHE 1
 * sequence are handed out in order, so every id up to that value was drawn
 * before it was read: a transaction still holding one holds the sequence's
 * lock, and once it is gone every such id is committed or never will be.
 */
static void
begin_serial(EtlRun *run)
{
	EtlArgs args;
	bool isnull;
	Datum hi;

	check_positions(run);
	etl_args_init(&args);
	etl_spi_exec(psprintf("SELECT pg_catalog.max(%s) FROM %s",
						  quote_identifier(run->p->watermark_column),
						  run->source_sql),
				 &args, SPI_OK_SELECT, InvalidSnapshot);
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

		wait_for_writers(run->source_relid,
						 etl_column_sequences(run->source_relid,
											  run->p->watermark_column,
											  &unsafe));
	}
}

/*
 * etl_xid_watermark_is_local tells, without raising anything, whether an
 * xid-mode watermark was taken in this cluster (a bare snapshot counts as
 * this cluster's, as etl_xid_watermark_parse takes it).
 */
bool
etl_xid_watermark_is_local(const char *watermark)
{
	const char *slash = strchr(watermark, '/');
	char *end;
	uint64 sysid;

	if (slash == NULL)
		return true;
	errno = 0;
	sysid = strtou64(watermark, &end, 10);
	return errno == 0 && end == slash && sysid == GetSystemIdentifier();
}

/*
 * etl_xid_watermark_parse splits an xid-mode watermark
 * "<system identifier>/<pg_snapshot>" and checks that it was taken in this
 * cluster: xid8 values of another cluster (a restore, a pg_upgrade'd copy)
 * mean nothing here.  A bare snapshot is taken as this cluster's.  Returns
 * the snapshot text; raises 22023 for anything else.
 */
char *
etl_xid_watermark_parse(EtlPipeline *p, const char *watermark)
{
	const char *slash = strchr(watermark, '/');
	const char *snap = slash ? slash + 1 : watermark;
	uint64 here = GetSystemIdentifier();

	if (slash != NULL)
	{
		char *end;
		uint64 sysid;

		errno = 0;
		sysid = strtou64(watermark, &end, 10);
		if (errno != 0 || end != slash)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("watermark \"%s\" of pipeline \"%s\" is not a "
							"transaction snapshot",
							watermark, p->name),
					 errhint("An xid watermark is <system identifier>/<xmin>:"
							 "<xmax>:<xip list>, as pg_current_snapshot() "
							 "shows it.")));
		if (sysid != here)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("watermark of pipeline \"%s\" was taken in "
							"another cluster",
							p->name),
					 errdetail("It belongs to the cluster with system "
							   "identifier " UINT64_FORMAT
							   ", this one is " UINT64_FORMAT
							   "; transaction ids of one cluster mean nothing "
							   "in another (a restore or a copy).",
							   sysid, here),
					 errhint("After restoring a dump, run SELECT "
							 "etl_rebase_xid(%s); as the owner of the source: "
							 "the next run loads what was not loaded before "
							 "the dump.  Or reload from the start with "
							 "etl_reset_watermark(%s).",
							 quote_literal_cstr(p->source),
							 quote_literal_cstr(p->name))));
	}
	/* must read as a pg_snapshot */
	(void) DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(snap));
	return pstrdup(snap);
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
 * cmp_uint64 orders transaction ids for qsort.
 */
static int
cmp_uint64(const void *a, const void *b)
{
	uint64 x = *(const uint64 *) a;
	uint64 y = *(const uint64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * etl_xid_watermark_with returns the xid-mode watermark
 * "<system identifier>/<snapshot>" of this cluster for the text of a
 * pg_snapshot, with the given transaction ids added to its in-progress list
 * (those below its xmax; its xmin lowered to the smallest): rows stamped
 * with them count as not committed yet, and the next run takes them.
 */
char *
etl_xid_watermark_with(const char *snap, const uint64 *xids, int n)
{
	char *copy = pstrdup(snap);
	char *p = copy;
	char *colon;
	uint64 xmin;
	uint64 xmax;
	uint64 *all;
	int count = 0;
	StringInfoData buf;

	xmin = strtou64(p, &colon, 10);
	xmax = strtou64(colon + 1, &p, 10);
	p++; /* past the second colon */
	all = palloc(sizeof(uint64) * (strlen(p) / 2 + n + 1));
	while (*p != '\0')
	{
		all[count++] = strtou64(p, &p, 10);
		if (*p == ',')
			p++;
	}
	for (int i = 0; i < n; i++)
	{
		if (xids[i] >= xmax)
			continue;
		all[count++] = xids[i];
		xmin = Min(xmin, xids[i]);
	}
	qsort(all, count, sizeof(uint64), cmp_uint64);

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 UINT64_FORMAT "/" UINT64_FORMAT ":" UINT64_FORMAT ":",
					 GetSystemIdentifier(), xmin, xmax);
	for (int i = 0; i < count; i++)
	{
		if (i > 0 && all[i] == all[i - 1])
			continue;
		appendStringInfo(&buf, "%s" UINT64_FORMAT, i > 0 ? "," : "", all[i]);
	}
	return buf.data;
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
 * etl_check_backfill_mode raises 0A000 for a pipeline whose mode has no
 * watermark column to take a range of (modes xid, snapshot, full).
 */
void
etl_check_backfill_mode(EtlPipeline *p)
{
	if (p->mode != ETL_MODE_TIMESTAMP && p->mode != ETL_MODE_SERIAL &&
		p->mode != ETL_MODE_CDC)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pipeline \"%s\" of mode %s cannot be backfilled by "
						"range",
						p->name, etl_mode_names[p->mode]),
				 errhint("Backfill needs a watermark column (modes timestamp, "
						 "serial, cdc); reset the watermark to reload a "
						 "pipeline of mode xid, and modes snapshot and full "
						 "read everything at each run.")));
}

/*
 * etl_check_keyless_reload refuses, unless force, to read again the rows a
 * pipeline that appends without a key has loaded (a backfill, a watermark
 * reset): load append without a key inserts every row it reads, so each of
 * those rows would be in the target twice.  action says what was asked
 * ("backfill", "reset the watermark of"); forced_call is the call that
 * does it anyway, for the hint.
 */
void
etl_check_keyless_reload(EtlPipeline *p, const char *action, bool force,
						 const char *forced_call)
{
	if (force || p->load != ETL_LOAD_APPEND || p->key != NIL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s pipeline \"%s\": it appends without a key",
					action, p->name),
			 errdetail("Load append without a key inserts every row it "
					   "reads, so the rows it loaded before would be in the "
					   "target twice."),
			 errhint("Delete those rows from the target first and call %s, "
					 "or give the pipeline a key: etl_alter_pipeline(%s, "
					 "key => ARRAY[...]).",
					 forced_call, quote_literal_cstr(p->name))));
}

/*
 * begin_range sets the range of a backfill step, [range_from, range_to)
 * as asked, in place of the watermark's.
 */
static void
begin_range(EtlRun *run)
{
	EtlPipeline *p = run->p;

	etl_check_backfill_mode(p);
	run->has_from = true;
	run->from_inclusive = true;
	run->rereads = false;
	run->from = etl_watermark_datum(p, run->req->range_from, run->wm_type,
									run->wm_typmod);
	run->has_hi = true;
	run->hi = etl_watermark_datum(p, run->req->range_to, run->wm_type,
								  run->wm_typmod);
	run->hi_type = run->wm_type;
	run->hi_inclusive = false;
	run->nothing = false;
}

/*
 * etl_extract_begin works out the range of a run: the stored watermark, the
 * safe upper bound (waiting where the mode needs it), the shared snapshot
 * and the batch_size cut.  Runs as the pipeline owner.
 */
void
etl_extract_begin(EtlRun *run)
{
	EtlPipeline *p = run->p;
	AttrNumber attnum;
	Oid collid;

	if (p->mode == ETL_MODE_FULL || p->mode == ETL_MODE_SNAPSHOT)
	{
		/* the whole source, every time */
		run->snapshot = RegisterSnapshot(GetLatestSnapshot());
		return;
	}

	attnum = get_attnum(run->source_relid, p->watermark_column);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("watermark column \"%s\" of pipeline \"%s\" no longer "
						"exists in %s",
						p->watermark_column, p->name, run->source_sql),
				 errhint("Restore the column, or change the pipeline with "
						 "etl_alter_pipeline(%s, watermark_column => ...).",
						 quote_literal_cstr(p->name))));
	get_atttypetypmodcoll(run->source_relid, attnum, &run->wm_type,
						  &run->wm_typmod, &collid);
	etl_check_watermark_type(p, run->wm_type);

	run->has_lo = p->watermark != NULL;
	if (run->has_lo && p->mode != ETL_MODE_XID)
	{
		run->lo =
			etl_watermark_datum(p, p->watermark, run->wm_type, run->wm_typmod);
		etl_check_watermark_finite(p, p->watermark, run->wm_type, run->lo,
								   true);
	}

	switch (p->mode)
	{
		case ETL_MODE_TIMESTAMP:
			begin_timestamp(run);
			break;
		case ETL_MODE_SERIAL:
		case ETL_MODE_CDC:
			/* change rows are ordered like ids: max, then the writers */
			begin_serial(run);
			break;
		case ETL_MODE_XID:
			begin_xid(run);
			break;
		default:
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("mode %s is not supported yet",
								   etl_mode_names[p->mode])));
	}

	if (run->req != NULL && run->req->range_from != NULL)
		begin_range(run);

	run->snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (p->mode == ETL_MODE_XID)
		run->xid_cur = xid_snapshot_watermark(run);

	if (p->batch_size > 0 && !run->nothing && !run->from_inclusive)
	{
		EtlArgs args;
		bool isnull;
		Datum cutoff;

		etl_run_args(run, &args);
		if (etl_spi_exec(etl_deparse_cutoff(run), &args, SPI_OK_SELECT,
						 run->snapshot) > 0)
		{
			cutoff = etl_spi_datum(0, 0, &isnull);
			run->has_cutoff = !isnull;
			run->cutoff = isnull
							  ? (Datum) 0
							  : datumCopy(cutoff, get_typbyval(run->wm_type),
										  get_typlen(run->wm_type));
		}
	}
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
	if (etl_spi_exec(etl_deparse_cdc_bad_operations(run, op), &args,
					 SPI_OK_SELECT, run->snapshot) == 0)
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
 * etl_extract_stats counts the rows of the range (-1: counted by the load,
 * see etl_deparse_stats()) and sets the run's watermarks (from: the stored
 * one; to: the largest value extracted, or the stored one when nothing
 * newer came).  Rows whose watermark column is NULL are never in a range.
 */
void
etl_extract_stats(EtlRun *run)
{
	EtlArgs args;

	run->rec.watermark_from = run->p->watermark;
	run->rec.watermark_to = run->p->watermark;
	if (run->p->mode == ETL_MODE_XID)
		run->rec.watermark_to = run->xid_cur; /* whatever the range holds */
	if (run->from_inclusive)
	{
		/* a backfill step: its range; the watermark is not its business */
		run->rec.watermark_from = pstrdup(run->req->range_from);
		run->rec.watermark_to = pstrdup(run->req->range_to);
	}
	if (run->nothing)
		return;

	if (run->p->mode == ETL_MODE_SNAPSHOT ||
		(run->p->mode == ETL_MODE_FULL && run->map->one_to_one))
	{
		run->rec.rows_extracted = -1; /* the load counts them */
		return;
	}
	if (run->map->one_to_one)
		(void) etl_target_is_empty(run); /* whether to count (deparse) */
	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_stats(run), &args, SPI_OK_SELECT, run->snapshot);
	if (run->p->mode == ETL_MODE_FULL)
	{
		run->rec.rows_extracted = etl_spi_int64(0, 0, 0);
		return;
	}
	if (etl_spi_isnull(0, 1))
		return; /* nothing in the range */
	run->rec.rows_extracted = etl_spi_int64(0, 0, 0);
	if (run->rereads)
		run->rec.rows_new = etl_spi_int64(0, 3, -1);

	/*
	 * column 2 tells whether the newest value is past the stored watermark;
	 * a value that is no position (a first run over rows at -infinity) is
	 * never stored: the next run would take nothing past it
	 */
	if (run->p->mode != ETL_MODE_XID && !run->from_inclusive)
	{
		bool isnull;
		bool topnull;
		Datum newer = etl_spi_datum(0, 2, &isnull);
		Datum top = etl_spi_datum(0, 1, &topnull);

		if ((isnull || DatumGetBool(newer)) &&
			etl_watermark_is_finite(run->wm_type, top))
			run->rec.watermark_to = etl_spi_text(0, 1);
	}

	if (run->p->mode == ETL_MODE_CDC)
		check_cdc_operations(run);
}

/*
 * etl_extract_end releases the run's snapshot.
 */
void
etl_extract_end(EtlRun *run)
{
	if (run->snapshot != NULL)
	{
		UnregisterSnapshot(run->snapshot);
		run->snapshot = NULL;
	}
}
