# Durability and resource limits in the middle of a run:
#   A. synchronous_commit = off: an immediate shutdown in the middle of a
#      run leaves nothing of it; a run whose commit was acknowledged but not
#      yet written (the WAL writer held with SIGSTOP) is lost wholly; the
#      steps of a catch-up committed asynchronously survive as a prefix.  In
#      each case the target, the watermark, etl.runs and etl.batches agree,
#      and the next run loads exactly what is missing.
#   B. temp_file_limit and statement_timeout hit in the middle of a load: a
#      clean error with its SQLSTATE, the failure recorded, nothing of the
#      batch in the target, the watermark and the caller's settings
#      unchanged; the next run completes.
#   C. crashes around dead letters and partition swaps: after the
#      autonomous writer committed a failed run's record and dead letters,
#      before the run's ERROR; in a successful run with dead letters before
#      its commit; between the DROP of the replaced partitions and the
#      ATTACH of the rebuilt ones in a swap (and a statement_timeout there).
#   D. the autonomous writer under the database's settings: a database
#      read-only by default keeps its failure records; a writer that fails
#      all the same is reported with its own SQLSTATE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('durability');
$node->init;
# autovacuum off: no other process writes WAL or flushes it while the WAL
# writer is held
$node->append_conf('postgresql.conf', qq{
restart_after_crash = on
autovacuum = off
timezone = 'UTC'
log_line_prefix = '%m [%p] %e %q%a '
});
$node->start;

# the session holding advisory lock 727274, on which paused runs wait
my $holder;

# start_held_run($sql, $phase, @settings): runs $sql in a new session with
# the settings given, stopped at $phase by the holder's advisory lock;
# returns the run's session once it waits there
sub start_held_run
{
	my ($sql, $phase, @settings) = @_;
	$holder = $node->background_psql('postgres');
	$holder->query_safe('SELECT pg_advisory_lock(727274)');
	my $runner = $node->background_psql('postgres', on_error_stop => 0);
	my $set = join('', map { "SET $_;\n" } @settings);
	$runner->query_until(qr/started/, qq{$set
SET etl.debug_pause_at = '$phase';
\\echo started
$sql;
});
	$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks
 WHERE locktype = 'advisory' AND objid = 727274 AND NOT granted})
	  or die "the run did not reach phase $phase";
	return $runner;
}

# end_session: closes a session whose backend may be gone and returns what
# it printed on stderr (a psql whose connection died has exited: closing its
# input ends it)
sub end_session
{
	my ($s) = @_;
	eval { $s->{run}->finish };
	return $s->{stderr};
}

# immediate_restart(@sessions): pg_ctl stop -m immediate, then start; the
# sessions end before the server starts again (a postmaster started while
# their psql runs would inherit its pipes)
sub immediate_restart
{
	my @sessions = @_;
	$node->stop('immediate');
	end_session($_) for @sessions;
	$node->start;
}

# hold_walwriter: stops the WAL writer with SIGSTOP while it sleeps in its
# main loop (then it holds no lock: stopped in the middle of a flush it
# would hold the WAL write lock, and every backend would wait for it);
# returns its pid.  With autovacuum off, nothing else writes out the WAL of
# asynchronous commits until the WAL buffers fill.
sub hold_walwriter
{
	my $pid = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'});
	die 'no WAL writer' unless $pid =~ /^\d+$/;
	for (1 .. 1800)
	{
		kill 'STOP', $pid or die "cannot stop the WAL writer: $!";
		return $pid
		  if $node->safe_psql('postgres',
			"SELECT wait_event FROM pg_stat_activity WHERE pid = $pid") eq
		  'WalWriterMain';
		kill 'CONT', $pid;
		select(undef, undef, undef, 0.1);
	}
	die 'the WAL writer never sleeps';
}

# wait_for(what, sub): polls sub until it is true (at most 3 minutes)
sub wait_for
{
	my ($what, $cond) = @_;
	for (1 .. 1800)
	{
		return if $cond->();
		select(undef, undef, undef, 0.1);
	}
	die "timed out waiting for $what";
}

