# A failure whose record no background worker could write: the failing run
# keeps it in a file, etl.status and the metrics show it at once, and the
# next run of the pipeline records it (runs, dead letters) and sends its
# run_failed event - in its own transaction when it succeeds (not when the
# caller rolls that back), through its worker with its own record when it
# fails.  Dropping the pipeline drops what waits for it.  A row version
# is pending as one dead letter at most, whichever order the records come
# in.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('unrecorded');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_line_prefix = '%m [%p] %e %q%a '
max_worker_processes = 0
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE ROLE regress_unrec_reader;
CREATE TABLE src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO src SELECT g, CASE WHEN g = 3 THEN 'bad' ELSE 'ok' END,
                       '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 5) g;
CREATE TABLE dst (id int PRIMARY KEY, v text CHECK (v <> 'bad'));
SELECT etl_create_pipeline('strict', 'src', 'dst', watermark_column => 'at', error_threshold => 0);
});
my $datadir = $node->data_dir;
my $dboid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'postgres'});
my $pid = $node->safe_psql('postgres', q{SELECT pipeline_id FROM etl.pipelines WHERE name = 'strict'});

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN etl_events');

# events(): the run_failed events the listener has received, decoded; asks
# until it has at least $want of them or 10 s passed ($want 0: a few times)
sub events
{
	my ($want) = @_;
	my @ev;
	my $tries = $want ? 100 : 3;
	for (1 .. $tries)
	{
		my $out = $listener->query('SELECT 1');
		while ($out =~ /^Asynchronous notification "etl_events" with payload "(.*)" received from server process with PID \d+\.$/mg)
		{
			push @ev, decode_json($1);
		}
		last if $want && @ev >= $want;
		select(undef, undef, undef, 0.1);
	}
	return @ev;
}

# waiting(): the failure records waiting in files for the pipeline
sub waiting
{
	my $dir = "$datadir/etl_ext/unrecorded/$dboid";
	return () unless -d $dir;
	opendir(my $dh, $dir) or die "opendir $dir: $!";
	my @files = sort grep { /^$pid\.\d+\.json$/ } readdir($dh);
	closedir($dh);
	return @files;
}

sub status
{
	return $node->safe_psql('postgres', q{
SELECT concat_ws(' ', last_status, consecutive_failures, unrecorded_failures)
  FROM etl.status WHERE pipeline = 'strict'});
}

# 1. no worker slot: the run fails, its record waits in a file
my ($stdout, $stderr) = ('', '');
my $rc = $node->psql('postgres', q{SELECT * FROM etl_run('strict')}, stderr => \$stderr);
isnt($rc, 0, 'the run fails');
like($stderr, qr/WARNING:  the failure record of run (\d+) of pipeline "strict" is not written yet: no background worker slot is free/,
	'a WARNING says its record is not written yet');
like($stderr, qr/DETAIL:  It waits in a file of the data directory/, 'and where it waits');
like($stderr, qr/HINT:  Raise max_worker_processes \(now 0\)/, 'with the setting to raise');
like($stderr, qr/ERROR:  run (\d+) of pipeline "strict" failed/, 'the run still raises its ERROR');
my ($run1) = $stderr =~ /ERROR:  run (\d+) of pipeline/;
is_deeply([ waiting() ], [ "$pid.$run1.json" ], 'its record waits in a file named by pipeline and run');
is($node->safe_psql('postgres', q{SELECT count(*) FROM etl.runs WHERE pipeline = 'strict'}),
	'0', 'etl.runs does not have it yet');
is(status(), 'failed 1 1', 'etl.status shows the failure at once: failed, 1 in a row, 1 unrecorded');
is($node->safe_psql('postgres', q{SELECT last_error FROM etl.status WHERE pipeline = 'strict'}),
	'more than 0% of the batch was rejected', 'with its error');
is($node->safe_psql('postgres', q{SET ROLE regress_unrec_reader;
SELECT concat_ws(' ', last_status, unrecorded_failures, coalesce(last_error, '(hidden)'))
  FROM etl.status WHERE pipeline = 'strict'}),
	'failed 1 (hidden)', 'another role sees the failure, not its error');
