/*-------------------------------------------------------------------------
 *
 * sequences.c
 *	  The sequences a serial-mode watermark column draws its ids from, so
 *	  that a run can wait for the transactions holding ids drawn but not yet
 *	  inserted (mode_serial.c), and a definition can refuse cached sequences
 *	  and warn about ids no sequence hands out (mode_serial.c).
 *
 *	  nextval() takes RowExclusiveLock on the sequence, for the top-level
 *	  transaction, and keeps it until that transaction ends
 *	  (lock_and_open_sequence in PostgreSQL's sequence.c).  A transaction
 *	  that drew an id it has not committed yet therefore shows up among the
 *	  sequence's lockers, whether or not it has written the table.
 *
 * IDENTIFICATION
 *	  src/modes/sequences.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "modes/sequences.h"

/*
 * find_nextval_walker collects the sequences a column default draws from
 * (nextval of a constant regclass); sets *other when it calls nextval on
 * anything else.
 */
typedef struct NextvalContext
{
	List *seqs;
	bool other;
} NextvalContext;

static bool
find_nextval_walker(Node *node, NextvalContext *cxt)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == F_NEXTVAL)
	{
		Node *arg = linitial(((FuncExpr *) node)->args);

		if (IsA(arg, Const) && !((Const *) arg)->constisnull)
			cxt->seqs = list_append_unique_oid(
				cxt->seqs, DatumGetObjectId(((Const *) arg)->constvalue));
		else
			cxt->other = true;
	}
	return expression_tree_walker(node, find_nextval_walker, cxt);
}

/*
 * relation_sequences adds to *seqs the sequences a table's column draws
 * from (its identity sequence, the nextval() calls of its default).
 * Returns false when the column has neither, or its default calls nextval()
 * on a sequence it names only at run time.
 */
static bool
relation_sequences(Oid relid, const char *column, List **seqs)
{
	AttrNumber attnum = get_attnum(relid, column);
	NextvalContext cxt = { NIL, false };
	Relation rel;
	Node *def;
	Oid identity;

	if (attnum == InvalidAttrNumber)
		return false;
	identity = getIdentitySequence(relid, attnum, true);
	if (OidIsValid(identity))
		cxt.seqs = lappend_oid(cxt.seqs, identity);
	rel = relation_open(relid, AccessShareLock);
	def = build_column_default(rel, attnum);
	relation_close(rel, AccessShareLock);
	(void) find_nextval_walker(def, &cxt);
	*seqs = list_concat_unique_oid(*seqs, cxt.seqs);
	return cxt.seqs != NIL && !cxt.other;
}

/*
 * etl_column_sequences returns the sequences a serial-mode run must wait
 * for the lockers of: those the watermark column of the source and of each
 * of its partitions draws from.  *unsafe is set to a sentence saying why
 * the ids of the source cannot all be waited for (NULL when they can): a view or foreign
 * table, whose writers are elsewhere, or a column whose ids come from no
 * sequence of its own (set by clients, or by a function).  A materialized
 * view is safe: REFRESH writes it, whose lock the run waits for.
 */
List *
etl_column_sequences(Oid source, const char *column, const char **unsafe)
{
	List *seqs = NIL;
	ListCell *lc;
	List *parts;

	*unsafe = NULL;
	switch (get_rel_relkind(source))
	{
		case RELKIND_MATVIEW:
			return NIL;
		case RELKIND_VIEW:
			*unsafe = "It is a view: a run cannot tell which sequences "
					  "the ids of the tables behind it come from.";
			return NIL;
		case RELKIND_FOREIGN_TABLE:
			*unsafe = "It is a foreign table: its writers are on another "
					  "server.";
			return NIL;
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
			break;
		default:
			return NIL;
	}
	if (!relation_sequences(source, column, &seqs))
		*unsafe = "Its ids come from no sequence named by the column's "
				  "default or identity: a run cannot see a transaction that "
				  "holds an id it has not inserted yet.";
	if (get_rel_relkind(source) != RELKIND_PARTITIONED_TABLE)
		return seqs;
	parts = find_all_inheritors(source, NoLock, NULL);
	foreach (lc, parts)
	{
		if (lfirst_oid(lc) != source)
			(void) relation_sequences(lfirst_oid(lc), column, &seqs);
	}
	return seqs;
}