# immediate_restart_held($walwriter, @sessions): an immediate shutdown
# (SIGQUIT to the postmaster, as pg_ctl stop -m immediate sends) while the
# WAL writer is held: once the postmaster has passed SIGQUIT on to it, the
# WAL writer is let go and exits at once, writing nothing; then start
sub immediate_restart_held
{
	my ($walwriter, @sessions) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	my $status = "/proc/$walwriter/status";
	open my $fh, '<', $pidfile or die "no $pidfile: $!";
	my $postmaster = <$fh>;
	close $fh;
	chomp $postmaster;
	kill 'QUIT', $postmaster or die "cannot signal the postmaster: $!";
	wait_for('SIGQUIT pending in the WAL writer', sub {
		open my $st, '<', $status or return 1;
		my ($pending) = join('', <$st>) =~ /^ShdPnd:\s*([0-9a-f]+)/m;
		return hex(substr($pending, -8)) & 4;    # bit of signal 3
	});
	kill 'CONT', $walwriter;
	wait_for('the postmaster to exit', sub { !-e $pidfile });
	$node->stop('immediate', fail_ok => 1);    # only forgets the pid
	end_session($_) for @sessions;
	$node->start;
}

# state($pipeline, $target, $cols): what a run that dies must not change:
# the target's rows, the watermark, the pipeline's runs, batches and dead
# letters
sub state
{
	my ($p, $target, $cols) = @_;
	return $node->safe_psql('postgres', qq{
SELECT (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM (SELECT $cols FROM $target) t),
       (SELECT count(*) FROM $target),
       (SELECT watermark FROM etl.pipelines WHERE name = '$p'),
       (SELECT count(*) FROM etl.runs WHERE pipeline = '$p'),
       (SELECT count(*) FROM etl.batches WHERE pipeline = '$p'),
       (SELECT count(*) FROM etl.dead_letters WHERE pipeline = '$p')});
}

# differences($expected, $actual): rows in one query's result and not in
# the other's, both ways (0: equal row for row)
sub differences
{
	my ($expected, $actual) = @_;
	return $node->safe_psql('postgres', qq{
SELECT count(*) FROM (
  (($expected) EXCEPT ALL ($actual))
  UNION ALL
  (($actual) EXCEPT ALL ($expected))) d});
}

sub run_counts
{
	my ($p) = @_;
	return $node->safe_psql('postgres', qq{
SELECT status, rows_extracted, rows_inserted, rows_updated, rows_unchanged, rows_rejected
  FROM etl_run('$p')});
}

$node->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE TABLE src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE dst (id int PRIMARY KEY, v text, _etl_row_hash bytea, _etl_run_id bigint);
INSERT INTO src SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 1000) g;
SELECT etl_create_pipeline('async', 'src', 'dst', watermark_column => 'at',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');
SELECT etl_run('async');
});
my $transformed = 'SELECT id, upper(v) FROM src';
my $loaded = 'SELECT id, v FROM dst';

# new_changes($n): 100 rows changed and 100 new, stamped in month $n after
# the first load, committed durably
sub new_changes
{
	my ($n) = @_;
	$node->safe_psql('postgres', qq{
UPDATE src SET v = v || '-$n', at = '2024-01-01'::timestamptz + interval '$n months' + id * interval '1 second'
 WHERE id % 10 = $n % 10 AND id <= 1000;
INSERT INTO src SELECT g, 'new$n-' || g, '2024-01-01'::timestamptz + interval '$n months' + g * interval '1 second'
  FROM generate_series(1000 * $n + 1, 1000 * $n + 100) g;
});
}

# ---------------------------------------------------------------------------
# A1. synchronous_commit = off, immediate shutdown in the middle of a run
#     (its load done and its watermark moved, nothing committed)
new_changes(1);
my $before = state('async', 'dst', 'id, v, _etl_run_id');
my $runner = start_held_run(q{SELECT etl_run('async')}, 'before_record',
	'synchronous_commit = off');
immediate_restart($runner, $holder);
is(state('async', 'dst', 'id, v, _etl_run_id'), $before,
	'A1: after an immediate shutdown mid-run with synchronous_commit = off, nothing of the run remains');
