-- dead_letters_failed_runs: a failed run's dead letters are committed on
-- their own, and the next run judges the same rows again; it records them
-- again and closes the older letters, so that a row version is pending as
-- one dead letter at most: etl.status counts it once, a replay tries it once

CREATE SCHEMA dlf;
CREATE TABLE dlf.src (id int PRIMARY KEY, amount int, at timestamptz NOT NULL);
INSERT INTO dlf.src SELECT g, CASE WHEN g IN (3, 7) THEN -g ELSE g END,
    '2024-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 10) g;
CREATE TABLE dlf.dst (id int PRIMARY KEY, amount int CONSTRAINT non_negative CHECK (amount >= 0));

-- the dead letters of a pipeline, runs and letters numbered from 1 in
-- their order (ids differ from one installation to the next)
CREATE FUNCTION dlf.letters(pipeline text)
RETURNS TABLE (letter bigint, run bigint, id text, stage text, status text,
               resolution text, retry_count int)
LANGUAGE sql AS $fn$
    WITH r AS (SELECT run_id, row_number() OVER (ORDER BY run_id) AS n
                 FROM etl.runs WHERE runs.pipeline = letters.pipeline),
         d AS (SELECT dl.*, row_number() OVER (ORDER BY dl.id) AS n
                 FROM etl.dead_letters dl WHERE dl.pipeline = letters.pipeline)
    SELECT d.n, r.n, d.record->>'id', d.stage, d.status,
           CASE WHEN d.resolution ~ 'by run [0-9]+$'
                THEN regexp_replace(d.resolution, '[0-9]+$', '') ||
                     (SELECT r2.n FROM r r2
                       WHERE r2.run_id = substring(d.resolution FROM '[0-9]+$')::bigint)
                WHEN d.resolution ~ 'dead letter [0-9]+$'
                THEN regexp_replace(d.resolution, '[0-9]+$', '') ||
                     (SELECT d2.n FROM d d2
                       WHERE d2.id = substring(d.resolution FROM '[0-9]+$')::bigint)
                ELSE d.resolution END,
           d.retry_count
      FROM d LEFT JOIN r USING (run_id) ORDER BY d.n
$fn$;

-- rows 3 and 7 break the target's CHECK: 20% of the batch, above the
-- threshold of 10%: the run fails, twice
SELECT etl_create_pipeline('dlf_twice', 'dlf.src', 'dlf.dst', watermark_column => 'at') > 0 AS created;
SELECT code, message FROM regress.run_failing('dlf_twice');
SELECT * FROM dlf.letters('dlf_twice');
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_twice';
SELECT code, message FROM regress.run_failing('dlf_twice');
-- the second run recorded rows 3 and 7 again: the first run's letters are
-- closed, superseded by the second's
SELECT * FROM dlf.letters('dlf_twice');
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_twice';
-- a threshold of 30%: the third run loads the rest, and its letters
-- supersede the second run's
SELECT etl_alter_pipeline('dlf_twice', error_threshold => 30) > 0 AS altered;
SELECT status, rows_extracted, rows_inserted, rows_unchanged, rows_rejected FROM etl_run('dlf_twice');
SELECT r.status AS run_status, r.rows_rejected, l.*
  FROM dlf.letters('dlf_twice') l
  JOIN (SELECT run_id, status, rows_rejected, row_number() OVER (ORDER BY run_id) AS n
          FROM etl.runs WHERE pipeline = 'dlf_twice') r ON r.n = l.run
 ORDER BY l.letter;
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_twice';
SELECT id, amount FROM dlf.dst ORDER BY id;
-- the pending letters are those of the run that succeeded: a run that
-- reads the rows again finds them pending and leaves them out without new
-- letters
SELECT etl_reset_watermark('dlf_twice', NULL);
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('dlf_twice');
SELECT count(*) AS letters, count(*) FILTER (WHERE status = 'pending') AS pending
  FROM etl.dead_letters WHERE pipeline = 'dlf_twice';
-- the constraint allows them now: a replay tries each row version once
ALTER TABLE dlf.dst DROP CONSTRAINT non_negative, ADD CONSTRAINT non_negative CHECK (amount >= -10);
SELECT * FROM etl_retry_dead_letters('dlf_twice');
SELECT rows_extracted, rows_inserted, rows_rejected FROM etl.runs
 WHERE pipeline = 'dlf_twice' AND triggered_by = 'replay';
SELECT * FROM dlf.letters('dlf_twice') WHERE status = 'resolved' AND run = 3;
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_twice';
SELECT count(*) AS differences FROM (
    (SELECT id, amount FROM dlf.src EXCEPT SELECT id, amount FROM dlf.dst)
    UNION ALL (SELECT id, amount FROM dlf.dst EXCEPT SELECT id, amount FROM dlf.src)) x;

