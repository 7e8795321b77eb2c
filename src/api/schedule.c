/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  Scheduling pipelines with pg_cron: etl_schedule, etl_unschedule,
 *	  etl_schedules (etl.status.schedule and schedule_elsewhere), the job of
 *	  a dropped pipeline, and whether pg_cron started a run.
 *
 *	  A pipeline's job is the pg_cron job named etl:<pipeline> of the
 *	  pipeline's owner, in the pipeline's database, whose command is
 *	  SELECT etl_run('<pipeline>') (the name as a literal).  pg_cron names
 *	  jobs per role (cron.job is unique on jobname, username), so the job is
 *	  found by name, owner and database.
 *
 *	  Where jobs live: pg_cron keeps its jobs in cron.job of one database,
 *	  cron.database_name, and its functions exist only there.  From any
 *	  other database they cannot be called without a connection to that
 *	  database (dblink, a loopback, a background worker connecting there),
 *	  which would make scheduling a second transaction that a rollback here
 *	  does not undo.  So etl_schedule and etl_unschedule work in the cron
 *	  database, transactionally; elsewhere they fail (0A000) with a hint that
 *	  holds the pg_cron call to run in the cron database
 *	  (cron.schedule_in_database names the pipeline's database).  Without
 *	  pg_cron they fail with 55000, the code pg_cron itself uses when it is
 *	  not loaded: a prerequisite is missing, which the hint says how to add.
 *	  etl_schedules has no rows wherever cron.job cannot be read.
 *
 *	  Who schedules: pg_cron runs a job as the role that scheduled it, and
 *	  lets a role schedule as itself once it has USAGE on schema cron, and
 *	  for another role only if it is a superuser (cron.schedule_in_database
 *	  with username).  etl_schedule checks the caller against the pipeline
 *	  owner (etl_check_pipeline_owner), then:
 *	  - a superuser scheduling someone else's pipeline calls
 *		cron.schedule_in_database(..., username => owner);
 *	  - anyone else (the owner, or a member of the owner role, who may SET
 *		ROLE to it anyway) calls cron.schedule as the owner, so pg_cron's
 *		own checks apply to the owner.
 *	  Either way the job runs as the owner, never as the caller.  Reading
 *	  and removing the job (etl_unschedule, etl_drop_pipeline, status) use
 *	  the extension owner's rights (a superuser: CREATE EXTENSION etl_ext
 *	  needs one), after the ownership check: a job can only be removed or
 *	  shown, and the owner may drop a pipeline that a superuser scheduled
 *	  for it without USAGE on schema cron.
 *
 *	  Locking: etl_schedule and etl_unschedule hold a KEY SHARE lock on the
 *	  pipeline's row, which a drop (a DELETE) waits for and which waits for
 *	  a drop in progress; a drop removes the job after deleting the row, in
 *	  a statement that sees every job committed by then.  So no job outlives
 *	  its pipeline, and scheduling never waits for a run.
 *
 *	  Where a job runs: pg_cron connects to the job's nodename and nodeport
 *	  (filled from cron.host and the server's port when it was scheduled)
 *	  and database.  A dump restored onto another host, port or database
 *	  brings the old values along, and its jobs would run against the old
 *	  server.  etl_schedules (etl.status.schedule_elsewhere) shows such a
 *	  job, and etl_schedule re-creates it here (stale_job()).
 *
 *	  Who started a run: etl.runs.triggered_by is 'schedule' for runs that
 *	  pg_cron started (etl_started_by_pg_cron(), catalog/runs.c).  pg_cron
 *	  1.4 runs a job in one of two ways, and each leaves a mark that the
 *	  job's command cannot change:
 *	  - cron.use_background_workers = off (the default): the launcher opens
 *		a libpq connection with fallback_application_name = 'pg_cron', so
 *		the session starts with application_name 'pg_cron'.  The value the
 *		session started with is its RESET value, which a later SET does not
 *		change: a session that merely SETs application_name = 'pg_cron' is
 *		not taken for pg_cron.
 *	  - cron.use_background_workers = on: the job runs in a dynamic
 *		background worker of library pg_cron (bgw_type 'pg_cron').
 *	  A client that connects with application_name = 'pg_cron' is taken for
 *	  pg_cron: triggered_by records provenance, it grants nothing (the run's
 *	  rights are its owner's either way).
 *
 * IDENTIFICATION
 *	  src/api/schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "api/schedule.h"
#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "catalog/run_lock.h"
#include "catalog/runs.h"

PG_FUNCTION_INFO_V1(etl_schedule);
PG_FUNCTION_INFO_V1(etl_unschedule);
PG_FUNCTION_INFO_V1(etl_schedules);

/* the schema of pg_cron's tables and functions (not relocatable) */
#define CRON_SCHEMA "cron"

/* a pipeline's job is named JOB_PREFIX <pipeline> */
#define JOB_PREFIX "etl:"

/* whether pg_cron can take jobs from this database */
typedef enum CronState
{
	CRON_NOT_LOADED,	 /* not in shared_preload_libraries */
	CRON_NOT_CREATED,	 /* loaded, its database, no CREATE EXTENSION */
	CRON_OTHER_DATABASE, /* loaded, its jobs live in another database */
	CRON_READY
} CronState;

/* the pg_cron job of a pipeline */
typedef struct CronJob
{
	EtlPipeline *p;
	char *owner;	/* the owner's role name, as pg_cron stores it */
	char *jobname;	/* etl:<pipeline> */
	char *command;	/* SELECT etl_run('<pipeline>') */
	char *database; /* this database */
} CronJob;

/*
 * cron_state tells whether pg_cron takes jobs from this database.  *crondb
 * is set to cron.database_name when pg_cron is loaded, else to NULL.
 */
static CronState
cron_state(const char **crondb)
{
	const char *db = GetConfigOption("cron.database_name", true, false);

	*crondb = NULL;
	/* set in postgresql.conf without the library: a placeholder */
	if (db == NULL || (GetConfigOptionFlags("cron.database_name", true) &
					   GUC_CUSTOM_PLACEHOLDER) != 0)
		return CRON_NOT_LOADED;
	*crondb = pstrdup(db);
	if (strcmp(db, get_database_name(MyDatabaseId)) != 0)
		return CRON_OTHER_DATABASE;
	if (!OidIsValid(get_extension_oid(ETL_PG_CRON_NAME, true)))
		return CRON_NOT_CREATED;
	return CRON_READY;
}

/*
 * describe_job returns the job of a pipeline, or NULL when it cannot have
 * one: its owner was dropped, or its name does not fit a job name (pg_cron
 * stores job names as type name and would cut it, so that two pipelines
 * could share a job).  With must_exist, both are errors instead.
 */
static CronJob *
describe_job(EtlPipeline *p, bool must_exist)
{
	CronJob *job = palloc0(sizeof(CronJob));
	size_t len = strlen(JOB_PREFIX) + strlen(p->name);

	if (must_exist)
		etl_check_role_exists(p->name, p->owner);
	if (len >= NAMEDATALEN)
	{
		if (!must_exist)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("pipeline name \"%s\" is too long for a pg_cron job",
						p->name),
				 errdetail("Its job would be named \"%s%s\", %zu bytes long; "
						   "pg_cron job names hold at most %d bytes.",
						   JOB_PREFIX, p->name, len, NAMEDATALEN - 1),
				 errhint("Only pipelines whose names have at most %d bytes "
						 "can be scheduled.",
						 (int) (NAMEDATALEN - 1 - strlen(JOB_PREFIX)))));
	}
	job->owner = GetUserNameFromId(p->owner, true);
	if (job->owner == NULL)
		return NULL;
	job->p = p;
	job->jobname = psprintf("%s%s", JOB_PREFIX, p->name);
	job->command = psprintf("SELECT etl_run(%s)", quote_literal_cstr(p->name));
	job->database = get_database_name(MyDatabaseId);
	return job;
}