is(run_counts('async'), 'succeeded|200|100|100|0|0', 'A1: the next run loads the changes once');
is(differences($transformed, $loaded), '0', 'A1: the target equals the transformed source');

# A2. a run acknowledged under synchronous_commit = off whose commit record
#     is not written yet: the WAL writer is held (SIGSTOP), so only the
#     immediate shutdown ends it.  The whole run is lost: rows, watermark,
#     run and batch rows alike.
new_changes(2);
$before = state('async', 'dst', 'id, v, _etl_run_id');
my $walwriter = hold_walwriter();
my $async = $node->background_psql('postgres');
$async->query_safe('SET synchronous_commit = off');
is($async->query_safe(q{SELECT status || ' ' || rows_inserted || ' ' || rows_updated FROM etl_run('async')}),
	'succeeded 100 100', 'A2: the run commits (asynchronously)');
my $after = state('async', 'dst', 'id, v, _etl_run_id');
isnt($after, $before, 'A2: its commit is visible to other sessions');
is($async->query_safe(q{SELECT pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn()}),
	't', 'A2: its commit record is not flushed');
immediate_restart_held($walwriter, $async);
is(state('async', 'dst', 'id, v, _etl_run_id'), $before,
	'A2: the acknowledged run is lost wholly: target, watermark, runs and batches as before it');
is(run_counts('async'), 'succeeded|200|100|100|0|0', 'A2: the next run loads the changes once');
is(differences($transformed, $loaded), '0', 'A2: the target equals the transformed source');

# A3. CALL etl_catch_up with its steps committed asynchronously, the WAL
#     writer held: whatever the WAL buffers wrote out survives, as a prefix
#     of the steps; target, watermark, runs and batches agree on it, and the
#     call again finishes the work, each row written once
$node->safe_psql('postgres', q{
CREATE TABLE big (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE big_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
INSERT INTO big SELECT g, repeat('x', 200) || g, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 40000) g;
SELECT etl_create_pipeline('big', 'big', 'big_dst', watermark_column => 'at', batch_size => 5000);
CHECKPOINT;
});
$walwriter = hold_walwriter();
$async = $node->background_psql('postgres', on_error_stop => 0);
$async->query_safe(q{SET synchronous_commit = off; SET client_min_messages = warning;
CALL etl_catch_up('big')});
is($node->safe_psql('postgres', q{
SELECT count(*) FROM etl.runs WHERE pipeline = 'big' AND status = 'succeeded'}),
	'9', 'A3: the catch-up committed its steps');
immediate_restart_held($walwriter, $async);
my $agree = q{
SELECT (SELECT count(*) FROM big_dst) || ' ' ||
       -- the target holds exactly the source rows up to the watermark
       (SELECT count(*) FROM big WHERE at <= coalesce((SELECT watermark::timestamptz FROM etl.pipelines WHERE name = 'big'), '-infinity')) || ' ' ||
       (SELECT count(*) FROM ((SELECT id, v FROM big WHERE at <= coalesce((SELECT watermark::timestamptz FROM etl.pipelines WHERE name = 'big'), '-infinity'))
                              EXCEPT ALL SELECT id, v FROM big_dst) d) || ' ' ||
       -- each target row written by a recorded run, which counts it
       (SELECT count(*) FROM big_dst t WHERE NOT EXISTS (SELECT FROM etl.runs r WHERE r.run_id = t._etl_run_id)) || ' ' ||
       (SELECT coalesce(sum(rows_inserted), 0) FROM etl.runs WHERE pipeline = 'big') || ' ' ||
       -- each completed batch row belongs to a recorded run, and the last
       -- recorded run's watermark is the pipeline's
       (SELECT count(*) FROM etl.batches b WHERE pipeline = 'big' AND status = 'completed'
           AND NOT EXISTS (SELECT FROM etl.runs r WHERE r.run_id = b.run_id)) || ' ' ||
       (SELECT (SELECT watermark_to FROM etl.runs WHERE pipeline = 'big' ORDER BY run_id DESC LIMIT 1)
               IS NOT DISTINCT FROM watermark FROM etl.pipelines WHERE name = 'big')};
