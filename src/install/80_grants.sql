/*
 * src/install/80_grants.sql -- the last part: which functions of schema
 * etl_internal PUBLIC may execute (exactly those that SQL running with a
 * user's rights calls), once every part before has created them.
 */

-- Privileges of etl_internal ---------------------------------------------------

/*
 * Nothing in etl_internal is API, but most of it is called by SQL that runs
 * with a user's rights, which is checked against the caller: EXECUTE stays
 * with PUBLIC exactly for those, and each says which caller needs it.  The
 * C functions check ownership themselves, as the API does.
 */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA etl_internal FROM PUBLIC;

-- called by the statements a run generates, which run as the pipeline owner
-- (any role; parallel workers too): the load statements, the check pass
GRANT EXECUTE ON FUNCTION etl_internal.etl_null_key(text),
    etl_internal.etl_not_in(int8, regclass, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION etl_internal.etl_dup_count(anyelement),
    etl_internal.etl_zstats(float8) TO PUBLIC;
-- (their support functions stay revoked: an aggregate's transition,
-- combine, serial and final functions are checked against the aggregate's
-- owner, and none can be called with a value of type internal anyway)

-- the BEFORE INSERT OR UPDATE trigger etl_track_changes puts on users' tables: CREATE
-- TRIGGER (also when a dump of such a table is restored) needs EXECUTE of
-- the table's owner; a trigger function cannot be called directly
GRANT EXECUTE ON FUNCTION etl_internal.etl_track_changes_trigger() TO PUBLIC;

-- called by the view etl.status (any reader) and by etl_metric_rows()
GRANT EXECUTE ON FUNCTION etl_internal.etl_lag(text), etl_internal.etl_schedules(),
    etl_internal.etl_unrecorded_failures(), etl_internal.etl_duration_buckets() TO PUBLIC;

-- called by etl_lineage(), etl_lineage_upstream(), etl_lineage_dot() and
-- etl_openlineage(), which run as their caller
GRANT EXECUTE ON FUNCTION etl_internal.etl_lineage_columns(text),
    etl_internal.etl_lineage_relations(text), etl_internal.etl_lineage_edges(),
    etl_internal.etl_lineage_namespace(), etl_internal.etl_openlineage_dataset(regclass)
    TO PUBLIC;

-- the steps of CALL etl_catch_up and CALL etl_backfill, which run as their
-- caller (a procedure that commits cannot be SECURITY DEFINER)
GRANT EXECUTE ON FUNCTION etl_internal.etl_steps_check(text, text, boolean),
    etl_internal.etl_batch_recover(text),
    etl_internal.etl_batch_start(text, text, text, text),
    etl_internal.etl_run_step(text, text, text, text, bigint),
    etl_internal.etl_backfill_steps(text, text, text, text),
    etl_internal.etl_pending_rows(text) TO PUBLIC;