/*
 * schedule_in_cron_db_sql is the pg_cron call that schedules a pipeline of
 * this database from the cron database, for the hint of an error.
 */
static char *
schedule_in_cron_db_sql(CronJob *job, const char *expression)
{
	return psprintf(
		"SELECT cron.schedule_in_database(%s, %s, %s, %s, %s);",
		quote_literal_cstr(job->jobname), quote_literal_cstr(expression),
		quote_literal_cstr(job->command), quote_literal_cstr(job->database),
		quote_literal_cstr(job->owner));
}

/*
 * unschedule_in_cron_db_sql is the statement that removes the job of a
 * pipeline of this database in the cron database.
 */
static char *
unschedule_in_cron_db_sql(CronJob *job)
{
	return psprintf("SELECT cron.unschedule(jobid) FROM cron.job WHERE "
					"jobname = %s AND username = %s AND database = %s;",
					quote_literal_cstr(job->jobname),
					quote_literal_cstr(job->owner),
					quote_literal_cstr(job->database));
}

/*
 * require_cron raises the error of a state other than CRON_READY.  action
 * is "schedule" or "unschedule"; elsewhere_sql is what to run in the cron
 * database instead (NULL: nothing to say).
 */
static void
require_cron(CronState state, const char *crondb, EtlPipeline *p,
			 const char *action, const char *elsewhere_sql)
{
	const char *database = get_database_name(MyDatabaseId);

	switch (state)
	{
		case CRON_READY:
			return;
		case CRON_NOT_LOADED:
			ereport(
				ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s pipeline \"%s\": pg_cron is not installed",
						action, p->name),
				 errdetail("Pipelines are scheduled as pg_cron jobs, and "
						   "this server does not load pg_cron."),
				 errhint("Set shared_preload_libraries = 'pg_cron' in "
						 "postgresql.conf, restart the server, and run "
						 "CREATE EXTENSION pg_cron in the database named by "
						 "cron.database_name (default postgres).")));
			break;
		case CRON_NOT_CREATED:
			ereport(
				ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s pipeline \"%s\": extension \"pg_cron\" is "
						"not installed in database \"%s\"",
						action, p->name, database),
				 errdetail("pg_cron is loaded and keeps its jobs in this "
						   "database (cron.database_name)."),
				 errhint("Run CREATE EXTENSION pg_cron in database \"%s\".",
						 database)));
			break;
		case CRON_OTHER_DATABASE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot %s pipeline \"%s\" from database \"%s\"",
							action, p->name, database),
					 errdetail("pg_cron keeps its jobs in database \"%s\" "
							   "(cron.database_name), and its functions "
							   "exist only there.",
							   crondb),
					 elsewhere_sql
						 ? errhint("Connect to database \"%s\" as a superuser "
								   "and run: %s",
								   crondb, elsewhere_sql)
						 : errhint("Connect to database \"%s\" to manage "
								   "its jobs.",
								   crondb)));
			break;
	}
}

