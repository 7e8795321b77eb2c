/*-------------------------------------------------------------------------
 *
 * security.c
 *	  Identities and settings under which etl_ext runs SQL.
 *
 *	  Three identities take part in a run:
 *	  - the caller of an etl_* function, checked against the pipeline owner
 *		(etl_check_pipeline_owner);
 *	  - the pipeline owner, as whom every data statement (extract, transform,
 *		load) runs inside a security-restricted operation, as REFRESH
 *		MATERIALIZED VIEW does: a superuser or a pg_cron job running someone's
 *		pipeline lends it no rights, and the owner's code cannot change the
 *		caller's session (CVE-2022-1552);
 *	  - the extension owner, as whom catalog rows are written after the
 *		ownership check (PUBLIC can only read the catalogs).
 *
 *	  Every entry point pins search_path (ETL_PINNED_SEARCH_PATH), DateStyle,
 *	  IntervalStyle and standard_conforming_strings for its whole duration
 *	  in a GUC nest level, so that no function or operator planted in a
 *	  schema of the caller's search_path is ever resolved inside etl_ext,
 *	  watermarks print in one format, and a transform's string literals
 *	  mean the same whoever runs it (a backslash is a backslash).  That
 *	  level is the fence around the owner's code: it is rolled back at the
 *	  end of the call, as REFRESH MATERIALIZED VIEW does, so whatever the
 *	  owner's code SETs (search_path, statement_timeout, ...) is gone when
 *	  the call returns, and fence.c refuses what else it could leave in the
 *	  caller's session (session-level advisory locks, temporary objects).
 *	  Errors unwind both (transaction and subtransaction abort restore the
 *	  user id and pop GUC nest levels).
 *
 * IDENTIFICATION
 *	  src/base/security.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "base/fence.h"
#include "base/security.h"
#include "base/settings.h"

/*
 * pin_settings sets, in the current GUC nest level, the settings every
 * etl_ext statement runs under.
 */
static void
pin_settings(void)
{
	(void) set_config_option("search_path", ETL_PINNED_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
							 0, false);
	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* transforms and check expressions lex the same whoever runs them */
	(void) set_config_option("standard_conforming_strings", "on", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	/*
	 * every statement is planned with its values: a generic plan would not
	 * hash "= ANY" over an array parameter (checks/), nor size the range
	 */
	(void) set_config_option("plan_cache_mode", "force_custom_plan",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
							 0, false);
}

/*
 * etl_become_owner switches to the pipeline owner for data statements, in a
 * security-restricted operation and a GUC nest level of its own: whatever
 * the owner's code SETs is rolled back by etl_restore_user(), so the rest of
 * the call runs under the pinned settings again.
 */
void
etl_become_owner(EtlUserSwitch *sw, Oid owner)
{
	GetUserIdAndSecContext(&sw->saved_userid, &sw->saved_sec_context);
	sw->nestlevel = NewGUCNestLevel();
	SetUserIdAndSecContext(owner, sw->saved_sec_context |
									  SECURITY_LOCAL_USERID_CHANGE |
									  SECURITY_RESTRICTED_OPERATION);
	sw->active = true;
}

/*
 * etl_become_extension_owner switches to the owner of the extension for a
 * catalog write, in a GUC nest level with the pinned settings set again (the
 * owner's code may have changed them earlier in an enclosing stretch).
 * Callers check ownership of the pipeline first.
 */
void
etl_become_extension_owner(EtlUserSwitch *sw)
{
	Oid extowner = etl_extension_owner();

	GetUserIdAndSecContext(&sw->saved_userid, &sw->saved_sec_context);
	sw->nestlevel = NewGUCNestLevel();
	pin_settings();
	SetUserIdAndSecContext(extowner, sw->saved_sec_context |
										 SECURITY_LOCAL_USERID_CHANGE |
										 SECURITY_RESTRICTED_OPERATION);
	sw->active = true;
}

/*
 * etl_restore_user undoes etl_become_owner() or etl_become_extension_owner():
 * the user id and security context, and every setting changed since (the
 * switch's GUC nest level is rolled back).  On error there is nothing to
 * undo: (sub)transaction abort restores the user id and security context
 * and pops GUC nest levels.
 */
void
etl_restore_user(EtlUserSwitch *sw)
{
	if (!sw->active)
		return;
	SetUserIdAndSecContext(sw->saved_userid, sw->saved_sec_context);
	AtEOXact_GUC(false, sw->nestlevel);
	sw->active = false;
}

/*
 * etl_pin_settings opens a GUC nest level with the settings every etl_ext
 * statement runs under, raises the fence (fence.c) in it and returns it for
 * etl_unpin_settings().
 */
int
etl_pin_settings(void)
{
	int nestlevel = NewGUCNestLevel();

	etl_fence_begin();
	pin_settings();
	return nestlevel;
}

/*
 * etl_unpin_settings restores the caller's settings exactly: every change
 * made since etl_pin_settings(), by etl_ext or by the owner's code, SET or
 * SET LOCAL, is rolled back, and the fence comes down.  Nothing etl_ext
 * sets in there is meant to outlive the call.
 */
void
etl_unpin_settings(int nestlevel)
{
	AtEOXact_GUC(false, nestlevel);
}

/*
 * etl_extension_owner returns the role that owns the extension: the owner of
 * the schema etl, which the install script creates.
 */
Oid
etl_extension_owner(void)
{
	Oid nspid = get_namespace_oid(ETL_SCHEMA, false);
	HeapTuple tup;
	Oid owner;

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nspid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nspid);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * etl_check_role_exists fails when the owner of a pipeline has been dropped.
 */
void
etl_check_role_exists(const char *pipeline, Oid owner)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("owner of pipeline \"%s\" no longer exists", pipeline),
				 errdetail("The pipeline belonged to role %u.", owner),
				 errhint("Drop the pipeline with etl_drop_pipeline() as a "
						 "superuser and create it again.")));
}

/*
 * etl_check_pipeline_owner raises 42501 unless the current user has the
 * privileges of the pipeline owner (the owner itself, a member of the
 * owner role, or a superuser).  action names what was refused ("run",
 * "alter", ...).
 */
void
etl_check_pipeline_owner(const char *pipeline, Oid owner, const char *action)
{
	if (has_privs_of_role(GetUserId(), owner))
		return;
	ereport(
		ERROR,
		(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		 errmsg("must be owner of pipeline \"%s\" to %s it", pipeline, action),
		 errdetail("Pipeline \"%s\" belongs to role \"%s\".", pipeline,
				   GetUserNameFromId(owner, true)
					   ? GetUserNameFromId(owner, true)
					   : "(dropped)"),
		 errhint("Ask its owner, a member of role \"%s\", or a superuser.",
				 GetUserNameFromId(owner, true)
					 ? GetUserNameFromId(owner, true)
					 : "(dropped)")));
}