is($node->safe_psql('postgres', q{
SELECT value FROM etl_metric_rows()
 WHERE metric = 'etl_unrecorded_failures' AND labels->>'pipeline' = 'strict'}),
	'1', 'the metrics count it');
like($node->safe_psql('postgres', q{SELECT etl_metrics()}),
	qr/^etl_unrecorded_failures\{pipeline="strict"\} 1$/m, 'in the Prometheus text too');
is_deeply([ events(0) ], [], 'no run_failed event yet: nothing was committed');

# 2. a second failure waits too; a successful run rolled back by its caller
#    records nothing
$node->psql('postgres', q{SELECT * FROM etl_run('strict')}, stderr => \$stderr);
my ($run2) = $stderr =~ /ERROR:  run (\d+) of pipeline/;
is(scalar(waiting()), 2, 'two records wait');
is(status(), 'failed 2 2', 'etl.status: 2 failures in a row, 2 unrecorded');
$node->safe_psql('postgres', q{UPDATE src SET v = 'fixed' WHERE id = 3});
is($node->safe_psql('postgres', q{BEGIN; SELECT status FROM etl_run('strict'); ROLLBACK;}),
	'succeeded', 'a run succeeds in a transaction its caller rolls back');
is(scalar(waiting()), 2, 'the records still wait');
is($node->safe_psql('postgres', q{SELECT count(*) FROM etl.runs WHERE pipeline = 'strict'}),
	'0', 'and are not in etl.runs');

# 3. the next run that commits records them, and their events go out
is($node->safe_psql('postgres', q{SELECT status || ' ' || rows_inserted FROM etl_run('strict')}),
	'succeeded 5', 'the next run succeeds');
is_deeply([ waiting() ], [], 'their files are gone');
is($node->safe_psql('postgres', qq{
SELECT string_agg(run_id || ' ' || status || ' ' || error_class, ', ' ORDER BY run_id)
  FROM etl.runs WHERE pipeline = 'strict' AND run_id IN ($run1, $run2)}),
	"$run1 failed recoverable, $run2 failed recoverable", 'both failures are in etl.runs with their run ids');
is($node->safe_psql('postgres', qq{SELECT error FROM etl.runs WHERE run_id = $run1}),
	'more than 0% of the batch was rejected', 'and their errors');
is($node->safe_psql('postgres', qq{
SELECT count(*) FROM etl.dead_letters WHERE pipeline = 'strict' AND run_id IN ($run1, $run2)}),
	'2', 'with their dead letters');
is(status(), 'succeeded 0 0', 'etl.status: the success, no failure in a row, none unrecorded');
is($node->safe_psql('postgres', q{
SELECT runs FROM etl.run_totals t JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name = 'strict' AND t.status = 'failed'}),
	'2', 'the counters count them');
my @ev = events(2);
is_deeply([ map { "$_->{event} $_->{run_id} $_->{consecutive_failures}" } @ev ],
	[ "run_failed $run1 1", "run_failed $run2 2" ],
	'their run_failed events are sent when the run that recorded them commits');

# 3b. a file damaged by hand fails nobody: etl.status and the metrics count
#     it, a run says it cannot record it and succeeds
my $damaged = "$datadir/etl_ext/unrecorded/$dboid/$pid.999999.json";
open(my $fh, '>', $damaged) or die "$damaged: $!";
print $fh '{"run": not json';
close($fh);
is(status(), 'failed 1 1', 'etl.status counts a damaged record, and answers');
like($node->safe_psql('postgres', q{SELECT etl_metrics()}),
	qr/^etl_unrecorded_failures\{pipeline="strict"\} 1$/m, 'so do the metrics');
($stdout, $stderr) = ('', '');
$node->psql('postgres', q{SELECT status FROM etl_run('strict')}, stdout => \$stdout, stderr => \$stderr);
is($stdout, 'succeeded', 'a run succeeds');
like($stderr, qr/WARNING:  the failure record in file "[^"]+999999\.json" could not be recorded/,
	'and says it cannot record the damaged file');
ok(-e $damaged, 'which stays');
unlink($damaged) or die "$damaged: $!";