my ($n, $upto, $missing, $orphans, $counted, $orphan_batches, $same_wm) =
  split / /, $node->safe_psql('postgres', $agree);
note("A3: $n of 40000 rows survived the immediate shutdown");
ok($n < 40000 || $node->safe_psql('postgres', q{SELECT count(*) FROM etl.runs WHERE pipeline = 'big'}) < 9,
	'A3: the steps not yet written out are lost');
is("$n $missing $orphans $orphan_batches $same_wm", "$upto 0 0 0 true",
	'A3: the surviving steps agree: target = source up to the watermark, every row and batch of a recorded run, the last run\'s watermark the pipeline\'s');
is($counted, $n, 'A3: the recorded runs count the rows the target holds');
$async = $node->background_psql('postgres', on_error_stop => 0);
$async->query_safe(q{SET client_min_messages = warning; CALL etl_catch_up('big')});
$async->quit;
is(differences('SELECT id, v FROM big', 'SELECT id, v FROM big_dst'), '0',
	'A3: the call again finishes the catch-up: the target equals the source');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM big_dst t JOIN etl.runs r ON r.run_id = t._etl_run_id
 WHERE r.triggered_by = 'catch_up' AND r.status = 'succeeded'}),
	'40000', 'A3: each row written once, by a recorded catch-up step');
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT status, ',') FROM etl.batches WHERE pipeline = 'big' AND status IN ('started', 'staged')}),
	'', 'A3: no batch row is left started or staged');