/*
 * check_owner_can_schedule checks what pg_cron needs of the role a job
 * runs as, so that a job is not created to fail at every tick (and the
 * errors pg_cron raises for these have no SQLSTATE): it can log in, may
 * connect to this database, and, when it schedules for itself
 * (as_owner), may use schema cron.
 */
static void
check_owner_can_schedule(CronJob *job, bool as_owner)
{
	HeapTuple tup;
	bool canlogin;

	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(job->p->owner));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for role %u", job->p->owner);
	canlogin = ((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin;
	ReleaseSysCache(tup);
	if (!canlogin)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("owner \"%s\" of pipeline \"%s\" cannot log in",
					job->owner, job->p->name),
			 errdetail("A pg_cron job runs in a session of the pipeline's "
					   "owner, which needs the LOGIN attribute."),
			 errhint("ALTER ROLE %s LOGIN;", quote_identifier(job->owner))));
	if (pg_database_aclcheck(MyDatabaseId, job->p->owner, ACL_CONNECT) !=
		ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("owner \"%s\" of pipeline \"%s\" may not connect to "
						"database \"%s\"",
						job->owner, job->p->name, job->database),
				 errdetail("A pg_cron job runs in a session of the pipeline's "
						   "owner."),
				 errhint("GRANT CONNECT ON DATABASE %s TO %s;",
						 quote_identifier(job->database),
						 quote_identifier(job->owner))));
	if (as_owner &&
		pg_namespace_aclcheck(get_namespace_oid(CRON_SCHEMA, false),
							  job->p->owner, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("owner \"%s\" of pipeline \"%s\" may not use pg_cron",
						job->owner, job->p->name),
				 errdetail("pg_cron runs a job as the role that schedules "
						   "it, so the pipeline is scheduled as its owner, "
						   "and pg_cron lets a role schedule only with USAGE "
						   "on schema cron."),
				 errhint("A superuser may GRANT USAGE ON SCHEMA cron TO %s, "
						 "or schedule the pipeline.",
						 quote_identifier(job->owner))));
}

