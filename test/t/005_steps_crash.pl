# Crashes in the middle of CALL etl_catch_up and CALL etl_backfill.  The
# backend running the procedure is killed with SIGKILL (the postmaster
# restarts every backend) or terminated, or the server is stopped with
# pg_ctl stop -m immediate, at four points of a step that follows committed
# ones:
#   between        the previous step committed, this one's batch row not
#                  yet written (the procedure waits for a lock on the batch
#                  log);
#   after_lock     this step's 'started' row committed, its run not begun;
#   after_load     its load ran, nothing of it committed;
#   before_record  its load ran (and a catch-up's watermark moved), its run
#                  not recorded, nothing committed.
# After the restart the same call again finishes the work: the target equals
# the transformed source row for row (no duplicate, no gap), each row written
# once, by the step whose range holds it; no batch row is left 'started' or
# 'staged'; the crashed step's row is 'abandoned' with its reason and its
# range was done by a later completed step; a catch-up's watermark is the
# source's max, a backfill's is unchanged; the runs are recorded as
# 'catch_up' or 'backfill'; and both procedures print one progress NOTICE per
# committed step, in the crashed session as in the resumed one.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EtlLogs;

my $node = PostgreSQL::Test::Cluster->new('steps');
$node->init;
$node->append_conf('postgresql.conf', qq{
restart_after_crash = on
timezone = 'UTC'
log_line_prefix = '%m [%p] %e %q%a '
});
$node->start;

# 20,000 source rows over ten days, each at its own time: a catch-up in
# batches of 5,000 takes four steps (and a fifth that finds nothing), a
# backfill by day ten
$node->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE TABLE src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO src SELECT g, 'v' || g, '2024-01-01'::timestamptz + (g - 1) * interval '43 seconds'
  FROM generate_series(1, 20000) g;
});
my @day_rows = split /\n/, $node->safe_psql('postgres', q{
SELECT count(src.id) FROM generate_series('2024-01-01'::timestamptz, '2024-01-10', '1 day') d
  LEFT JOIN src ON src.at >= d AND src.at < d + interval '1 day'
 GROUP BY d ORDER BY d});
is(scalar(@day_rows), 10, 'the source spans ten days');

my %transform = (
	catch_up => q{upper(v)},
	backfill => q{upper(v) || '/2'});
my $backfill_args = q{'2024-01-01', '2024-01-11', '1 day'};

# the session holding advisory lock 727274, on which paused runs wait
my $holder;

sub hold_pauses
{
	$holder = $node->background_psql('postgres');
	$holder->query_safe('SELECT pg_advisory_lock(727274)');
}

sub completed_steps
{
	my ($p) = @_;
	return qq{(SELECT count(*) FROM etl.batches
  WHERE pipeline = '$p' AND kind <> 'incremental' AND status = 'completed')};
}

# activity: what the procedure's backend does, for a failure's message
sub activity
{
	my ($p) = @_;
	return $node->safe_psql('postgres', qq{
SELECT a.state || ' ' || coalesce(a.wait_event_type || '/' || a.wait_event, '-') || ' '
       || coalesce((SELECT string_agg(l.locktype || ' ' || coalesce(l.relation::regclass::text, l.objid::text) || ' ' || l.mode, ', ')
                      FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted), 'no lock awaited')
  FROM pg_stat_activity a WHERE a.application_name = '$p'});
}

# wait_paused: the procedure of pipeline $p (its session's application_name)
# waits at its pause after $done completed steps
sub wait_paused
{
	my ($p, $done) = @_;
	$node->poll_query_until('postgres', qq{
SELECT (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name = '$p' AND l.locktype = 'advisory'
           AND l.objid = 727274 AND l.objsubid = 1 AND NOT l.granted) = 1
   AND } . completed_steps($p) . qq{ = $done})
	  or die "the procedure of $p did not pause after $done steps: " . activity($p);
}