# ---------------------------------------------------------------------------
# B1. temp_file_limit hit by the load's join of the batch with the target
$node->safe_psql('postgres', q{
CREATE TABLE lim (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE lim_dst (id int PRIMARY KEY, v text, _etl_row_hash bytea);
INSERT INTO lim SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 50000) g;
SELECT etl_create_pipeline('lim', 'lim', 'lim_dst', watermark_column => 'at',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');
SELECT etl_run('lim');
UPDATE lim SET v = v || '+', at = at + interval '1 year';
});
$before = state('lim', 'lim_dst', 'id, v');
my ($out, $err) = ('', '');
$node->psql('postgres', q{
\set VERBOSITY verbose
SET etl.work_mem = '64kB';
SET temp_file_limit = '64kB';
SELECT * FROM etl_run('lim');
SELECT current_setting('temp_file_limit') || ' ' || current_setting('etl.work_mem') AS settings;
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
like($err, qr/ERROR:  53400: run (\d+) of pipeline "lim" failed\nDETAIL:  temporary file size exceeds temp_file_limit \(64kB\)/,
	'B1: temp_file_limit in the load fails the run with 53400');
is($out, '64kB 64kB', 'B1: the caller\'s settings are unchanged');
is($node->safe_psql('postgres', q{
SELECT status || ' ' || sqlstate || ' ' || error_class || ' ' || rows_inserted || ' ' || rows_updated
  FROM etl.runs WHERE pipeline = 'lim' ORDER BY run_id DESC LIMIT 1}),
	'failed 53400 fatal 0 0', 'B1: the failure is recorded');
my @b = split /\|/, $before;
my @a = split /\|/, state('lim', 'lim_dst', 'id, v');
is(join('|', @a[0 .. 2, 4, 5]), join('|', @b[0 .. 2, 4, 5]),
	'B1: nothing of the batch is in the target; the watermark stays');
is(run_counts('lim'), 'succeeded|50000|0|50000|0|0', 'B1: the next run (no limit) completes');
is(differences('SELECT id, upper(v) FROM lim', 'SELECT id, v FROM lim_dst'), '0',
	'B1: the target equals the transformed source');

# B2. statement_timeout in the middle of the load: the target's trigger
#     waits on a lock held by another session at row 1500, the 500th
$node->safe_psql('postgres', q{
CREATE TABLE wait_ids (id int);
INSERT INTO wait_ids VALUES (1500), (2700);
CREATE FUNCTION wait_at_1500() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id IN (SELECT id FROM public.wait_ids) THEN PERFORM pg_advisory_xact_lock(4242); END IF;
  RETURN NEW;
END $$;
CREATE TABLE slow (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE slow_dst (id int PRIMARY KEY, v text);
CREATE TRIGGER wait_at_1500 BEFORE INSERT ON slow_dst FOR EACH ROW EXECUTE FUNCTION wait_at_1500();
INSERT INTO slow SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 1000) g;
SELECT etl_create_pipeline('slow', 'slow', 'slow_dst', watermark_column => 'at');
SELECT etl_run('slow');
INSERT INTO slow SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1001, 2000) g;
});
$before = state('slow', 'slow_dst', 'id, v');
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(4242)');
($out, $err) = ('', '');
$node->psql('postgres', q{
\set VERBOSITY verbose
SET statement_timeout = '1s';
SELECT * FROM etl_run('slow');
SELECT current_setting('statement_timeout') AS settings;
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
like($err, qr/ERROR:  57014: run (\d+) of pipeline "slow" failed\nDETAIL:  canceling statement due to statement timeout/,
	'B2: statement_timeout in the load fails the run with 57014');
is($out, '1s', 'B2: the caller\'s statement_timeout is unchanged');
is($node->safe_psql('postgres', q{
SELECT status || ' ' || sqlstate || ' ' || error_class || ' ' || attempts
  FROM etl.runs WHERE pipeline = 'slow' ORDER BY run_id DESC LIMIT 1}),
	'failed 57014 fatal 1', 'B2: the failure is recorded, not retried');
@b = split /\|/, $before;
@a = split /\|/, state('slow', 'slow_dst', 'id, v');
is(join('|', @a[0 .. 2, 4, 5]), join('|', @b[0 .. 2, 4, 5]),
	'B2: none of the rows inserted before the timeout is left; the watermark stays');
$locker->query_safe('SELECT pg_advisory_unlock(4242)');
$locker->quit;
is(run_counts('slow'), 'succeeded|1000|1000|0|0|0', 'B2: the next run completes');
is(differences('SELECT id, v FROM slow', 'SELECT id, v FROM slow_dst'), '0',
	'B2: the target equals the source');

# B3. statement_timeout covers a whole CALL etl_catch_up: hit in its second
#     step (row 2700), the first step stays committed, the second leaves
#     nothing but its batch row, and the call again finishes the work
$node->safe_psql('postgres', q{
SELECT etl_alter_pipeline('slow', batch_size => 500);
INSERT INTO slow SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(2001, 4000) g;
});
$locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(4242)');
($out, $err) = ('', '');
$node->psql('postgres', q{
\set VERBOSITY verbose
SET statement_timeout = '1s';
CALL etl_catch_up('slow');
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
like($err, qr/NOTICE:  00000: catch-up of "slow": step 1 of 4, 500 rows.*ERROR:  57014: run \d+ of pipeline "slow" failed\nDETAIL:  canceling statement due to statement timeout/s,
	'B3: statement_timeout in the second step of a catch-up fails it with 57014');
is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM slow_dst WHERE id > 2000) || ' ' ||
       (SELECT max(id) FROM slow_dst) || ' ' ||
       (SELECT watermark::timestamptz = '2024-01-01'::timestamptz + 2500 * interval '1 second' FROM etl.pipelines WHERE name = 'slow') || ' ' ||
       (SELECT string_agg(status, ',' ORDER BY batch_id) FROM etl.batches WHERE pipeline = 'slow' AND kind = 'catch_up')}),
	'500 2500 true completed,failed', 'B3: the first step stays committed, the second left its failed batch row only');
$locker->query_safe('SELECT pg_advisory_unlock(4242)');
$locker->quit;
$node->safe_psql('postgres', q{SET client_min_messages = warning; CALL etl_catch_up('slow')});
is(differences('SELECT id, v FROM slow', 'SELECT id, v FROM slow_dst'), '0',
	'B3: the call again finishes the catch-up: the target equals the source');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM etl.batches WHERE pipeline = 'slow' AND status IN ('started', 'staged')}),
	'0', 'B3: no batch row is left started');

