/*-------------------------------------------------------------------------
 *
 * fence.c
 *	  What code run for a pipeline may not leave in the caller's session.
 *
 *	  Every entry point of etl_ext runs between etl_pin_settings() and
 *	  etl_unpin_settings() (security.c), which the entry protocol calls
 *	  (entry.c): one GUC nest level that is rolled back at its end, so no
 *	  setting changed inside survives the call.  The
 *	  owner's code (transforms, source views, triggers, domain and check
 *	  expressions) runs in there as the pipeline owner inside a
 *	  security-restricted operation, where PostgreSQL 15 already refuses
 *	  temporary tables, views and sequences, types in a temporary schema,
 *	  PREPARE, LISTEN, UNLISTEN, DISCARD, cursors WITH HOLD and SET ROLE or
 *	  SESSION AUTHORIZATION.  It still allows what this file refuses while
 *	  the fence is up:
 *	  - session-level advisory locks: pg_advisory_lock*, pg_try_advisory_lock*
 *		(exclusive and shared), their unlocks and pg_advisory_unlock_all,
 *		whose effect would outlive the call (the _xact_ variants, released
 *		with the transaction, stay allowed);
 *	  - other objects in the session's temporary schema (functions,
 *		operators, aggregates, collations ...), which would live as long as
 *		the caller's session.
 *
 *	  Built-in functions bypass fmgr hooks, so the lock functions are
 *	  refused through the object access hook at the point where the
 *	  executor prepares each function call (OAT_FUNCTION_EXECUTE, after the
 *	  EXECUTE privilege check): every way SQL, PL/pgSQL or a constraint can
 *	  call a function passes there.
 *
 *	  Whether the fence is up is the internal setting etl.fence, set on in
 *	  the nest level of etl_pin_settings(): it goes away exactly when that
 *	  level does, at etl_unpin_settings() or when an error unwinds it, and
 *	  no SQL can change it.
 *
 * IDENTIFICATION
 *	  src/base/fence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "base/fence.h"

static bool etl_fenced = false;
static object_access_hook_type prev_object_access_hook = NULL;

/*
 * session_lock_function tells whether a function takes or releases a
 * session-level advisory lock.
 */
static bool
session_lock_function(Oid funcid)
{
	switch (funcid)
	{
		case F_PG_ADVISORY_LOCK_INT8:
		case F_PG_ADVISORY_LOCK_SHARED_INT8:
		case F_PG_TRY_ADVISORY_LOCK_INT8:
		case F_PG_TRY_ADVISORY_LOCK_SHARED_INT8:
		case F_PG_ADVISORY_UNLOCK_INT8:
		case F_PG_ADVISORY_UNLOCK_SHARED_INT8:
		case F_PG_ADVISORY_LOCK_INT4_INT4:
		case F_PG_ADVISORY_LOCK_SHARED_INT4_INT4:
		case F_PG_TRY_ADVISORY_LOCK_INT4_INT4:
		case F_PG_TRY_ADVISORY_LOCK_SHARED_INT4_INT4:
		case F_PG_ADVISORY_UNLOCK_INT4_INT4:
		case F_PG_ADVISORY_UNLOCK_SHARED_INT4_INT4:
		case F_PG_ADVISORY_UNLOCK_ALL:
			return true;
		default:
			return false;
	}
}

/*
 * created_temporary tells whether the object just created (classId,
 * objectId) lies in this session's temporary schema, indexes and TOAST
 * tables aside: etl_ext indexes its own work tables there, and PostgreSQL
 * refuses the temporary relations that could carry them in a
 * security-restricted operation.  The catalog row is read with SnapshotSelf:
 * the command that inserted it has not ended yet.
 */
static bool
created_temporary(Oid classId, Oid objectId)
{
	AttrNumber nsp_attnum;
	Relation rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tup;
	bool result = false;

	if (!is_objectclass_supported(classId))
		return false;
	nsp_attnum = get_object_attnum_namespace(classId);
	if (nsp_attnum == InvalidAttrNumber)
		return false;

	rel = table_open(classId, AccessShareLock);
	ScanKeyInit(&key, get_object_attnum_oid(classId), BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(objectId));
	scan = systable_beginscan(rel, get_object_oid_index(classId), true,
							  SnapshotSelf, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool isnull;
		Datum nsp =
			heap_getattr(tup, nsp_attnum, RelationGetDescr(rel), &isnull);

		result = !isnull && isTempOrTempToastNamespace(DatumGetObjectId(nsp));
		if (result && classId == RelationRelationId)
		{
			char relkind = ((Form_pg_class) GETSTRUCT(tup))->relkind;

			result = relkind != RELKIND_INDEX &&
					 relkind != RELKIND_PARTITIONED_INDEX &&
					 relkind != RELKIND_TOASTVALUE;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * fence_object_access is the object access hook (chained after any earlier
 * one): while the fence is up it refuses the session-level advisory lock
 * functions, and temporary objects created in a security-restricted
 * operation (the owner's code; etl_ext creates its own work tables outside
 * one).
 */
static void
fence_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (!etl_fenced)
		return;

	if (access == OAT_FUNCTION_EXECUTE && session_lock_function(objectId))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot call %s in code that etl_ext runs",
						get_func_name(objectId)),
				 errdetail("A session-level advisory lock taken or released "
						   "by a pipeline's transform, source, trigger, "
						   "domain or check would outlive the call in the "
						   "caller's session."),
				 errhint("Use the transaction-level functions "
						 "pg_advisory_xact_lock and "
						 "pg_try_advisory_xact_lock.")));

	if (access == OAT_POST_CREATE && subId == 0 &&
		InSecurityRestrictedOperation() &&
		created_temporary(classId, objectId))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot create temporary objects in code that "
						"etl_ext runs"),
				 errdetail("An object in the temporary schema created by a "
						   "pipeline's transform, source, trigger, domain or "
						   "check would outlive the call in the caller's "
						   "session."),
				 errhint("Create it in a schema of the pipeline owner.")));
}

/*
 * etl_fence_init defines the internal setting etl.fence and installs the
 * object access hook.  Called once, from _PG_init.
 */
void
etl_fence_init(void)
{
	DefineCustomBoolVariable(
		"etl.fence", "Shows whether code runs inside an etl_ext call.",
		"Set by etl_ext for the duration of each call; no SQL can change it.",
		&etl_fenced, false, PGC_INTERNAL,
		GUC_NO_SHOW_ALL | GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE |
			GUC_DISALLOW_IN_FILE,
		NULL, NULL, NULL);

	prev_object_access_hook = object_access_hook;
	object_access_hook = fence_object_access;
}

/*
 * etl_fence_begin raises the fence in the current GUC nest level (opened
 * by etl_pin_settings()); it comes down with that level.
 */
void
etl_fence_begin(void)
{
	(void) set_config_option("etl.fence", "on", PGC_INTERNAL, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}
