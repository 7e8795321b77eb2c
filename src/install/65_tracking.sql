/*
 * src/install/65_tracking.sql -- change tracking for mode xid:
 * etl_track_changes with its trigger function, the event trigger
 * etl_track_attach that guards tables joining a tracked source, and
 * etl_rebase_xid for a source restored into another cluster.
 */

-- Change tracking (mode xid) --------------------------------------------------

CREATE FUNCTION etl_internal.etl_track_changes_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'etl_track_changes_trigger'
LANGUAGE C;
COMMENT ON FUNCTION etl_internal.etl_track_changes_trigger() IS
    'BEFORE INSERT OR UPDATE row trigger of etl_track_changes: sets _etl_xid to the writing transaction, whatever the row brings';

CREATE FUNCTION etl_track_changes(source regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_track_changes'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION etl_track_changes(regclass) IS
    'prepare a table for mode xid: column _etl_xid, its insert and update trigger and index (owner only; idempotent)';

-- A table attached as a partition of a tracked table (or made its child by
-- INHERIT) brings rows stamped by their old writers: refused unless they
-- carry the attaching transaction's id.  ALWAYS: also in sessions with
-- session_replication_role = replica.
CREATE FUNCTION etl_internal.etl_track_attach()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'etl_track_attach'
LANGUAGE C;
COMMENT ON FUNCTION etl_internal.etl_track_attach() IS
    'event trigger: refuses ATTACH PARTITION and INHERIT into a tracked table of rows stamped by other transactions';
CREATE EVENT TRIGGER etl_track_attach ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION etl_internal.etl_track_attach();
ALTER EVENT TRIGGER etl_track_attach ENABLE ALWAYS;

CREATE FUNCTION etl_rebase_xid(source regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'etl_rebase_xid'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_rebase_xid(regclass) IS
    'after a restore into another cluster: re-stamp a source and rebase its xid pipelines so that each next run loads what was not loaded before the dump (source owner)';

