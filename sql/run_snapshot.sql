-- run_snapshot: mode snapshot, the whole source compared with stored signatures

CREATE SCHEMA ss;
CREATE TABLE ss.accounts (acct text PRIMARY KEY, owner_name text, balance numeric(12,2));
INSERT INTO ss.accounts SELECT 'A' || g, 'owner ' || g, g * 10 FROM generate_series(1, 6) g;
CREATE TABLE ss.dim_accounts (acct text PRIMARY KEY, owner_name text, balance numeric(12,2));
CREATE TABLE ss.soft_accounts (acct text PRIMARY KEY, owner_name text, balance numeric(12,2),
                               _deleted_at timestamptz);
CREATE TABLE ss.nokey (acct text, owner_name text);

-- definitions: a key, a valid delete_mode, the soft delete column
SELECT etl_create_pipeline('snap_bad', 'ss.accounts', 'ss.nokey', mode => 'snapshot', load => 'append');
SELECT etl_create_pipeline('snap_bad', 'ss.accounts', 'ss.dim_accounts', mode => 'snapshot',
                           options => '{"delete_mode": "maybe"}');
SELECT etl_create_pipeline('snap_bad', 'ss.accounts', 'ss.dim_accounts', mode => 'snapshot',
                           options => '{"delete_mode": "soft"}');
SELECT etl_create_pipeline('snap_bad', 'ss.accounts', 'ss.dim_accounts', mode => 'snapshot',
                           watermark_column => 'acct');
SELECT etl_create_pipeline('snap', 'ss.accounts', 'ss.dim_accounts', mode => 'snapshot') > 0 AS created;
SELECT etl_create_pipeline('snap_soft', 'ss.accounts', 'ss.soft_accounts', mode => 'snapshot',
                           options => '{"delete_mode": "soft"}') > 0 AS created;

SELECT status, rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('snap');
SELECT count(*) AS signatures, count(DISTINCT s.key) AS keys FROM etl.snapshot_signatures s
  JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = 'snap';
SELECT s.key FROM etl.snapshot_signatures s JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name = 'snap' ORDER BY s.key->>'acct' LIMIT 2;

-- an unchanged source: nothing written, to the target or the signatures
CREATE TEMP TABLE before AS
SELECT (SELECT array_agg(xmin::text ORDER BY acct) FROM ss.dim_accounts) AS target_xmins,
       (SELECT array_agg(s.xmin::text ORDER BY key_hash) FROM etl.snapshot_signatures s
          JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = 'snap') AS signature_xmins;
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('snap');
SELECT b.target_xmins = (SELECT array_agg(xmin::text ORDER BY acct) FROM ss.dim_accounts) AS target_untouched,
       b.signature_xmins = (SELECT array_agg(s.xmin::text ORDER BY key_hash) FROM etl.snapshot_signatures s
          JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = 'snap') AS signatures_untouched
  FROM before b;

-- an update, an insert and two deletes
UPDATE ss.accounts SET balance = 999 WHERE acct = 'A2';
INSERT INTO ss.accounts VALUES ('A7', 'owner 7', 70);
DELETE FROM ss.accounts WHERE acct IN ('A5', 'A6');
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('snap');
SELECT * FROM ss.dim_accounts ORDER BY acct;
SELECT count(*) AS differences FROM (
    (SELECT * FROM ss.accounts EXCEPT SELECT * FROM ss.dim_accounts)
    UNION ALL (SELECT * FROM ss.dim_accounts EXCEPT SELECT * FROM ss.accounts)) d;
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('snap');

-- soft deletes: vanished rows are stamped with the run's start, and revived
-- when they come back
SELECT rows_inserted FROM etl_run('snap_soft');
INSERT INTO ss.accounts VALUES ('A5', 'owner 5', 50);
SELECT rows_inserted, rows_deleted FROM etl_run('snap_soft');
DELETE FROM ss.accounts WHERE acct = 'A1';
SELECT run_id AS soft_run, rows_deleted FROM etl_run('snap_soft') \gset
SELECT acct, _deleted_at = (SELECT started_at FROM etl.runs WHERE run_id = :soft_run) AS stamped_by_run
  FROM ss.soft_accounts WHERE _deleted_at IS NOT NULL;
SELECT rows_deleted FROM etl_run('snap_soft');
INSERT INTO ss.accounts VALUES ('A1', 'owner 1 again', 10);
SELECT rows_inserted, rows_updated, rows_deleted FROM etl_run('snap_soft');
SELECT acct, owner_name, _deleted_at FROM ss.soft_accounts ORDER BY acct;

-- a row that fails to load keeps being compared until it loads
ALTER TABLE ss.dim_accounts ADD CONSTRAINT small CHECK (balance < 1000);
UPDATE ss.accounts SET balance = 5000 WHERE acct = 'A3';
SELECT etl_alter_pipeline('snap', error_threshold => 50) > 0 AS altered;
SELECT rows_extracted, rows_updated, rows_rejected FROM etl_run('snap');
SELECT rows_extracted, rows_updated, rows_rejected FROM etl_run('snap');
ALTER TABLE ss.dim_accounts DROP CONSTRAINT small;
SELECT rows_extracted, rows_updated, rows_rejected FROM etl_run('snap');
SELECT rows_extracted, rows_updated, rows_unchanged FROM etl_run('snap');
SELECT balance FROM ss.dim_accounts WHERE acct = 'A3';

-- signatures belong to the pipeline owner: others see none of them
CALL regress.create_role('snap_other');
SET ROLE snap_other;
SELECT count(*) AS visible_signatures FROM etl.snapshot_signatures;
RESET ROLE;
CALL regress.drop_role('snap_other');
-- and go with the pipeline
SELECT etl_drop_pipeline('snap_soft');
SELECT count(*) FROM etl.snapshot_signatures s
 WHERE NOT EXISTS (SELECT FROM etl.pipelines p WHERE p.pipeline_id = s.pipeline_id);
