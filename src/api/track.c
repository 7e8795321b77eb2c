/*-------------------------------------------------------------------------
 *
 * track.c
 *	  etl_track_changes(): prepares a table for mode xid, whose change
 *	  tracking (the trigger, the guard of ATTACH and INHERIT, the check of a
 *	  run) is modes/track.c's.
 *
 * IDENTIFICATION
 *	  src/api/track.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "api/table_arg.h"
#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "modes/track.h"
#include "sql/names.h"

PG_FUNCTION_INFO_V1(etl_track_changes);

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
 * create_track_trigger creates the tracking trigger on a table (cloned to
 * its partitions), firing ALWAYS: also in sessions replaying changes with
 * session_replication_role = replica (logical replication), whose rows
 * would otherwise keep the publisher's transaction ids.
 */
static void
create_track_trigger(const char *rel_sql)
{
	etl_spi_exec(psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s"
						  " FOR EACH ROW EXECUTE FUNCTION"
						  " etl_internal.etl_track_changes_trigger()",
						  quote_identifier(ETL_TRACK_TRIGGER), rel_sql),
				 NULL, SPI_OK_UTILITY, InvalidSnapshot);
	etl_spi_exec(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", rel_sql,
						  quote_identifier(ETL_TRACK_TRIGGER)),
				 NULL, SPI_OK_UTILITY, InvalidSnapshot);
}

/*
 * ensure_track_trigger gives a table the tracking trigger if it has none,
 * and replaces one that does not fire on INSERT (made by an older version).
 * Returns what it did, or NULL.
 */
static char *
ensure_track_trigger(Oid relid, const char *rel_sql)
{
	Trigger t;

	if (!etl_track_find_trigger(relid, &t))
	{
		create_track_trigger(rel_sql);
		return "created trigger " ETL_TRACK_TRIGGER;
	}
	if ((t.tgtype & ETL_TRACK_TGTYPE) == ETL_TRACK_TGTYPE)
		return NULL;
	if (t.tgisclone)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("trigger %s of %s comes from its partitioned table",
					quote_identifier(t.tgname), rel_sql),
			 errhint("Run etl_track_changes() on the partitioned table.")));
	etl_spi_exec(
		psprintf("DROP TRIGGER %s ON %s", quote_identifier(t.tgname), rel_sql),
		NULL, SPI_OK_UTILITY, InvalidSnapshot);
	create_track_trigger(rel_sql);
	return "made trigger " ETL_TRACK_TRIGGER " fire on INSERT too";
}

/*
 * enable_track_triggers enables ALWAYS the tracking trigger of a table and
 * of each of its partitions where it is not (disabled, or enabled for
 * origin or replica sessions only).  Returns what it did, or NULL.
 */
static char *
enable_track_triggers(Oid relid)
{
	List *rels = find_all_inheritors(relid, NoLock, NULL);
	ListCell *lc;
	int n = 0;

	foreach (lc, rels)
	{
		Oid r = lfirst_oid(lc);
		Trigger t;

		if (r != relid && !get_rel_relispartition(r))
			continue; /* an inheritance child tracks itself */
		if (!etl_track_find_trigger(r, &t) ||
			t.tgenabled == TRIGGER_FIRES_ALWAYS)
			continue;
		etl_spi_exec(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
							  etl_relation_sql(r), quote_identifier(t.tgname)),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		n++;
	}
	return n > 0
			   ? psprintf("enabled trigger " ETL_TRACK_TRIGGER " ALWAYS on %d "
						  "table%s",
						  n, n > 1 ? "s" : "")
			   : NULL;
}

/*
 * etl_track_changes(source regclass) RETURNS text
 *
 * Prepares a table for mode xid: adds _etl_xid xid8 NOT NULL DEFAULT
 * pg_current_xact_id() (existing rows get this transaction's id: the next
 * run of a pipeline takes them all), the BEFORE INSERT OR UPDATE trigger
 * that stamps it, enabled ALWAYS (on every partition too), and an index on
 * it; each only if missing.  A trigger made by an older version, firing on
 * UPDATE only, is replaced.  Owner only.  Returns what it did.
 */
Datum
etl_track_changes(PG_FUNCTION_ARGS)
{
	static const EtlTableArgText text_arg = {
		.function = "etl_track_changes",
		.purpose = "track its changes",
		.not_table_hint = "Track the changes of the table the view or "
						  "foreign table reads, in its own cluster.",
	};
	Oid relid;
	char *rel_sql;
	AttrNumber attnum;
	List *done = NIL;
	StringInfoData result;
	ListCell *lc;
	EtlEntry e;
	char *what;
	text *out;

	relid = etl_owned_table_arg(fcinfo, &e, &text_arg, &rel_sql);

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

	if ((what = ensure_track_trigger(relid, rel_sql)) != NULL)
		done = lappend(done, what);
	if ((what = enable_track_triggers(relid)) != NULL)
		done = lappend(done, what);

	if (!has_xid_index(relid, attnum))
	{
		etl_spi_exec(psprintf("CREATE INDEX ON %s (%s)", rel_sql, ETL_COL_XID),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		done = lappend(done, "created an index on " ETL_COL_XID);
	}

	initStringInfo(&result);
	foreach (lc, done)
		appendStringInfo(&result, "%s%s",
						 foreach_current_index(lc) ? ", " : "",
						 (char *) lfirst(lc));
	if (done == NIL)
		appendStringInfo(&result, "%s already tracks its changes", rel_sql);
	out = etl_entry_text(&e, result.data);
	etl_entry_end(&e);
	PG_RETURN_TEXT_P(out);
}