/*
 * check_no_job_elsewhere refuses to schedule when the owner has a job of
 * the same name for another database: pg_cron would replace its schedule
 * and command but keep its database (pg_cron 1.4 upserts named jobs on
 * jobname and username only).
 */
static void
check_no_job_elsewhere(CronJob *job)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_text(&args, job->jobname);
	etl_args_add_text(&args, job->owner);
	etl_args_add_text(&args, job->database);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT jobid, database FROM cron.job"
					 " WHERE jobname OPERATOR(pg_catalog.=)"
					 " $1::pg_catalog.name"
					 " AND username OPERATOR(pg_catalog.=) $2"
					 " AND database OPERATOR(pg_catalog.<>) $3",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n > 0)
	{
		int64 jobid = etl_spi_int64(0, 0, 0);
		char *other = etl_spi_text(0, 1);

		ereport(
			ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("role \"%s\" already has pg_cron job \"%s\", for "
					"database \"%s\"",
					job->owner, job->jobname, other),
			 errdetail("pg_cron names jobs per role, so the same owner "
					   "cannot schedule pipelines of the same name in two "
					   "databases."),
			 errhint(
				 "Remove that job first (SELECT cron.unschedule(" INT64_FORMAT
				 ");), or schedule a pipeline of another name.",
				 jobid)));
	}
}

/*
 * warn_if_inactive warns when the job is paused (cron.job.active = false,
 * set by cron.alter_job): scheduling keeps it paused.
 */
static void
warn_if_inactive(CronJob *job, int64 jobid)
{
	EtlArgs args;
	EtlUserSwitch sw;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_int8(&args, jobid);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT 1 FROM cron.job"
					 " WHERE jobid OPERATOR(pg_catalog.=) $1 AND NOT active",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n > 0)
		ereport(
			WARNING,
			(errmsg("pg_cron job \"%s\" of pipeline \"%s\" is inactive",
					job->jobname, job->p->name),
			 errdetail("It has the new schedule, but pg_cron does not "
					   "run it while cron.job.active is false."),
			 errhint(
				 "A superuser may resume it: SELECT cron.alter_job(" INT64_FORMAT
				 ", active => true);",
				 jobid)));
}

/* a pipeline's job as pg_cron keeps it: where it runs */
typedef struct JobPlace
{
	int64 jobid;
	char *nodename;
	int32 nodeport;
	char *database;
	bool active;
} JobPlace;

/*
 * find_job reads the job of a pipeline (by name and owner, in whatever
 * database) into *place; false when there is none.  Reads cron.job as the
 * extension owner.
 */
static bool
find_job(CronJob *job, JobPlace *place)
{
	EtlArgs args;
	EtlUserSwitch sw;
	bool isnull;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_text(&args, job->jobname);
	etl_args_add_text(&args, job->owner);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT jobid, nodename, nodeport, database, active"
					 " FROM cron.job WHERE jobname OPERATOR(pg_catalog.=)"
					 " $1::pg_catalog.name"
					 " AND username OPERATOR(pg_catalog.=) $2",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n == 0)
		return false;
	place->jobid = etl_spi_int64(0, 0, 0);
	place->nodename = etl_spi_text(0, 1);
	place->nodeport = (int32) etl_spi_int64(0, 2, 0);
	place->database = etl_spi_text(0, 3);
	place->active = DatumGetBool(etl_spi_datum(0, 4, &isnull));
	return true;
}

/*
 * conninfo_value appends a libpq connection-string value, quoted when it
 * needs to be.
 */
