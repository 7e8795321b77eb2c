/*-------------------------------------------------------------------------
 *
 * swap_guard.c
 *	  What load partition_swap refuses, so that a swap never breaks what
 *	  users attach to its target: targets a swap cannot keep intact, and
 *	  swaps the lock table cannot hold.
 *
 *	  A swap writes a partition's rows into a staging table, drops the
 *	  partition and attaches the staging table in its place.  That breaks:
 *
 *	  - Publications.  The rows go into a table that is not yet a
 *		partition: a publication of the target (FOR TABLE, with or without
 *		publish_via_partition_root) or of one of its partitions carries
 *		none of them, and none of the rows the dropped partition held, so
 *		its subscribers drift without an error; FOR ALL TABLES and FOR
 *		TABLES IN SCHEMA carry them as inserts into the staging table, which
 *		the subscribers do not have, so they stop.  A target that any
 *		publication of inserts, updates or deletes reaches is refused.
 *	  - Foreign keys that reference the target (or one of its
 *		partitions): the rows they reference are dropped with the
 *		partition, which PostgreSQL refuses (23503 or 2BP01).  Refused.
 *	  - Sub-partitions: a partition that is partitioned itself cannot be
 *		rebuilt as one table.  Refused (the pipeline can target that
 *		partition instead).
 *	  - Constraints named like those the swap adds to its own tables: the
 *		copy of the template's constraints and the swap's would clash
 *		(42710).  ETL_SWAP_BOUND on the target or a partition (the
 *		templates of staging tables), ETL_SWAP_PARENT on the target (the
 *		template of the batch table, which gets it when the target is
 *		itself a partition, as it may become later).  Refused.
 *
 *	  Each is checked when the pipeline is defined and again by each run
 *	  before it builds anything, as a publication, a foreign key or a
 *	  sub-partition may be added later.  The checks read the catalogs
 *	  without locking the partitions (a target may have thousands).
 *
 *	  Lock slots.  A swap holds locks on every table and index it creates
 *	  or drops until the transaction ends, and the shared lock table holds
 *	  max_locks_per_transaction per backend slot for all sessions together.
 *	  A swap that cannot fit even when no one else holds a lock is refused
 *	  before it builds anything; one that runs out of slots on the way
 *	  fails with an error naming max_locks_per_transaction and its limit.
 *
 * IDENTIFICATION
 *	  src/loads/swap_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/twophase.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "partitioning/partdesc.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "loads/swap_guard.h"
#include "sql/deparse_swap.h"
#include "sql/names.h"

/*
 * referencing_constraint returns a foreign key constraint that references
 * relation relid (one with an action trigger on it), or InvalidOid.
 */
static Oid
referencing_constraint(Oid relid)
{
	Relation tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tup;
	Oid result = InvalidOid;

	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 1,
							  &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);

		if (OidIsValid(t->tgconstraint) &&
			RI_FKey_trigger_type(t->tgfoid) == RI_TRIGGER_PK)
		{
			result = t->tgconstraint;
			break;
		}
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return result;
}

/*
 * check_referenced refuses a target (or a partition of it, relid) that a
 * foreign key references: the swap drops the rows it references.
 */
static void
check_referenced(EtlPipeline *p, Oid relid)
{
	Oid con = referencing_constraint(relid);
	HeapTuple tup;
	Oid conrelid;

	if (!OidIsValid(con))
		return;
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(con));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for constraint %u", con);
	conrelid = ((Form_pg_constraint) GETSTRUCT(tup))->conrelid;
	ReleaseSysCache(tup);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("load partition_swap cannot rebuild %s: foreign key "
					"\"%s\" of %s references it",
					etl_relation_sql(relid), get_constraint_name(con),
					etl_relation_sql(conrelid)),
			 errdetail("A swap drops the partitions it rebuilds, and with "
					   "them the rows the foreign key references; "
					   "PostgreSQL refuses that."),
			 errhint("Use load => 'merge' for target %s of pipeline "
					 "\"%s\", or drop the foreign key.",
					 p->target, p->name)));
}

/*
 * publishes_changes tells whether publication pubid publishes inserts,
 * updates or deletes (the changes a swap would have to carry), with its
 * name in *name.
 */
static bool
publishes_changes(Oid pubid, char **name)
{
	Publication *pub = GetPublication(pubid);

	*name = pub->name;
	return pub->pubactions.pubinsert || pub->pubactions.pubupdate ||
		   pub->pubactions.pubdelete;
}

