/*-------------------------------------------------------------------------
 *
 * track.c
 *	  Change tracking for mode xid: etl_track_changes() (api/track.c) equips
 *	  a table with the column _etl_xid xid8 (the top-level transaction id of
 *	  the last writer of each row) and an index on it, and this file's
 *	  trigger sets that column on every INSERT and UPDATE, whatever value
 *	  the row brings
 *	  (an INSERT ... SELECT * from a copy, an explicit value, COPY with the
 *	  column, logical replication: the trigger is enabled ALWAYS).
 *
 *	  Rows can also arrive without being written: a table attached as a
 *	  partition, or made a child by INHERIT, brings rows stamped by their
 *	  old writers, which pipelines may have passed.  The event trigger
 *	  etl_track_attach refuses that unless every such row carries the
 *	  attaching transaction's id (the hint says how), and a run checks that
 *	  every table behind its source is tracked (etl_track_check).
 *
 * IDENTIFICATION
 *	  src/modes/track.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/event_trigger.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/xid8.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "modes/track.h"
#include "sql/names.h"

PG_FUNCTION_INFO_V1(etl_track_changes_trigger);
PG_FUNCTION_INFO_V1(etl_track_attach);

/*
 * etl_track_changes_trigger() RETURNS trigger
 *
 * BEFORE INSERT OR UPDATE FOR EACH ROW: sets the new row's _etl_xid to the
 * current top-level transaction id (rows written in a subtransaction carry
 * the id that commits them), whatever the row brought.  A row that already
 * carries it (the column default) is returned as it is.
 */
Datum
etl_track_changes_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation rel;
	HeapTuple tuple;
	int attnum;
	Datum value;
	Datum old;
	bool isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ||
		  TRIGGER_FIRED_BY_INSERT(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("etl_track_changes_trigger() must run BEFORE INSERT "
						"OR UPDATE FOR EACH ROW")));
	rel = td->tg_relation;
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple
												  : td->tg_trigtuple;
	attnum = SPI_fnumber(RelationGetDescr(rel), ETL_COL_XID);
	if (attnum <= 0 ||
		TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid != XID8OID)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("table %s has no xid8 column \"%s\"",
							   RelationGetRelationName(rel), ETL_COL_XID),
						errhint("Run SELECT etl_track_changes(%s);",
								quote_literal_cstr(etl_relation_sql(
									RelationGetRelid(rel))))));
	value = FullTransactionIdGetDatum(GetTopFullTransactionId());
	old = heap_getattr(tuple, attnum, RelationGetDescr(rel), &isnull);
	if (!isnull && DatumGetFullTransactionId(old).value ==
					   DatumGetFullTransactionId(value).value)
		return PointerGetDatum(tuple);
	isnull = false;
	return PointerGetDatum(heap_modify_tuple_by_cols(
		tuple, RelationGetDescr(rel), 1, &attnum, &value, &isnull));
}

/*
 * track_trigger_function returns the OID of etl_track_changes_trigger().
 */
static Oid
track_trigger_function(void)
{
	return LookupFuncName(list_make2(makeString("etl_internal"),
									 makeString("etl_track_changes_trigger")),
						  0, NULL, false);
}

/*
 * etl_track_find_trigger returns the tracking trigger of a table (one calling
 * etl_track_changes_trigger(), its own or cloned from a partitioned
 * parent), copied into *out; false when it has none.
 */
bool
etl_track_find_trigger(Oid relid, Trigger *out)
{
	Relation rel = relation_open(relid, AccessShareLock);
	Oid func = track_trigger_function();
	bool found = false;

	if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers && !found; i++)
		{
			Trigger *t = &rel->trigdesc->triggers[i];

			if (t->tgfoid == func)
			{
				*out = *t;
				out->tgname = pstrdup(t->tgname);
				found = true;
			}
		}
	}
	relation_close(rel, AccessShareLock);
	return found;
}

/*
 * etl_track_refuse_swap refuses (0A000) load partition_swap into a target
 * that tracks its changes for mode xid: the partitions a swap attaches hold
 * rows copied with the _etl_xid they had, changed ones included, so the
 * pipelines reading the target would miss those changes (and the event
 * trigger refuses the ATTACH).
 */
void
etl_track_refuse_swap(EtlPipeline *p, Oid target)
{
	Trigger t;

	if (!etl_track_find_trigger(target, &t))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("load partition_swap cannot write to %s, which tracks "
					"its changes for mode xid",
					p->target),
			 errdetail("The partitions a swap attaches hold rows copied with "
					   "the %s they had, changed rows included: pipelines "
					   "of mode xid reading %s would miss the changes.",
					   ETL_COL_XID, p->target),
			 errhint("Use load => 'merge' for pipeline \"%s\".", p->name)));
}

/*
 * track_trigger_ok tells whether a tracking trigger fires BEFORE INSERT OR
 * UPDATE FOR EACH ROW and is enabled in ordinary sessions.
 */
static bool
track_trigger_ok(Trigger *t)
{
	return (t->tgtype & ETL_TRACK_TGTYPE) == ETL_TRACK_TGTYPE &&
		   (t->tgenabled == TRIGGER_FIRES_ALWAYS ||
			t->tgenabled == TRIGGER_FIRES_ON_ORIGIN);
}