static void
conninfo_value(StringInfo buf, const char *key, const char *value)
{
	bool plain = value[0] != '\0';

	for (const char *c = value; *c; c++)
		if (*c == ' ' || *c == '\'' || *c == '\\' || *c == '=')
			plain = false;
	appendStringInfo(buf, "%s%s=", buf->len ? " " : "", key);
	if (plain)
	{
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '\'');
	for (const char *c = value; *c; c++)
	{
		if (*c == '\'' || *c == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *c);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * job_elsewhere returns where a job runs as a libpq connection string
 * ("host=... port=... dbname=...") when that is not this server's
 * database: its nodename differs from cron.host, its nodeport from the
 * port this server listens on, or its database from this one.  NULL when
 * it runs here.
 */
static char *
job_elsewhere(CronJob *job, JobPlace *place)
{
	const char *host = GetConfigOption("cron.host", true, false);
	StringInfoData buf;

	if ((host == NULL || strcmp(place->nodename, host) == 0) &&
		place->nodeport == PostPortNumber &&
		strcmp(place->database, job->database) == 0)
		return NULL;
	initStringInfo(&buf);
	conninfo_value(&buf, "host", place->nodename);
	appendStringInfo(&buf, " port=%d", place->nodeport);
	conninfo_value(&buf, "dbname", place->database);
	return buf.data;
}

/*
 * stale_job removes the job of a pipeline that runs elsewhere
 * (job_elsewhere()) when scheduling it again can put it here: another
 * host or port of this database (a dump restored onto another server), or
 * a database this server does not have (restored under another name).  A
 * job for another database of this server is left alone: it may be the
 * job of a pipeline of the same name there (check_no_job_elsewhere()
 * refuses then).  Returns whether it removed one; *was_active tells
 * whether that job was active.
 */
static bool
stale_job(CronJob *job, bool *was_active)
{
	JobPlace place;
	char *where;
	EtlArgs args;
	EtlUserSwitch sw;

	*was_active = true;
	if (!find_job(job, &place) || (where = job_elsewhere(job, &place)) == NULL)
		return false;
	if (strcmp(place.database, job->database) != 0 &&
		OidIsValid(get_database_oid(place.database, true)))
		return false;
	etl_args_init(&args);
	etl_args_add_int8(&args, place.jobid);
	etl_become_extension_owner(&sw);
	etl_spi_exec("SELECT cron.unschedule($1)", &args, SPI_OK_SELECT,
				 InvalidSnapshot);
	etl_restore_user(&sw);
	*was_active = place.active;
	ereport(NOTICE,
			(errmsg("pg_cron job " INT64_FORMAT " of pipeline \"%s\" ran at "
					"%s, not in this server's database",
					place.jobid, job->p->name, where),
			 errdetail("It was scheduled on another server or in another "
					   "database (a restored dump); it is scheduled again "
					   "here.")));
	return true;
}

/*
 * pause_job makes a job inactive again (cron.alter_job as the extension
 * owner): a re-created job keeps the pause of the job it replaces.
 */
static void
pause_job(int64 jobid)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, jobid);
	etl_become_extension_owner(&sw);
	etl_spi_exec("SELECT cron.alter_job($1, active => false)", &args,
				 SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * remove_job removes a pipeline's job and returns whether there was one.
 * It reads cron.job under a new snapshot, so that it sees a job scheduled
 * by a transaction that committed while a drop waited for its row lock.
 */
static bool
remove_job(CronJob *job)
{
	EtlArgs args;
	EtlUserSwitch sw;
	Snapshot snap;
	uint64 n;

	etl_args_init(&args);
	etl_args_add_text(&args, job->jobname);
	etl_args_add_text(&args, job->owner);
	etl_args_add_text(&args, job->database);
	snap = RegisterSnapshot(GetLatestSnapshot());
	etl_become_extension_owner(&sw);
	n = etl_spi_exec("SELECT cron.unschedule(jobid) FROM cron.job"
					 " WHERE jobname OPERATOR(pg_catalog.=)"
					 " $1::pg_catalog.name"
					 " AND username OPERATOR(pg_catalog.=) $2"
					 " AND database OPERATOR(pg_catalog.=) $3",
					 &args, SPI_OK_SELECT, snap);
	etl_restore_user(&sw);
	UnregisterSnapshot(snap);
	return n > 0;
}

/*
 * load_locked reads a pipeline, checks that the current user may act on it
 * (action: "schedule", "unschedule") and takes the KEY SHARE lock on its
 * row (see Locking above).  The check comes first, so that nobody else can
 * make the owner's drop wait.
 */
static EtlPipeline *
load_locked(const char *name, const char *action)
{
	EtlPipeline *p = etl_catalog_load(name, false, InvalidSnapshot);

	etl_check_pipeline_owner(p->name, p->owner, action);
	if (!etl_catalog_lock_key(p->id))
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("pipeline \"%s\" does not exist", name),
			 errdetail("It was dropped while it was being %sd.", action),
			 errhint("SELECT name FROM etl.pipelines lists the pipelines.")));
	return p;
}