# next_step: lets the paused step go on and holds the next one at the same
# phase.  A second holder queues for the lock behind the paused run: it gets
# the lock when that step commits, before the next step asks for it.
sub next_step
{
	my ($p, $done) = @_;
	my $next = $node->background_psql('postgres');
	my $pid = $next->query_safe('SELECT pg_backend_pid()');
	$next->query_until(qr/locking/, qq{\\echo locking
SELECT pg_advisory_lock(727274);
});
	$node->poll_query_until('postgres', qq{
SELECT count(*) = 1 FROM pg_locks
 WHERE pid = $pid AND locktype = 'advisory' AND objid = 727274 AND NOT granted})
	  or die 'the next holder does not queue for the lock';
	$holder->query_safe('SELECT pg_advisory_unlock(727274)');
	$holder->quit;
	$holder = $next;
	wait_paused($p, $done);
}

# stop_between_steps: lets the paused step commit and stops the procedure
# before it writes the next step's batch row: a SHARE lock on the batch log,
# queued behind the step (which holds ROW EXCLUSIVE since its start), is
# granted when it commits and holds the next etl_batch_start; returns the
# session holding that lock
sub stop_between_steps
{
	my ($p, $done) = @_;
	my $locker = $node->background_psql('postgres');
	my $pid = $locker->query_safe('SELECT pg_backend_pid()');
	$locker->query_until(qr/locking/, qq{\\echo locking
BEGIN;
LOCK TABLE etl.batches IN SHARE MODE;
});
	$node->poll_query_until('postgres', qq{
SELECT count(*) = 1 FROM pg_locks
 WHERE pid = $pid AND relation = 'etl.batches'::regclass AND NOT granted})
	  or die 'the lock on the batch log does not queue';
	$holder->query_safe('SELECT pg_advisory_unlock(727274)');
	$node->poll_query_until('postgres', qq{
SELECT (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name = '$p' AND l.relation = 'etl.batches'::regclass
           AND NOT l.granted) = 1
   AND } . completed_steps($p) . qq{ = $done})
	  or die "the procedure of $p did not stop after $done steps";
	return $locker;
}

# end_session: closes a session whose backend may be gone and returns what
# it printed on stderr.  Not quit: a psql whose connection died has exited,
# and writing \q to it fails before its output is read; closing its input
# ends the others.
sub end_session
{
	my ($s) = @_;
	eval { $s->{run}->finish };
	return $s->{stderr};
}

# crash: SIGKILL or terminate the backend of the procedure of $p, or stop the
# server with -m immediate; ends the sessions and returns when the server
# accepts connections again, with what the procedure's session printed
sub crash
{
	my ($how, $p, $proc, @others) = @_;
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = '$p'");
	die "no backend runs the procedure of $p" unless $pid =~ /^\d+$/;
	if ($how eq 'sigkill')
	{
		my $offset = -s $node->logfile;
		etl_killed($node, $pid);
		kill 'KILL', $pid or die "cannot kill backend $pid: $!";
		$node->wait_for_log(
			qr/server process \(PID $pid\) was terminated by signal 9/, $offset);
		$node->wait_for_log(qr/all server processes terminated; reinitializing/,
			$offset);
		$node->poll_query_until('postgres', 'SELECT true')
		  or die 'the server did not restart';
	}
	elsif ($how eq 'terminate')
	{
		$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
		$node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
		  or die "backend $pid did not exit";
	}
	else
	{
		$node->stop('immediate');
	}

	# the sessions end before the server starts again: a postmaster started
	# while their psql runs inherits its pipes, and psql never sees the end
	# of its input
	my $output = end_session($proc);
	end_session($_) for @others;
	$node->start if $how eq 'immediate';
	return $output;
}

# progress: the NOTICEs of the procedures about pipeline $p in a session's
# output, each checked for its rate and ETA, which are then cut off (they
# are timings); a line without them is kept whole and fails the comparison
sub progress
{
	my ($stderr, $p) = @_;
	my @lines;
	for my $line (split /\n/, $stderr)
	{
		next unless $line =~ /NOTICE:  ((?:catch-up|backfill) of "\Q$p\E".*)$/;
		my $notice = $1;
		$notice =~ s/, \d+ rows\/s, ETA \d\d:\d\d:\d\d$//
		  unless $notice =~ /already done, skipped$/;
		push @lines, $notice;
	}
	return \@lines;
}

# the progress NOTICEs expected of steps $first .. $last
sub catch_up_progress
{
	my ($p, $first, $last, $nsteps, $total) = @_;
	my @lines;
	my $done = 0;
	for my $n ($first .. $last)
	{
		my $rows = $n <= $nsteps ? 5000 : 0;
		$done += $rows;
		my $of = $n > $nsteps ? $n : $nsteps;
		push @lines,
		  qq{catch-up of "$p": step $n of $of, $rows rows ($done of $total)};
	}
	return \@lines;
}