# ---------------------------------------------------------------------------
# C1. a crash after the autonomous writer committed a failed run's record
#     and dead letters, before the run raised its ERROR: the record and the
#     dead letters stay, nothing of the batch is loaded, the watermark stays
$node->safe_psql('postgres', q{
CREATE TABLE dl (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE dl_dst (id int PRIMARY KEY, n int);
INSERT INTO dl SELECT g, g::text, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 100) g;
SELECT etl_create_pipeline('dl', 'dl', 'dl_dst', watermark_column => 'at', error_threshold => 10,
    transform => 'SELECT id, v::int AS n FROM etl_delta');
SELECT etl_run('dl');
-- 20 new rows, 5 of them bad: 25% > 10%
INSERT INTO dl SELECT g, CASE WHEN g % 4 = 0 THEN 'bad' || g ELSE g::text END,
       '2024-01-02'::timestamptz + g * interval '1 second'
  FROM generate_series(101, 120) g;
});
$before = state('dl', 'dl_dst', 'id, n');
$runner = start_held_run(q{SELECT etl_run('dl')}, 'after_failure_record');
my $failed = $node->safe_psql('postgres', q{
SELECT run_id || ' ' || status || ' ' || rows_rejected FROM etl.runs WHERE pipeline = 'dl' ORDER BY run_id DESC LIMIT 1});
like($failed, qr/^\d+ failed [3-5]$/, 'C1: the failure record is committed while the run waits');
immediate_restart($runner, $holder);
my ($failed_id, undef, $rejected) = split / /, $failed;
is($node->safe_psql('postgres', qq{
SELECT (SELECT status || ' ' || rows_rejected FROM etl.runs WHERE run_id = $failed_id) || ' ' ||
       (SELECT count(*) FROM etl.dead_letters WHERE run_id = $failed_id AND status = 'pending') || ' ' ||
       (SELECT count(*) FROM etl.dead_letters WHERE run_id = $failed_id AND record->>'v' LIKE 'bad%')}),
	"failed $rejected $rejected $rejected",
	'C1: after the crash the failed run and its dead letters are kept, pending');
@b = split /\|/, $before;
@a = split /\|/, state('dl', 'dl_dst', 'id, n');
is(join('|', @a[0 .. 2]), join('|', @b[0 .. 2]), 'C1: nothing of the batch is loaded; the watermark stays');
is($node->safe_psql('postgres', q{
SELECT last_status || ' ' || pending_dead_letters FROM etl.status WHERE pipeline = 'dl'}),
	"failed $rejected", 'C1: etl.status shows the failure and its dead letters');
# the source is fixed: the next run loads every row; replay finds the dead
# letters superseded by the newer versions
$node->safe_psql('postgres', q{
UPDATE dl SET v = id::text, at = at + interval '1 day' WHERE v LIKE 'bad%'});
is(run_counts('dl'), 'succeeded|20|20|0|0|0', 'C1: the next run loads the fixed batch');
is($node->safe_psql('postgres', q{SELECT retried || ' ' || resolved || ' ' || still_pending FROM etl_retry_dead_letters('dl')}),
	"$rejected $rejected 0", 'C1: replay resolves the dead letters as superseded');
is(differences('SELECT id, v::int FROM dl', 'SELECT id, n FROM dl_dst'), '0',
	'C1: the target equals the transformed source');

# C2. a successful run with dead letters, crashed before its commit: no
#     dead letter and no row of it stays; the next run rejects the bad row
#     once and loads the rest
$node->safe_psql('postgres', q{
INSERT INTO dl SELECT g, CASE WHEN g = 130 THEN 'bad' ELSE g::text END,
       '2024-01-03'::timestamptz + g * interval '1 second'
  FROM generate_series(121, 140) g;
});
$before = state('dl', 'dl_dst', 'id, n');
$runner = start_held_run(q{SELECT etl_run('dl')}, 'before_record');
immediate_restart($runner, $holder);
is(state('dl', 'dl_dst', 'id, n'), $before,
	'C2: a run with dead letters cut before its commit leaves no row and no dead letter');