/*
 * arg_name returns the pipeline name argument, refusing NULL.
 */
static char *
arg_name(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/*
 * etl_schedule(pipeline text, cron_expression text) RETURNS bigint
 *
 * Creates or replaces the pg_cron job of a pipeline and returns its job id.
 * The job runs as the pipeline's owner in this database; this database must
 * be pg_cron's (cron.database_name).  A bad expression fails with pg_cron's
 * own error (22023 "invalid schedule: ...").  Everything happens in the
 * caller's transaction.
 */
Datum
etl_schedule(PG_FUNCTION_ARGS)
{
	char *name = arg_name(fcinfo);
	char *expression;
	const char *crondb;
	CronState state;
	EtlPipeline *p;
	CronJob *job;
	EtlArgs args;
	bool for_other;
	bool recreated;
	bool was_active;
	EtlEntry e;
	int64 jobid;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cron expression must not be NULL"),
				 errhint("Give a pg_cron schedule, e.g. '*/15 * * * *'.")));
	expression = text_to_cstring(PG_GETARG_TEXT_PP(1));
	etl_entry_begin_write(&e, ETL_ENTRY_PINNED, "etl_schedule",
						  etl_pipeline_object(name));
	p = load_locked(name, "schedule");
	job = describe_job(p, true);
	state = cron_state(&crondb);
	require_cron(state, crondb, p, "schedule",
				 schedule_in_cron_db_sql(job, expression));

	/* a superuser schedules for another role; anyone else as the owner */
	for_other = superuser() && GetUserId() != p->owner;
	check_owner_can_schedule(job, !for_other);
	recreated = stale_job(job, &was_active);
	check_no_job_elsewhere(job);

	etl_args_init(&args);
	etl_args_add_text(&args, job->jobname);
	etl_args_add_text(&args, expression);
	etl_args_add_text(&args, job->command);
	if (for_other)
	{
		etl_args_add_text(&args, job->database);
		etl_args_add_text(&args, job->owner);
		etl_spi_exec("SELECT cron.schedule_in_database($1, $2, $3, $4, $5)",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
	}
	else
	{
		EtlUserSwitch sw;

		etl_become_owner(&sw, p->owner);
		etl_spi_exec("SELECT cron.schedule($1, $2, $3)", &args, SPI_OK_SELECT,
					 InvalidSnapshot);
		etl_restore_user(&sw);
	}
	jobid = etl_spi_int64(0, 0, 0);
	if (recreated && !was_active)
		pause_job(jobid);
	warn_if_inactive(job, jobid);

	etl_entry_end(&e);
	PG_RETURN_INT64(jobid);
}

/*
 * etl_unschedule(pipeline text) RETURNS boolean
 *
 * Removes the pg_cron job of a pipeline; returns whether there was one.
 */
Datum
etl_unschedule(PG_FUNCTION_ARGS)
{
	char *name = arg_name(fcinfo);
	const char *crondb;
	CronState state;
	EtlPipeline *p;
	CronJob *job;
	EtlEntry e;
	bool removed = false;

	etl_entry_begin_write(&e, ETL_ENTRY_PINNED, "etl_unschedule",
						  etl_pipeline_object(name));
	p = load_locked(name, "unschedule");
	job = describe_job(p, false);
	state = cron_state(&crondb);
	require_cron(state, crondb, p, "unschedule",
				 job ? unschedule_in_cron_db_sql(job) : NULL);
	if (job != NULL)
		removed = remove_job(job);
	etl_entry_end(&e);
	PG_RETURN_BOOL(removed);
}

