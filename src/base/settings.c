/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The variables behind the settings of etl_ext (registered by _PG_init,
 *	  api/module.c) and the test-only pause of a run at a named phase.
 *
 * IDENTIFICATION
 *	  src/base/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"

#include "base/settings.h"

char *etl_debug_pause_at = NULL;
int etl_work_mem = 65536;
int etl_isolation_parts = 512;
int etl_lag_timeout = 1000;
char *etl_lineage_namespace_setting = NULL;

/*
 * etl_maybe_pause waits at a named phase when etl.debug_pause_at names it.
 *
 * The run takes the advisory lock ETL_PAUSE_LOCK_KEY in share mode for the
 * rest of its transaction; a test session holding that lock exclusively
 * holds the run here (isolation specs and TAP crash tests use it, PG15 has
 * no injection points).  Cancel and lock_timeout work while waiting.
 */
void
etl_maybe_pause(const char *phase)
{
	LOCKTAG tag;

	if (etl_debug_pause_at == NULL || etl_debug_pause_at[0] == '\0' ||
		strcmp(etl_debug_pause_at, phase) != 0)
		return;

	/* the same tag as pg_advisory_xact_lock_shared(727274) */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 (uint32) (ETL_PAUSE_LOCK_KEY >> 32),
						 (uint32) ETL_PAUSE_LOCK_KEY, 1);
	(void) LockAcquire(&tag, ShareLock, false, false);
}