is(run_counts('dl'), 'succeeded|20|19|0|0|1', 'C2: the next run loads 19 rows and rejects one');
is($node->safe_psql('postgres', q{
SELECT count(*) || ' ' || min(record->>'id') FROM etl.dead_letters WHERE pipeline = 'dl' AND status = 'pending'}),
	'1 130', 'C2: one dead letter, for the bad row');

# C3. a crash between the DROP and the ATTACH of a partition swap: the
#     target keeps its partitions (same OIDs) and rows, no staging table or
#     new partition is left, the watermark stays; the next run swaps
$node->safe_psql('postgres', q{
CREATE TABLE sales (id int PRIMARY KEY, day date NOT NULL, amount int, at timestamptz NOT NULL);
CREATE TABLE sales_dw (id int, day date NOT NULL, amount int, PRIMARY KEY (id, day))
  PARTITION BY RANGE (day);
CREATE TABLE sales_dw_jan PARTITION OF sales_dw FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE sales_dw_feb PARTITION OF sales_dw FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE TABLE sales_dw_mar PARTITION OF sales_dw FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
INSERT INTO sales SELECT g, date '2024-01-01' + g % 90, g, '2024-05-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 900) g;
SELECT etl_create_pipeline('sales', 'sales', 'sales_dw', key => ARRAY['id'], watermark_column => 'at',
    load => 'partition_swap', options => '{"partition_interval": "1 month"}');
SELECT etl_run('sales');
-- changes in February, and a row for April (a new partition)
UPDATE sales SET amount = amount + 1000, at = at + interval '1 day' WHERE day >= '2024-02-01' AND day < '2024-02-08';
INSERT INTO sales VALUES (1000, '2024-04-15', 1000, '2024-05-03');
});
my $partitions = q{
SELECT string_agg(c.relname || ':' || c.oid, ',' ORDER BY c.relname)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'sales_dw'::regclass};
my $parts_before = $node->safe_psql('postgres', $partitions);
$before = state('sales', 'sales_dw', 'id, day, amount');
$runner = start_held_run(q{SELECT etl_run('sales')}, 'swap_dropped');
immediate_restart($runner, $holder);
is($node->safe_psql('postgres', $partitions), $parts_before,
	'C3: after a crash between DROP and ATTACH the target has its partitions, with their OIDs');
is(state('sales', 'sales_dw', 'id, day, amount'), $before,
	'C3: its rows, the watermark and the run log are as before the run');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_class WHERE relname LIKE '%etl_swap%' OR relname LIKE 'sales_dw_p2%'}),
	'0', 'C3: no staging table or new partition is left');
is(run_counts('sales'), 'succeeded|71|1|70|0|0', 'C3: the next run swaps the changes in');
my @parts = split /,/, $node->safe_psql('postgres', $partitions);
my @old = split /,/, $parts_before;
is(scalar(@parts), 4, 'C3: the new partition is created');
# by name: feb, jan, mar, then the new p20240401
is_deeply([ @parts[1, 2] ], [ @old[1, 2] ], 'C3: the partitions of January and March keep their OIDs');
isnt($parts[0], $old[0], 'C3: February\'s partition is rebuilt');
like($parts[3], qr/^sales_dw_p20240401:/, 'C3: April\'s partition is named by its lower bound');
is(differences('SELECT id, day, amount FROM sales', 'SELECT id, day, amount FROM sales_dw'), '0',
	'C3: the target equals the source');