sub day { return sprintf('2024-01-%02d 00:00:00+00', $_[0]); }

sub backfill_progress
{
	my ($p, $skipped, $first, $last) = @_;
	my @lines;
	for my $n (1 .. $skipped)
	{
		push @lines, sprintf('backfill of "%s": step %d/10 [%s, %s) already done, skipped',
			$p, $n, day($n), day($n + 1));
	}
	for my $n ($first .. $last)
	{
		push @lines, sprintf('backfill of "%s": step %d/10 [%s, %s): %d rows',
			$p, $n, day($n), day($n + 1), $day_rows[ $n - 1 ]);
	}
	return \@lines;
}

# the statuses of the steps' batch rows (not the first load's of a backfill)
sub batch_statuses
{
	my ($p) = @_;
	return $node->safe_psql('postgres', qq{
SELECT string_agg(status || ':' || n, ' ' ORDER BY status)
  FROM (SELECT status, count(*) AS n FROM etl.batches
         WHERE pipeline = '$p' AND kind <> 'incremental' GROUP BY status) s});
}

sub watermark
{
	my ($p) = @_;
	return $node->safe_psql('postgres',
		"SELECT watermark FROM etl.pipelines WHERE name = '$p'");
}

# create_pipeline: a target and its pipeline.  A catch-up's target starts
# empty and has no key: its steps append, so a range loaded twice would show
# as duplicates.  A backfill's target has a key, is loaded by one run, then
# the transform changes: the backfill reprocesses the ten days through the
# new one, a merge that updates each row.
sub create_pipeline
{
	my ($kind, $p) = @_;
	if ($kind eq 'catch_up')
	{
		$node->safe_psql('postgres', qq{
CREATE TABLE $p (id int, v text, at timestamptz, _etl_row_hash bytea, _etl_run_id bigint);
SELECT etl_create_pipeline('$p', 'src', '$p', watermark_column => 'at', load => 'append',
    batch_size => 5000, transform => 'SELECT id, upper(v) AS v, at FROM etl_delta');
});
		return;
	}
	$node->safe_psql('postgres', qq{
CREATE TABLE $p (id int PRIMARY KEY, v text, at timestamptz,
                 _etl_row_hash bytea, _etl_run_id bigint);
SELECT etl_create_pipeline('$p', 'src', '$p', watermark_column => 'at',
    transform => 'SELECT id, upper(v) AS v, at FROM etl_delta');
});
	is($node->safe_psql('postgres', "SELECT status || ' ' || rows_inserted FROM etl_run('$p')"),
		'succeeded 20000', "$p: the first load");
	$node->safe_psql('postgres', qq{
SELECT etl_alter_pipeline('$p',
    transform => \$\$SELECT id, upper(v) || '/2' AS v, at FROM etl_delta\$\$)});
}