/*
 * refuse_publication raises the error of a target that publication name
 * reaches: through relid (a table the publication names: the target, an
 * ancestor or a partition of it), through schema nsp (FOR TABLES IN
 * SCHEMA), or through every table (FOR ALL TABLES: both invalid).
 */
static void
refuse_publication(EtlPipeline *p, const char *name, Oid relid, Oid nsp)
{
	const char *how;
	const char *detail;

	if (OidIsValid(relid))
	{
		how = psprintf("FOR TABLE %s", etl_relation_sql(relid));
		detail = "A swap writes the rows of a partition into a staging "
				 "table and attaches it in place of the partition: the "
				 "publication carries none of those rows nor the removal "
				 "of the replaced ones, so its subscribers would drift "
				 "without an error.";
	}
	else
	{
		how = OidIsValid(nsp)
				  ? psprintf("FOR TABLES IN SCHEMA %s",
							 quote_identifier(get_namespace_name(nsp)))
				  : "FOR ALL TABLES";
		detail = "A swap writes the rows of a partition into a staging "
				 "table and attaches it in place of the partition: the "
				 "publication would carry them as inserts into a table its "
				 "subscribers do not have, which stops them, and never "
				 "carry the removal of the replaced rows.";
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("load partition_swap cannot replicate target %s: "
					"publication \"%s\" publishes it (%s)",
					p->target, name, how),
			 errdetail("%s", detail),
			 errhint("Use load => 'merge' for a published target (pipeline "
					 "\"%s\"): it writes row changes, which replicate.",
					 p->name)));
}

/*
 * check_publications refuses a target that a publication of changes
 * reaches: FOR ALL TABLES, FOR TABLE the target, one of its ancestors or
 * of its partitions, FOR TABLES IN SCHEMA the schema of one of those
 * (staging tables are created in the partitions' schemas, new partitions
 * in the target's).
 */
static void
check_publications(EtlPipeline *p, Oid target, PartitionDesc pd)
{
	List *rels =
		list_concat(list_make1_oid(target), get_partition_ancestors(target));
	List *schemas = NIL;
	char *name;
	ListCell *lc;
	ListCell *pc;

	foreach (lc, GetAllTablesPublications())
		if (publishes_changes(lfirst_oid(lc), &name))
			refuse_publication(p, name, InvalidOid, InvalidOid);
	for (int i = 0; i < pd->nparts; i++)
		rels = lappend_oid(rels, pd->oids[i]);
	foreach (lc, rels)
	{
		Oid relid = lfirst_oid(lc);

		foreach (pc, GetRelationPublications(relid))
			if (publishes_changes(lfirst_oid(pc), &name))
				refuse_publication(p, name, relid, InvalidOid);
		schemas = list_append_unique_oid(schemas, get_rel_namespace(relid));
	}
	foreach (lc, schemas)
		foreach (pc, GetSchemaPublications(lfirst_oid(lc)))
			if (publishes_changes(lfirst_oid(pc), &name))
				refuse_publication(p, name, InvalidOid, lfirst_oid(lc));
}

/*
 * check_constraint_name refuses a constraint named name on the target
 * (relid) or, with pd, one of its partitions: the swap gives a constraint
 * of its own that name on the tables it builds like them.  One scan of
 * pg_constraint's index on the name.
 */
static void
check_constraint_name(EtlPipeline *p, Oid relid, PartitionDesc pd,
					  const char *name)
{
	Relation conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tup;
	Oid found = InvalidOid;

	ScanKeyInit(&key, Anum_pg_constraint_conname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(name));
	scan = systable_beginscan(conrel, ConstraintNameNspIndexId, true, NULL, 1,
							  &key);
	while (!OidIsValid(found) &&
		   HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Oid conrelid = ((Form_pg_constraint) GETSTRUCT(tup))->conrelid;

		if (conrelid == relid)
			found = conrelid;
		for (int i = 0; pd != NULL && !OidIsValid(found) && i < pd->nparts;
			 i++)
			if (conrelid == pd->oids[i])
				found = conrelid;
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	if (OidIsValid(found))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("constraint \"%s\" of %s has a name load "
						"partition_swap reserves",
						name, etl_relation_sql(found)),
				 errdetail("Pipeline \"%s\" builds tables like the "
						   "target's partitions, with their constraints and "
						   "a constraint of its own of that name.",
						   p->name),
				 errhint("Rename the constraint: ALTER TABLE %s RENAME "
						 "CONSTRAINT %s TO ...;",
						 etl_relation_sql(found), quote_identifier(name))));
}

