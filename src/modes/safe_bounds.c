/*-------------------------------------------------------------------------
 *
 * safe_bounds.c
 *	  What a run waits for, or stays below, so that no late commit is lost:
 *	  the oldest transaction open in the database, the writers of the
 *	  source and of the sequences its column draws from, a prepared
 *	  transaction that wrote the source (the modes' begin uses them).
 *
 * IDENTIFICATION
 *	  src/modes/safe_bounds.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_inherits.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "access/relation.h"
#include "storage/lmgr.h"
#include "utils/backend_status.h"
#include "utils/lsyscache.h"

#include "base/spi_util.h"
#include "modes/safe_bounds.h"

/*
 * etl_oldest_open_xact_start returns least(clock, start of the oldest open
 * transaction of another client backend or background worker connected to
 * this database).  The clock is read first: a transaction that starts
 * afterwards cannot write below it.
 */
TimestampTz
etl_oldest_open_xact_start(void)
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

static bool collect_written_walker(Node *node, List **relids);

/*
 * collect_written collects the relations whose writers a serial- or
 * cdc-mode run waits for: a table or materialized view itself, every
 * partition of a partitioned table (a writer may insert into a partition
 * directly), every relation a view reads, recursively.  Foreign tables
 * have no local writers: nothing to wait for (remote sources rely on
 * re-reads and the idempotent load).
 */
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

/*
 * collect_written_walker collects, with collect_written(), the relations a
 * view's query reads.
 */
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
 * etl_wait_for_writers waits until every transaction that holds a write lock
 * (RowExclusiveLock or stronger) on the relations behind the source, or on
 * one of the sequences given, has finished.  nextval() holds that lock on
 * its sequence until the end of the transaction that drew the value, so a
 * transaction holding an id it has not inserted yet is waited for as well.
 * Unlike WaitForLockers(ShareLock), it does not wait for VACUUM, ANALYZE or
 * CREATE INDEX CONCURRENTLY, which only hold ShareUpdateExclusiveLock.
 * Prepared transactions are waited for too.
 */
void
etl_wait_for_writers(Oid source, List *sequences)
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
 * etl_prepared_writer returns the gid of a prepared transaction holding a write
 * lock on a relation behind the source, or NULL.
 */
char *
etl_prepared_writer(Oid source)
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