# crash_case: a catch-up or backfill of its own pipeline crashed at $at by
# $how, after 2 (catch-up) or 3 (backfill) completed steps, then resumed
sub crash_case
{
	my ($kind, $how, $at) = @_;
	my $p = ($kind eq 'catch_up' ? 'cu' : 'bf') . "_${how}_$at";
	my $call =
	  $kind eq 'catch_up'
	  ? "CALL etl_catch_up('$p')"
	  : "CALL etl_backfill('$p', $backfill_args)";
	my $done = $kind eq 'catch_up' ? 2 : 3;    # completed before the crash
	my $mid = $at ne 'between';                # a started row is left

	create_pipeline($kind, $p);
	my $wm_before = watermark($p);

	# the procedure, paused at its first step, then step by step further
	hold_pauses();
	my $proc = $node->background_psql('postgres', on_error_stop => 0);
	$proc->query_safe("SET application_name = '$p'");
	$proc->query_safe("SET etl.debug_pause_at = '"
		  . ($mid ? $at : 'after_lock') . "'");
	$proc->query_until(qr/calling/, qq{\\echo calling
$call;
});
	wait_paused($p, 0);
	next_step($p, $_) for 1 .. ($mid ? $done : $done - 1);
	my $locker;
	$locker = stop_between_steps($p, $done) unless $mid;

	my $crashed_output = crash($how, $p, $proc, $holder, $locker // ());

	# what the crash left: the completed steps, and the started row of the
	# step it cut short, whose work is gone
	is(batch_statuses($p), "completed:$done" . ($mid ? ' started:1' : ''),
		"$p: the crash left $done completed steps"
		  . ($mid ? ' and the started row of the next' : ''));
	if ($kind eq 'catch_up')
	{
		is($node->safe_psql('postgres', qq{
SELECT count(*) || ' ' || (max(at) = (SELECT watermark::timestamptz FROM etl.pipelines WHERE name = '$p'))
  FROM $p}),
			'10000 true', "$p: the target holds the completed steps, the watermark is their end");
	}
	else
	{
		is($node->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE v LIKE '%/2') = (SELECT count(*) FROM src WHERE at < '2024-01-04')
  FROM $p}),
			't', "$p: the target holds the completed steps' days reprocessed, and no others");
	}
	is_deeply(progress($crashed_output, $p),
		$kind eq 'catch_up'
		? catch_up_progress($p, 1, $done, 4, 20000)
		: backfill_progress($p, 0, 1, $done),
		"$p: the crashed session printed one progress NOTICE per committed step");

	# the same call again finishes the work
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql('postgres', $call, stdout => \$stdout, stderr => \$stderr);
	is($rc, 0, "$p: the resumed call succeeds");
	is_deeply(progress($stderr, $p),
		$kind eq 'catch_up'
		? catch_up_progress($p, 1, 3, 2, 10000)
		: backfill_progress($p, $done, $done + 1, 10),
		"$p: the resumed call printed one progress NOTICE per step"
		  . ($kind eq 'backfill' ? ', the completed ones skipped' : ''));
	if ($kind eq 'catch_up')
	{
		like($stderr, qr/step 3 of 3, 0 rows \(10000 of 10000\), \d+ rows\/s, ETA 00:00:00$/m,
			"$p: the last step's ETA is zero");
	}

	check_result($kind, $p, $mid, $wm_before);
}

