/*-------------------------------------------------------------------------
 *
 * track.c
 *	  Change tracking for mode xid: etl_track_changes() equips a table with
 *	  the column _etl_xid xid8 (the top-level transaction id of the last
 *	  writer of each row: DEFAULT pg_current_xact_id() on insert, this
 *	  file's trigger on update) and an index on it.
 *
 * IDENTIFICATION
 *	  src/track.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/xid8.h"

#include "catalog.h"
#include "deparse.h"
#include "security.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(etl_track_changes);
PG_FUNCTION_INFO_V1(etl_track_changes_trigger);

/* the name of the trigger etl_track_changes() creates */
#define TRACK_TRIGGER "etl_track_changes"

/*
 * etl_track_changes_trigger() RETURNS trigger
 *
 * BEFORE UPDATE FOR EACH ROW: sets the new row's _etl_xid to the current
 * top-level transaction id (rows written in a subtransaction carry the id
 * that commits them).
 */
Datum
etl_track_changes_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation rel;
	int attnum;
	Datum value;
	bool isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("etl_track_changes_trigger() must run BEFORE UPDATE "
						"FOR EACH ROW")));
	rel = td->tg_relation;
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
	return PointerGetDatum(heap_modify_tuple_by_cols(
		td->tg_newtuple, RelationGetDescr(rel), 1, &attnum, &value, &isnull));
}

/*
 * has_xid_index tells whether the table has an index whose first column is
 * _etl_xid.
 */
static bool
has_xid_index(Oid relid, AttrNumber attnum)
{
	Relation rel = table_open(relid, AccessShareLock);
	List *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	bool found = false;

	foreach (lc, indexes)
	{
		HeapTuple tup =
			SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			continue;
		if (((Form_pg_index) GETSTRUCT(tup))->indkey.values[0] == attnum)
			found = true;
		ReleaseSysCache(tup);
	}
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * has_track_trigger tells whether the table has the tracking trigger.
 */
static bool
has_track_trigger(Oid relid)
{
	EtlArgs args;

	etl_args_init(&args);
	etl_args_add(&args, OIDOID, ObjectIdGetDatum(relid), false);
	etl_args_add_text(&args, TRACK_TRIGGER);
	return etl_spi_exec(
			   "SELECT 1 FROM pg_catalog.pg_trigger"
			   " WHERE tgrelid OPERATOR(pg_catalog.=) $1"
			   " AND tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name"
			   " AND tgparentid OPERATOR(pg_catalog.=) 0",
			   &args, SPI_OK_SELECT, InvalidSnapshot) > 0;
}

/*
 * etl_track_changes(source regclass) RETURNS text
 *
 * Prepares a table for mode xid: adds _etl_xid xid8 NOT NULL DEFAULT
 * pg_current_xact_id() (existing rows get this transaction's id: the next
 * run of a pipeline takes them all), the BEFORE UPDATE trigger that keeps
 * it current, and an index on it; each only if missing.  Owner only.
 * Returns what it did.
 */
Datum
etl_track_changes(PG_FUNCTION_ARGS)
{
	Oid relid;
	char kind;
	char *rel_sql;
	AttrNumber attnum;
	List *done = NIL;
	StringInfoData result;
	ListCell *lc;
	int nestlevel;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("source must not be NULL")));
	relid = PG_GETARG_OID(0);
	kind = get_rel_relkind(relid);
	if (kind == '\0')
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("relation with OID %u does not exist", relid)));
	rel_sql = etl_relation_sql(relid);
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table", rel_sql),
				 errhint("Track the changes of the table the view or foreign "
						 "table reads, in its own cluster.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("must be owner of table %s to track its changes", rel_sql),
			 errhint("Ask its owner to run SELECT etl_track_changes(%s);",
					 quote_literal_cstr(rel_sql))));

	etl_spi_connect();
	nestlevel = etl_pin_settings();

	attnum = get_attnum(relid, ETL_COL_XID);
	if (attnum == InvalidAttrNumber)
	{
		etl_spi_exec(
			psprintf("ALTER TABLE %s ADD COLUMN %s pg_catalog.xid8"
					 " NOT NULL DEFAULT pg_catalog.pg_current_xact_id()",
					 rel_sql, ETL_COL_XID),
			NULL, SPI_OK_UTILITY, InvalidSnapshot);
		done = lappend(done, "added column " ETL_COL_XID);
		attnum = get_attnum(relid, ETL_COL_XID);
	}
	else if (get_atttype(relid, attnum) != XID8OID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("column \"%s\" of %s is of type %s, not xid8",
							   ETL_COL_XID, rel_sql,
							   format_type_be(get_atttype(relid, attnum))),
						errhint("Rename or drop that column first.")));

	if (!has_track_trigger(relid))
	{
		etl_spi_exec(psprintf("CREATE TRIGGER %s BEFORE UPDATE ON %s"
							  " FOR EACH ROW EXECUTE FUNCTION"
							  " etl_internal.etl_track_changes_trigger()",
							  quote_identifier(TRACK_TRIGGER), rel_sql),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		done = lappend(done, "created trigger " TRACK_TRIGGER);
	}

	if (!has_xid_index(relid, attnum))
	{
		etl_spi_exec(psprintf("CREATE INDEX ON %s (%s)", rel_sql, ETL_COL_XID),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		done = lappend(done, "created an index on " ETL_COL_XID);
	}

	etl_unpin_settings(nestlevel);
	etl_spi_finish();

	initStringInfo(&result);
	foreach (lc, done)
		appendStringInfo(&result, "%s%s",
						 foreach_current_index(lc) ? ", " : "",
						 (char *) lfirst(lc));
	if (done == NIL)
		appendStringInfo(&result, "%s already tracks its changes", rel_sql);
	PG_RETURN_TEXT_P(cstring_to_text(result.data));
}