/*
 * etl_swap_check_target refuses a partition_swap target (rel, of
 * pipeline p) that a swap would break: a partition that is partitioned
 * itself, a foreign key referencing the target or a partition, a
 * publication reaching them, a constraint of a name the swap gives its
 * own (see the file's header).  Called when the
 * pipeline is defined and by each run before it builds anything; reads
 * the catalogs without locking the partitions.
 */
void
etl_swap_check_target(EtlPipeline *p, Relation rel)
{
	PartitionDesc pd = RelationGetPartitionDesc(rel, true);

	for (int i = 0; i < pd->nparts; i++)
		if (get_rel_relkind(pd->oids[i]) == RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("load partition_swap cannot rebuild partition %s "
							"of target %s: it is partitioned itself",
							etl_relation_sql(pd->oids[i]), p->target),
					 errdetail("A swap rebuilds a partition as one table; "
							   "pipeline \"%s\" would have to rebuild "
							   "sub-partitions.",
							   p->name),
					 errhint("Use load => 'merge' for this target, or make "
							 "the sub-partitioned partition the target of "
							 "the pipeline.")));
	check_referenced(p, RelationGetRelid(rel));
	for (int i = 0; i < pd->nparts; i++)
		check_referenced(p, pd->oids[i]);
	check_publications(p, RelationGetRelid(rel), pd);
	/* the staging tables are built like the partitions and the target */
	check_constraint_name(p, RelationGetRelid(rel), pd, ETL_SWAP_BOUND);
	/* the batch table like the target, once it is a partition itself */
	check_constraint_name(p, RelationGetRelid(rel), NULL, ETL_SWAP_PARENT);
}

/*
 * lock_table_size returns how many locks the shared lock table holds for
 * all sessions together: max_locks_per_transaction per backend slot and
 * per prepared transaction.
 */
static int64
lock_table_size(void)
{
	return (int64) max_locks_per_xact * (MaxBackends + max_prepared_xacts);
}

/*
 * etl_swap_lock_slots_error raises 53200 for a swap of nparts partitions of
 * the target of p that needs more locks than the lock table holds: needed,
 * a least estimate (0: unknown, it ran out of slots on the way).
 */
void
etl_swap_lock_slots_error(EtlPipeline *p, int nparts, int64 needed)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("pipeline \"%s\" runs out of lock slots swapping %d "
					"partitions of target %s",
					p->name, nparts, p->target),
			 needed > 0
				 ? errdetail("The swap holds at least " INT64_FORMAT " locks "
							 "until the transaction ends (one per table and "
							 "index it creates or drops), and the lock table "
							 "holds " INT64_FORMAT " for all sessions: "
							 "max_locks_per_transaction (%d) times %d backend "
							 "slots and prepared transactions.",
							 needed, lock_table_size(), max_locks_per_xact,
							 MaxBackends + max_prepared_xacts)
				 : errdetail("The swap holds a lock on each table and index "
							 "it creates or drops until the transaction ends, "
							 "and the lock table, shared by all sessions, "
							 "holds " INT64_FORMAT ": max_locks_per_"
							 "transaction (%d) times %d backend slots and "
							 "prepared transactions.",
							 lock_table_size(), max_locks_per_xact,
							 MaxBackends + max_prepared_xacts),
			 errhint("Raise max_locks_per_transaction (a restart is needed), "
					 "or load in committed steps that touch fewer partitions "
					 "each (CALL etl_backfill with a step of one partition, "
					 "or etl_catch_up with a smaller batch_size).")));
}

/*
 * etl_swap_check_lock_slots refuses, before anything is built, a swap of
 * nparts partitions that needs at least needed locks when the lock table
 * cannot hold that many even with no other lock taken.
 */
void
etl_swap_check_lock_slots(EtlPipeline *p, int nparts, int64 needed)
{
	if (needed > lock_table_size())
		etl_swap_lock_slots_error(p, nparts, needed);
}

/*
 * etl_swap_out_of_lock_slots tells whether edata is the lock manager
 * running out of lock table slots (53200 "out of shared memory", whose
 * hint names max_locks_per_transaction), as opposed to memory or
 * predicate locks running out.
 */
bool
etl_swap_out_of_lock_slots(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY &&
		   edata->message_id != NULL &&
		   strcmp(edata->message_id, "out of shared memory") == 0 &&
		   edata->hint != NULL &&
		   strstr(edata->hint, "max_locks_per_transaction") != NULL;
}