# check_result: what a completed catch-up or backfill leaves after a crash
sub check_result
{
	my ($kind, $p, $mid, $wm_before) = @_;
	my $expected = "SELECT id, $transform{$kind} AS v, at FROM src";
	my $nsteps = $kind eq 'catch_up' ? 5 : 10;

	is($node->safe_psql('postgres', qq{
SELECT count(*) || ' rows, ' || (SELECT count(*) FROM (
  ($expected EXCEPT ALL SELECT id, v, at FROM $p)
  UNION ALL
  (SELECT id, v, at FROM $p EXCEPT ALL $expected)) d) || ' differences'
  FROM $p}),
		'20000 rows, 0 differences', "$p: the target equals the transformed source, row for row");

	is(batch_statuses($p), ($mid ? 'abandoned:1 ' : '') . "completed:$nsteps",
		"$p: $nsteps completed steps" . ($mid ? ', the crashed one abandoned' : ''));
	is($node->safe_psql('postgres', qq{
SELECT count(*) FROM etl.batches WHERE pipeline = '$p' AND status IN ('started', 'staged')}),
		'0', "$p: no batch row is left started or staged");
	if ($mid)
	{
		is($node->safe_psql('postgres', qq{
SELECT error FROM etl.batches WHERE pipeline = '$p' AND status = 'abandoned'}),
			'left started by a session that ended before its step committed',
			"$p: the abandoned row says why");
	}

	# the steps' ranges: for a catch-up contiguous from the start to the
	# source's max, with the crashed step's range done by the step after it;
	# for a backfill each day completed once, the crashed one's by a later step
	if ($kind eq 'catch_up')
	{
		is($node->safe_psql('postgres', qq{
WITH c AS (
  SELECT batch_id, range_from, range_to,
         lag(range_to) OVER (ORDER BY batch_id) AS previous_to,
         row_number() OVER (ORDER BY batch_id) AS n
    FROM etl.batches WHERE pipeline = '$p' AND status = 'completed')
SELECT count(*) FILTER (WHERE n = 1 AND range_from IS NOT NULL)
       + count(*) FILTER (WHERE n > 1 AND range_from IS DISTINCT FROM previous_to)
       || ' gaps, ends at max: '
       || (SELECT range_to::timestamptz = (SELECT max(at) FROM src) FROM c ORDER BY n DESC LIMIT 1)
  FROM c}),
			'0 gaps, ends at max: true', "$p: the completed steps' ranges are contiguous up to the source's max");
		is($node->safe_psql('postgres', qq{
SELECT count(*) FROM etl.batches a
 WHERE a.pipeline = '$p' AND a.status = 'abandoned'
   AND (SELECT n.range_from FROM etl.batches n
         WHERE n.pipeline = a.pipeline AND n.status = 'completed' AND n.batch_id > a.batch_id
         ORDER BY n.batch_id LIMIT 1)
       = (SELECT b.range_to FROM etl.batches b
           WHERE b.pipeline = a.pipeline AND b.status = 'completed' AND b.batch_id < a.batch_id
           ORDER BY b.batch_id DESC LIMIT 1)}),
			'1', "$p: the crashed step's range was done by the next completed step")
		  if $mid;
	}
	else
	{
		is($node->safe_psql('postgres', qq{
SELECT count(*) || ' ' || count(DISTINCT (range_from, range_to)) FROM etl.batches
 WHERE pipeline = '$p' AND kind = 'backfill' AND status = 'completed'}),
			'10 10', "$p: each day completed once");
		is($node->safe_psql('postgres', qq{
SELECT count(*) FROM etl.batches a
 WHERE a.pipeline = '$p' AND a.status = 'abandoned'
   AND EXISTS (SELECT FROM etl.batches c
                WHERE c.pipeline = a.pipeline AND c.status = 'completed'
                  AND c.range_from = a.range_from AND c.range_to = a.range_to
                  AND c.batch_id > a.batch_id)}),
			'1', "$p: the crashed step's day was done by a later completed step")
		  if $mid;
	}

	# each row written once, by the run of the completed step whose range
	# holds it; the runs' counts add up to the source, nothing twice
	my $in_range =
	  $kind eq 'catch_up'
	  ? '(b.range_from IS NULL OR t.at > b.range_from::timestamptz) AND t.at <= b.range_to::timestamptz'
	  : 't.at >= b.range_from::timestamptz AND t.at < b.range_to::timestamptz';
	is($node->safe_psql('postgres', qq{
SELECT count(*) FROM $p t
 WHERE t._etl_run_id IS DISTINCT FROM (
   SELECT b.run_id FROM etl.batches b
    WHERE b.pipeline = '$p' AND b.kind = '$kind' AND b.status = 'completed' AND $in_range)}),
		'0', "$p: each row was written by the run of the step whose range holds it");
	is($node->safe_psql('postgres', qq{
SELECT triggered_by, status, count(*), sum(rows_extracted), sum(rows_inserted), sum(rows_updated)
  FROM etl.runs WHERE pipeline = '$p' GROUP BY 1, 2 ORDER BY 1, 2}),
		$kind eq 'catch_up'
		? 'catch_up|succeeded|5|20000|20000|0'
		: "backfill|succeeded|10|20000|0|20000\nmanual|succeeded|1|20000|20000|0",
		"$p: the steps' runs are recorded as $kind, their rows add up to the source once");
	is($node->safe_psql('postgres', qq{
SELECT count(*) FROM etl.batches b JOIN etl.runs r USING (run_id)
 WHERE b.pipeline = '$p' AND b.status = 'completed'
   AND r.triggered_by = b.kind AND r.status = 'succeeded'}),
		$nsteps, "$p: each completed step names its run");

	if ($kind eq 'catch_up')
	{
		is($node->safe_psql('postgres', qq{
SELECT watermark::timestamptz = (SELECT max(at) FROM src) FROM etl.pipelines WHERE name = '$p'}),
			't', "$p: the watermark is the source's max");
	}
	else
	{
		is(watermark($p), $wm_before, "$p: the backfill left the watermark alone");
	}
}

for my $how (qw(sigkill immediate))
{
	for my $at (qw(between after_lock after_load before_record))
	{
		crash_case('catch_up', $how, $at);
		crash_case('backfill', $how, $at);
	}
}
crash_case('catch_up', 'terminate', 'before_record');
crash_case('backfill', 'terminate', 'after_lock');

$node->stop;
done_testing();