-- a failed run, then a replay: each row version replayed once, and the
-- rows that fail again stay pending once
TRUNCATE dlf.dst;
ALTER TABLE dlf.dst DROP CONSTRAINT non_negative, ADD CONSTRAINT non_negative CHECK (amount >= 0);
SELECT etl_create_pipeline('dlf_replay', 'dlf.src', 'dlf.dst', watermark_column => 'at') > 0 AS created;
SELECT code FROM regress.run_failing('dlf_replay');
SELECT code FROM regress.run_failing('dlf_replay');
SELECT code FROM regress.run_failing('dlf_replay');
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_replay';
SELECT * FROM etl_retry_dead_letters('dlf_replay');
SELECT * FROM dlf.letters('dlf_replay');
SELECT count(*) AS loaded FROM dlf.dst;
-- the next failed run records them again: the replayed letters are closed
SELECT code FROM regress.run_failing('dlf_replay');
SELECT * FROM dlf.letters('dlf_replay');
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_replay';

-- a replay and a failing run in one transaction: the replay holds the
-- failed run's letters locked when the run's failure record is written; the
-- record does not wait for them (they are the caller's), and the run's
-- letters are written closed, the version being pending already
BEGIN;
SELECT * FROM etl_retry_dead_letters('dlf_replay');
SELECT code FROM regress.run_failing('dlf_replay');
COMMIT;
SELECT * FROM dlf.letters('dlf_replay');
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_replay';

-- a row fixed in the source after a failed run: the next run loads the
-- fixed version; the old version's letter stays pending until a replay
-- finds the source row newer and closes it without replaying it
SELECT etl_alter_pipeline('dlf_replay', error_threshold => 30) > 0 AS altered;
UPDATE dlf.src SET amount = 3, at = at + interval '1 day' WHERE id = 3;
SELECT status, rows_extracted, rows_inserted, rows_rejected FROM etl_run('dlf_replay');
SELECT id, status, resolution FROM dlf.letters('dlf_replay') WHERE status = 'pending';
SELECT * FROM etl_retry_dead_letters('dlf_replay');
SELECT * FROM dlf.letters('dlf_replay');
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_replay';
SELECT amount FROM dlf.dst WHERE id = 3;

-- reopening a closed letter while another one holds its row version
-- pending is refused (55000), naming the pending one; once that is closed,
-- the older one may be reopened
SELECT d.id AS old_letter FROM etl.dead_letters d
 WHERE d.pipeline = 'dlf_replay' AND d.record->>'id' = '7' AND d.status = 'resolved'
 ORDER BY d.id DESC LIMIT 1 \gset
SELECT d.id AS pending_letter FROM etl.dead_letters d
 WHERE d.pipeline = 'dlf_replay' AND d.status = 'pending' \gset
SELECT e.code, replace(e.message, :'old_letter', '<old>') AS message,
       replace(e.detail, :'pending_letter', '<pending>') AS detail,
       replace(e.hint, :'pending_letter', '<pending>') AS hint
  FROM regress.error_of(format('SELECT etl_resolve_dead_letter(%s, %L, %L)',
                               :old_letter, 'pending', 'reopened')) e;
SELECT etl_resolve_dead_letter(:pending_letter, 'ignored', 'not this one');
SELECT etl_resolve_dead_letter(:old_letter, 'pending', 'reopened');
SELECT id = :'old_letter' AS old_letter, status, resolution FROM etl.dead_letters
 WHERE pipeline = 'dlf_replay' AND status = 'pending';

-- a row version pending as several dead letters (left by an earlier
-- build): a replay tries it once and closes the others
CREATE TABLE dlf.legacy_dst (id int PRIMARY KEY, amount int CHECK (amount >= 0));
SELECT etl_create_pipeline('dlf_legacy', 'dlf.src', 'dlf.legacy_dst', watermark_column => 'at',
                           error_threshold => 50) > 0 AS created;
SELECT status, rows_inserted, rows_rejected FROM etl_run('dlf_legacy');
SELECT regress.copy_dead_letter(id) > id AS copied FROM etl.dead_letters
 WHERE pipeline = 'dlf_legacy' ORDER BY id;
SELECT regress.copy_dead_letter(max(id)) > 0 AS copied FROM etl.dead_letters
 WHERE pipeline = 'dlf_legacy';
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_legacy';
SELECT * FROM etl_retry_dead_letters('dlf_legacy');
SELECT * FROM dlf.letters('dlf_legacy');
SELECT rows_extracted, rows_inserted, rows_rejected FROM etl.runs
 WHERE pipeline = 'dlf_legacy' AND triggered_by = 'replay';
SELECT pending_dead_letters FROM etl.status WHERE pipeline = 'dlf_legacy';
-- they load once the constraint allows them
ALTER TABLE dlf.legacy_dst DROP CONSTRAINT legacy_dst_amount_check;
SELECT * FROM etl_retry_dead_letters('dlf_legacy');
SELECT id, amount FROM dlf.legacy_dst WHERE amount < 0 ORDER BY id;

SELECT etl_drop_pipeline('dlf_twice'), etl_drop_pipeline('dlf_replay'),
       etl_drop_pipeline('dlf_legacy');
DROP SCHEMA dlf CASCADE;