# 4. a failing run whose worker starts records what waited with its own
$node->safe_psql('postgres', q{UPDATE src SET v = 'bad', at = '2024-02-01' WHERE id = 3});
$node->psql('postgres', q{SELECT * FROM etl_run('strict')}, stderr => \$stderr);
my ($run3) = $stderr =~ /ERROR:  run (\d+) of pipeline/;
is(scalar(waiting()), 1, 'a record waits');
$node->append_conf('postgresql.conf', 'max_worker_processes = 8');
$node->restart;
$listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN etl_events');
is(status(), 'failed 1 1', 'after a restart etl.status still shows it');
$node->psql('postgres', q{SELECT * FROM etl_run('strict')}, stderr => \$stderr);
my ($run4) = $stderr =~ /ERROR:  run (\d+) of pipeline/;
unlike($stderr, qr/WARNING/, 'with a worker slot free, no WARNING');
is_deeply([ waiting() ], [], 'the worker recorded the waiting record too');
is($node->safe_psql('postgres', qq{
SELECT string_agg(run_id::text, ' ' ORDER BY run_id) FROM etl.runs
 WHERE pipeline = 'strict' AND status = 'failed' AND run_id IN ($run3, $run4)}),
	"$run3 $run4", 'both failures are in etl.runs');
is(status(), 'failed 2 0', 'etl.status: 2 failures in a row, none unrecorded');
@ev = events(2);
is_deeply([ map { "$_->{event} $_->{run_id} $_->{consecutive_failures}" } @ev ],
	[ "run_failed $run3 1", "run_failed $run4 2" ], 'and both run_failed events are sent');
is($node->safe_psql('postgres', qq{
SELECT string_agg(concat_ws(' ', run_id, status, resolution), ', ' ORDER BY id)
  FROM etl.dead_letters WHERE pipeline = 'strict' AND run_id IN ($run3, $run4)}),
	"$run3 resolved superseded: recorded again by run $run4, $run4 pending",
	'the row version both rejected is pending once: the later dead letter closed the earlier');

# 5. dropping the pipeline drops the records waiting for it
$node->append_conf('postgresql.conf', 'max_worker_processes = 0');
$node->restart;
$node->psql('postgres', q{SELECT * FROM etl_run('strict')}, stderr => \$stderr);
is(scalar(waiting()), 1, 'a record waits');
$node->safe_psql('postgres', q{BEGIN; SELECT etl_drop_pipeline('strict'); ROLLBACK;});
is(scalar(waiting()), 1, 'a drop rolled back keeps it');
$node->safe_psql('postgres', q{SELECT etl_drop_pipeline('strict')});
is_deeply([ waiting() ], [], 'a drop removes it');

# 6. a record written after a later run recorded the same row version: its
#    dead letter is written closed, the later one stays pending
$node->safe_psql('postgres', q{
CREATE TABLE late_dst (id int PRIMARY KEY, v text CHECK (v <> 'bad'));
SELECT etl_create_pipeline('late', 'src', 'late_dst', watermark_column => 'at', error_threshold => 0);
});
$pid = $node->safe_psql('postgres', q{SELECT pipeline_id FROM etl.pipelines WHERE name = 'late'});
$node->psql('postgres', q{SELECT * FROM etl_run('late')}, stderr => \$stderr);
my ($late1) = $stderr =~ /ERROR:  run (\d+) of pipeline/;
is(scalar(waiting()), 1, 'a failure record waits');
$node->safe_psql('postgres', q{SELECT etl_alter_pipeline('late', error_threshold => 50)});
my $late2 = $node->safe_psql('postgres', q{
SELECT run_id FROM etl_run('late') WHERE status = 'succeeded' AND rows_rejected = 1});
isnt($late2, '', 'the next run succeeds, rejecting the same row');
is_deeply([ waiting() ], [], 'and records the waiting record after its own');
is($node->safe_psql('postgres', qq{
SELECT string_agg(concat_ws(' ', run_id, status, resolution), ', ' ORDER BY run_id)
  FROM etl.dead_letters WHERE pipeline = 'late'}),
	"$late1 resolved superseded: recorded again by run $late2, $late2 pending",
	'the late record\'s dead letter is written closed, the later run\'s stays pending');

$node->stop;
done_testing();
