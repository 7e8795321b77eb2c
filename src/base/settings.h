/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Settings and constants shared by every etl_ext module.
 *
 * IDENTIFICATION
 *	  src/base/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SETTINGS_H
#define ETL_SETTINGS_H

#include "postgres.h"

/* the schema that holds the catalogs (created by the install script) */
#define ETL_SCHEMA "etl"

/*
 * The search_path every statement of etl_ext runs under: built-in functions
 * and operators only, temporary relations last.  User objects must be
 * schema-qualified in transforms; no object planted in another schema can
 * shadow what etl_ext or a transform calls.
 */
#define ETL_PINNED_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Lock tag class of the per-pipeline run lock: an advisory lock tag whose
 * fourth field is this value, so that it never collides with user advisory
 * locks (which use 1 and 2).  pg_locks shows it as locktype 'advisory' with
 * objsubid = 17748.
 */
#define ETL_LOCKTAG_CLASS 0x4554

/* etl.isolation_parts: parts a batch with bad rows is loaded in */
extern int etl_isolation_parts;

/* etl.work_mem: work_mem of a run's statements in kB (-1: the session's) */
extern int etl_work_mem;

/* etl.lag_timeout: how long the lag of one pipeline may take, in ms */
extern int etl_lag_timeout;

/* etl.debug_pause_at: test-only phase name at which a run waits */
extern char *etl_debug_pause_at;

/* key of the advisory lock a paused run waits for (documented for tests) */
#define ETL_PAUSE_LOCK_KEY INT64CONST(727274)

extern void etl_maybe_pause(const char *phase);

/* etl.lineage_namespace: OpenLineage namespace ("" : postgres://host:port) */
extern char *etl_lineage_namespace_setting;

#endif /* ETL_SETTINGS_H */