# C4. statement_timeout between the DROP and the ATTACH of a swap: the
#     run fails with 57014, the target keeps its partitions and rows, no
#     staging table is left; the next run swaps
$node->safe_psql('postgres', q{
UPDATE sales SET amount = amount + 1, at = '2024-06-01' WHERE day >= '2024-03-01' AND day < '2024-03-04'});
$parts_before = $node->safe_psql('postgres', $partitions);
$before = state('sales', 'sales_dw', 'id, day, amount');
$holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(727274)');
($out, $err) = ('', '');
$node->psql('postgres', q{
\set VERBOSITY verbose
SET statement_timeout = '1s';
SET etl.debug_pause_at = 'swap_dropped';
SELECT * FROM etl_run('sales');
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
$holder->quit;
like($err, qr/ERROR:  57014: run \d+ of pipeline "sales" failed\nDETAIL:  canceling statement due to statement timeout/,
	'C4: statement_timeout between DROP and ATTACH fails the run with 57014');
is($node->safe_psql('postgres', $partitions), $parts_before,
	'C4: the target keeps its partitions, with their OIDs');
@b = split /\|/, $before;
@a = split /\|/, state('sales', 'sales_dw', 'id, day, amount');
is(join('|', @a[0 .. 2, 4, 5]), join('|', @b[0 .. 2, 4, 5]), 'C4: its rows and the watermark stay');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname LIKE '%etl_swap%'}),
	'0', 'C4: no staging table is left');
is(run_counts('sales'), 'succeeded|30|0|30|0|0', 'C4: the next run swaps the changes in');
is(differences('SELECT id, day, amount FROM sales', 'SELECT id, day, amount FROM sales_dw'), '0',
	'C4: the target equals the source');

# ---------------------------------------------------------------------------
# D1. the autonomous writer connects with the database's settings: a
#     database read-only by default (its sessions turn it off to run) still
#     gets the failure record and dead letters of its failed runs
$node->safe_psql('postgres', 'CREATE DATABASE ro');
$node->safe_psql('ro', q{
CREATE EXTENSION etl_ext;
CREATE TABLE s (id int PRIMARY KEY, v text, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE d (id int PRIMARY KEY, n int);
INSERT INTO s (id, v) VALUES (1, '1'), (2, 'bad');
SELECT etl_create_pipeline('ro', 's', 'd', watermark_column => 'at', error_threshold => 10,
    transform => 'SELECT id, v::int AS n FROM etl_delta');
ALTER DATABASE ro SET default_transaction_read_only = on;
});
($out, $err) = ('', '');
$node->psql('ro', q{
\set VERBOSITY verbose
SET default_transaction_read_only = off;
SELECT * FROM etl_run('ro');
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
like($err, qr/ERROR:  22000: run \d+ of pipeline "ro" failed/, 'D1: the run fails on its bad row');
unlike($err, qr/WARNING/, 'D1: no warning: the failure record is kept');
is($node->safe_psql('ro', q{
SELECT (SELECT string_agg(status || ' ' || rows_rejected, ',') FROM etl.runs) || ' ' ||
       (SELECT string_agg(status || ' ' || (record->>'v'), ',') FROM etl.dead_letters) || ' ' ||
       (SELECT last_status FROM etl.status)}),
	'failed 1 pending bad failed', 'D1: the failed run and its dead letter are recorded');

# D2. when the writer fails all the same (here a superuser's trigger on the
#     dead letters), the WARNING says so with the writer's SQLSTATE
$node->safe_psql('ro', q{
SET default_transaction_read_only = off;
CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'dead letters refused' USING ERRCODE = 'P0042'; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON etl.dead_letters FOR EACH ROW EXECUTE FUNCTION public.refuse();
});
($out, $err) = ('', '');
$node->psql('ro', q{
\set VERBOSITY verbose
SET default_transaction_read_only = off;
SELECT * FROM etl_run('ro');
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
like($err, qr/WARNING:  P0042: the failure record of run \d+ of pipeline "ro" is not kept: the autonomous writer failed\nDETAIL:  dead letters refused/,
	'D2: a failed writer is reported with its own SQLSTATE, not as an internal error');
like($err, qr/ERROR:  22000: run \d+ of pipeline "ro" failed/, 'D2: and the run fails as before');
$node->safe_psql('ro', q{SET default_transaction_read_only = off; DROP TRIGGER refuse ON etl.dead_letters});

is($node->safe_psql('postgres', q{SELECT count(*) FROM etl.batches WHERE status IN ('started', 'staged')}),
	'0', 'no batch row is left started or staged');
$node->stop;
done_testing();