/*
 * etl_cron_drop_job removes the job of a pipeline being dropped, if it has
 * one.  The caller has checked ownership and deleted the pipeline's row.
 * Without pg_cron there is nothing to remove; when pg_cron keeps its jobs
 * in another database, a NOTICE says how to remove the job there.
 */
void
etl_cron_drop_job(EtlPipeline *p)
{
	const char *crondb;
	CronState state = cron_state(&crondb);
	CronJob *job;

	if (state != CRON_READY && state != CRON_OTHER_DATABASE)
		return;
	job = describe_job(p, false);
	if (job == NULL)
		return;
	if (state == CRON_READY)
		(void) remove_job(job);
	else
		ereport(NOTICE,
				(errmsg("a pg_cron job of pipeline \"%s\" would be in "
						"database \"%s\"",
						p->name, crondb),
				 errdetail("pg_cron keeps its jobs in database \"%s\" "
						   "(cron.database_name), so dropping the pipeline "
						   "in database \"%s\" cannot remove its job.",
						   crondb, job->database),
				 errhint("If it was scheduled, connect to database \"%s\" "
						 "and run: %s",
						 crondb, unschedule_in_cron_db_sql(job))));
}

/*
 * etl_schedules() RETURNS TABLE (pipeline_id bigint, schedule text,
 *								  elsewhere text)
 *
 * For every pipeline that has a pg_cron job, in one query (etl.status):
 * its schedule when the job is active and runs in this database, and where
 * it runs, as a libpq connection string, when that is not this server's
 * database (job_elsewhere(): a dump restored onto another host, port or
 * database keeps the old ones).  Shown to everyone, as the rest of
 * etl.status.  No rows without pg_cron and outside the database named by
 * cron.database_name.
 */
Datum
etl_schedules(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *crondb;
	char *dbname;
	EtlArgs args;
	EtlUserSwitch sw;
	EtlEntry e;
	uint64 n;

	InitMaterializedSRF(fcinfo, 0);
	if (cron_state(&crondb) != CRON_READY)
		return (Datum) 0;

	dbname = get_database_name(MyDatabaseId);
	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	etl_args_init(&args);
	etl_args_add_text(&args, JOB_PREFIX);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec(
		"SELECT p.pipeline_id, j.schedule, j.active, j.nodename, j.nodeport,"
		" j.database FROM etl.pipelines p JOIN cron.job j"
		" ON j.username OPERATOR(pg_catalog.=)"
		" pg_catalog.pg_get_userbyid(p.owner)::pg_catalog.text"
		" AND j.jobname OPERATOR(pg_catalog.=)"
		" ($1 OPERATOR(pg_catalog.||) p.name)::pg_catalog.name"
		" WHERE pg_catalog.octet_length($1 OPERATOR(pg_catalog.||) p.name)"
		" OPERATOR(pg_catalog.<) " CppAsString2(NAMEDATALEN),
		&args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	for (uint64 i = 0; i < n; i++)
	{
		CronJob job = { 0 };
		JobPlace place = { 0 };
		bool isnull;
		char *where;
		Datum values[3];
		bool nulls[3] = { false, true, true };

		job.database = dbname;
		place.nodename = etl_spi_text(i, 3);
		place.nodeport = (int32) etl_spi_int64(i, 4, 0);
		place.database = etl_spi_text(i, 5);
		place.active = DatumGetBool(etl_spi_datum(i, 2, &isnull));
		values[0] = etl_spi_datum(i, 0, &isnull);
		if (place.active && strcmp(place.database, dbname) == 0)
			values[1] = etl_spi_datum(i, 1, &nulls[1]);
		where = place.nodename && place.database ? job_elsewhere(&job, &place)
												 : NULL;
		if (where != NULL)
		{
			values[2] = CStringGetTextDatum(where);
			nulls[2] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	etl_entry_end(&e);
	return (Datum) 0;
}
