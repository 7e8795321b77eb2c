# Crashes in the middle of a run: a killed backend (SIGKILL, the whole
# cluster restarts), a terminated backend and an immediate shutdown each
# leave the target, the watermark and the run log exactly as before the run;
# the next run then loads everything once.  While a run is held, a second
# run of the same pipeline is skipped with a NOTICE naming the holder.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EtlLogs;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
restart_after_crash = on
log_line_prefix = '%m [%p] %e %q%a '
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE TABLE src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE dst (id int PRIMARY KEY, v text, _etl_row_hash bytea, _etl_run_id bigint);
INSERT INTO src SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 1000) g;
SELECT etl_create_pipeline('crash', 'src', 'dst', watermark_column => 'at',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');
SELECT etl_run('crash');
});

# state() returns what must not change when a run dies: the target's rows,
# the watermark, the number of runs and batches
sub state
{
	return $node->safe_psql('postgres', q{
SELECT (SELECT md5(string_agg(id || ':' || v || ':' || encode(_etl_row_hash, 'hex'), ',' ORDER BY id)) FROM dst),
       (SELECT count(*) FROM dst),
       (SELECT watermark FROM etl.pipelines WHERE name = 'crash'),
       (SELECT count(*) FROM etl.runs),
       (SELECT count(*) FROM etl.batches),
       (SELECT count(*) FROM etl.batches WHERE status = 'started')
});
}

# the P invariant: the target equals the transformed source, once each
sub check_target_equals_source
{
	my ($label) = @_;
	my $diff = $node->safe_psql('postgres', q{
SELECT count(*) FROM (
  (SELECT id, upper(v) FROM src EXCEPT ALL SELECT id, v FROM dst)
  UNION ALL
  (SELECT id, v FROM dst EXCEPT ALL SELECT id, upper(v) FROM src)) d});
	is($diff, '0', "$label: target equals the transformed source");
}

# start_held_run($phase) starts a run that stops at $phase, held by a second
# session's advisory lock; returns (holder session, run session, run pid)
sub start_held_run
{
	my ($phase) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('SELECT pg_advisory_lock(727274)');
	my $runner = $node->background_psql('postgres', on_error_stop => 0);
	$runner->query_until(qr/started/, qq{
SET etl.debug_pause_at = '$phase';
\\echo started
SELECT etl_run('crash');
});
	$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_locks
 WHERE locktype = 'advisory' AND objid = 727274 AND NOT granted})
	  or die "the run did not reach phase $phase";
	my $pid = $node->safe_psql('postgres', q{
SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = 727274 AND NOT granted});
	return ($holder, $runner, $pid);
}

sub new_changes
{
	my ($n) = @_;
	$node->safe_psql('postgres', qq{
UPDATE src SET v = v || '-$n', at = now() WHERE id % 10 = 0 AND id <= 1000;
INSERT INTO src SELECT g, 'new$n-' || g, now()
  FROM generate_series(1000 * $n + 1, 1000 * $n + 100) g;
});
}

# 1. SIGKILL of the running backend after its load, before its records:
#    the cluster restarts and nothing of the run remains
new_changes(1);
my ($holder, $runner, $pid) = start_held_run('before_record');

# meanwhile a second run of the pipeline is skipped, naming the holder
my ($stdout, $stderr) = ('', '');
$node->psql('postgres', q{SELECT status FROM etl_run('crash')},
	stdout => \$stdout, stderr => \$stderr);
is($stdout, 'skipped', 'a second run of a running pipeline is skipped');
like($stderr, qr/pipeline "crash" is already running in backend $pid, skipped/,
	'its NOTICE names the backend that holds the pipeline');

# the held run has committed nothing: this is the state before it
my $before = state();
etl_killed($node, $pid);
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true') or die 'no restart';
eval { $runner->quit };
eval { $holder->quit };
ok($node->log_contains("terminated by signal 9"), 'the backend was killed');
is(state(), $before, 'after SIGKILL: target, watermark and run log as before the run');

my $result = $node->safe_psql('postgres',
	q{SELECT rows_extracted, rows_inserted, rows_updated FROM etl_run('crash')});
is($result, '200|100|100', 'the next run loads the changes once');
check_target_equals_source('after SIGKILL and a rerun');

# 2. pg_terminate_backend after the load
new_changes(2);
$before = state();
($holder, $runner, $pid) = start_held_run('after_load');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
  or die 'backend did not exit';
eval { $runner->quit };
$holder->quit;
is(state(), $before, 'after pg_terminate_backend: nothing of the run remains');
$result = $node->safe_psql('postgres',
	q{SELECT rows_extracted, rows_inserted, rows_updated FROM etl_run('crash')});
is($result, '200|100|100', 'the next run loads the changes once');
check_target_equals_source('after terminate and a rerun');

# 3. immediate shutdown after the extract
new_changes(3);
$before = state();
($holder, $runner, $pid) = start_held_run('after_extract');
$node->stop('immediate');
eval { $runner->quit };
eval { $holder->quit };
$node->start;
is(state(), $before, 'after an immediate shutdown: nothing of the run remains');
$result = $node->safe_psql('postgres',
	q{SELECT rows_extracted, rows_inserted, rows_updated FROM etl_run('crash')});
is($result, '200|100|100', 'the next run loads the changes once');
check_target_equals_source('after an immediate shutdown and a rerun');

is($node->safe_psql('postgres', q{SELECT count(*) FROM etl.batches WHERE status <> 'completed'}),
	'0', 'no batch is left in another state than completed');

$node->stop;
done_testing();