/*
 * etl_track_check refuses (55000) to run a pipeline of mode xid over a
 * source holding rows of a table whose changes are not tracked: a table or
 * partition without the tracking trigger (an inheritance child, whose
 * parent's triggers do not fire for it), with the trigger disabled or
 * firing on UPDATE only (made by an older etl_track_changes), or a foreign
 * table (whose transaction ids are another cluster's).
 */
void
etl_track_check(EtlPipeline *p, Oid source)
{
	List *rels = find_all_inheritors(source, NoLock, NULL);
	ListCell *lc;

	foreach (lc, rels)
	{
		Oid relid = lfirst_oid(lc);
		char kind = get_rel_relkind(relid);
		Trigger t;

		if (kind == RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("source %s of pipeline \"%s\" holds foreign "
							"table %s, whose changes mode xid cannot track",
							p->source, p->name, etl_relation_sql(relid)),
					 errdetail("Transaction ids are only meaningful for the "
							   "tables of this cluster."),
					 errhint("Detach it, or use mode => 'timestamp' with an "
							 "overlap.")));
		if (kind != RELKIND_RELATION)
			continue;
		if (etl_track_find_trigger(relid, &t) && track_trigger_ok(&t))
			continue;
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("source %s of pipeline \"%s\" holds rows of %s, "
					"which does not track its changes",
					p->source, p->name, etl_relation_sql(relid)),
			 errdetail("Mode xid needs the trigger %s, enabled and firing "
					   "BEFORE INSERT OR UPDATE FOR EACH ROW, on every "
					   "table behind the source; %s.",
					   ETL_TRACK_TRIGGER,
					   !etl_track_find_trigger(relid, &t) ? "this one has none"
					   : (t.tgtype & ETL_TRACK_TGTYPE) != ETL_TRACK_TGTYPE
						   ? "this one does not fire on INSERT"
						   : "this one is disabled"),
			 errhint("Run SELECT etl_track_changes(%s); as the owner of "
					 "the table.",
					 quote_literal_cstr(get_rel_relispartition(relid)
											? p->source
											: etl_relation_sql(relid)))));
	}
}

/*
 * check_attached refuses to add table child to the tracked table parent
 * (ATTACH PARTITION, INHERIT) while any row of child carries an _etl_xid
 * other than this transaction's: stamped by writers the pipelines of the
 * parent may have passed, it would never be loaded.  Rows stamped by this
 * transaction are loaded by each pipeline's first run after it commits.
 */
static void
check_attached(Oid parent, Oid child, const char *verb)
{
	Trigger t;
	EtlArgs args;
	EtlEntry e;
	char *child_sql;

	if (!OidIsValid(parent) || !OidIsValid(child) ||
		!etl_track_find_trigger(parent, &t))
		return;
	if (get_attnum(child, ETL_COL_XID) == InvalidAttrNumber ||
		get_atttype(child, get_attnum(child, ETL_COL_XID)) != XID8OID)
		return; /* PostgreSQL refuses it: the columns do not match */
	child_sql = etl_relation_sql(child);

	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	etl_args_init(&args);
	etl_args_add(&args, XID8OID,
				 FullTransactionIdGetDatum(GetTopFullTransactionId()), false);
	if (etl_spi_exec(
			psprintf("SELECT 1 FROM %s WHERE %s OPERATOR(pg_catalog.<)"
					 " $1 OR %s OPERATOR(pg_catalog.>) $1 LIMIT 1",
					 child_sql, ETL_COL_XID, ETL_COL_XID),
			&args, SPI_OK_SELECT, InvalidSnapshot) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s %s to %s, which tracks its changes for "
						"mode xid",
						verb, child_sql, etl_relation_sql(parent)),
				 errdetail("Rows of %s carry the %s of their last writer, "
						   "which the pipelines of mode xid may have passed: "
						   "they would never be loaded.",
						   child_sql, ETL_COL_XID),
				 errhint("In the same transaction, first run UPDATE %s SET "
						 "%s = pg_catalog.pg_current_xact_id(); the next run "
						 "of each pipeline then loads those rows.",
						 child_sql, ETL_COL_XID)));
	etl_entry_end(&e);
}

/*
 * etl_track_attach() RETURNS event_trigger
 *
 * ddl_command_end of ALTER TABLE: applies check_attached to each ATTACH
 * PARTITION and INHERIT of the statement.  Does nothing for any other
 * command, or when the tables involved are not tracked.
 */
Datum
etl_track_attach(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	AlterTableStmt *stmt;
	ListCell *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("etl_track_attach() must run as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (trigdata->parsetree == NULL ||
		!IsA(trigdata->parsetree, AlterTableStmt))
		PG_RETURN_VOID();
	stmt = (AlterTableStmt *) trigdata->parsetree;
	foreach (lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);
		Oid rel;

		if (!IsA(cmd, AlterTableCmd) ||
			(cmd->subtype != AT_AttachPartition &&
			 cmd->subtype != AT_AddInherit) ||
			cmd->def == NULL)
			continue;
		rel = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (cmd->subtype == AT_AttachPartition && IsA(cmd->def, PartitionCmd))
			check_attached(rel,
						   RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
											NoLock, true),
						   "attach");
		else if (cmd->subtype == AT_AddInherit && IsA(cmd->def, RangeVar))
			check_attached(
				RangeVarGetRelid((RangeVar *) cmd->def, NoLock, true), rel,
				"add");
	}
	PG_RETURN_VOID();
}
