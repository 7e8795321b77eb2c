# Load partition_swap against the size of the lock table.  A swap holds a
# lock on every table and index it creates or drops until its transaction
# ends, and the lock table holds max_locks_per_transaction times the
# backend slots (and prepared transactions) for all sessions together
# (it may grow into spare shared memory, so the real limit is a little
# higher).
# With max_locks_per_transaction = 10 (the minimum) on a small cluster:
#   - a first load into 200 daily partitions cannot fit even alone: it is
#     refused before anything is built (53200, naming
#     max_locks_per_transaction, the locks it needs at least and the limit);
#   - one into 89 partitions fits that least estimate but runs out of slots
#     on the way: the same clear error instead of "out of shared memory";
#   - either way the failed run is recorded with 53200, nothing is created
#     and the watermark stays; a load into 5 partitions works;
#   - after a restart with a larger max_locks_per_transaction the same
#     89-partition load succeeds and the target equals the source.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('locks');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_locks_per_transaction = 10
max_connections = 10
max_worker_processes = 4
max_prepared_transactions = 0
log_line_prefix = '%m [%p] %e %q%a '
});
$node->start;

# the lock table: max_locks_per_transaction times the backend slots
my $slots = $node->safe_psql('postgres', q{
SELECT current_setting('max_locks_per_transaction')::int
       * (current_setting('max_connections')::int
          + current_setting('autovacuum_max_workers')::int + 1
          + current_setting('max_worker_processes')::int
          + current_setting('max_wal_senders')::int
          + current_setting('max_prepared_transactions')::int)});

$node->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE TABLE src (id int PRIMARY KEY, day date NOT NULL, v int, at timestamptz NOT NULL);
CREATE TABLE dst (id int, day date NOT NULL, v int, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
});

# load n days into dst, a fresh pipeline each time; returns psql's result
sub load_days
{
	my ($name, $days) = @_;
	$node->safe_psql('postgres', qq{
TRUNCATE src;
INSERT INTO src SELECT g, date '2024-01-01' + g - 1, g, '2024-06-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, $days) g;
SELECT etl_create_pipeline('$name', 'src', 'dst', key => ARRAY['id'], watermark_column => 'at',
    load => 'partition_swap', max_attempts => 1,
    options => '{"partition_interval": "1 day"}');
});
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql('postgres', qq{SELECT status FROM etl_run('$name')},
		stdout => \$stdout, stderr => \$stderr);
	return ($rc, $stdout, $stderr);
}

# what a failed run left: its record, the partitions, the watermark
sub after_failure
{
	my ($name) = @_;
	return $node->safe_psql('postgres', qq{
SELECT r.status || ' ' || r.sqlstate || ' ' || (p.watermark IS NULL)::text || ' '
       || (SELECT count(*) FROM pg_inherits WHERE inhparent = 'dst'::regclass) || ' '
       || (SELECT count(*) FROM pg_class WHERE relname LIKE '%etl_swap%' OR relname LIKE 'etl_batch%')
  FROM etl.runs r JOIN etl.pipelines p ON p.name = r.pipeline
 WHERE r.pipeline = '$name' ORDER BY r.run_id DESC LIMIT 1});
}

# 1. 200 partitions: at least 400 locks (each new table and its primary
#    key), more than the whole lock table: refused before building
my ($rc, $stdout, $stderr) = load_days('days200', 200);
isnt($rc, 0, 'a first load into 200 partitions fails');
like($stderr, qr/ERROR:  run \d+ of pipeline "days200" failed/, 'the run fails');
like($stderr, qr/pipeline "days200" runs out of lock slots swapping 200 partitions of target public.dst/,
	'the error says the swap runs out of lock slots, with the partitions and the target');
like($stderr, qr/holds at least 400 locks .* the lock table holds $slots for all sessions: max_locks_per_transaction \(10\)/s,
	'its detail gives the locks needed at least and the limit, naming max_locks_per_transaction');
like($stderr, qr/HINT:  Raise max_locks_per_transaction \(a restart is needed\), or load in committed steps/,
	'its hint says what to do');
unlike($stderr, qr/out of shared memory/, 'no bare "out of shared memory"');
is(after_failure('days200'), 'failed 53200 true 0 0',
	'the run is recorded as failed with 53200; nothing created, no watermark, no staging table');

# 2. 89 partitions: 178 locks at least (fits), about five each in fact: runs
#    out of slots on the way, and says so
($rc, $stdout, $stderr) = load_days('days89', 89);
isnt($rc, 0, 'a first load into 89 partitions fails');
like($stderr, qr/pipeline "days89" runs out of lock slots swapping 89 partitions of target public.dst/,
	'the lock table running out on the way gives the same clear error');
like($stderr, qr/holds a lock on each table and index it creates or drops .* holds $slots: max_locks_per_transaction \(10\)/s,
	'its detail names max_locks_per_transaction and the limit');
like($stderr, qr/HINT:  Raise max_locks_per_transaction/, 'its hint says what to do');
unlike($stderr, qr/out of shared memory/, 'no bare "out of shared memory"');
is(after_failure('days89'), 'failed 53200 true 0 0',
	'the run is recorded as failed with 53200; nothing created, no watermark, no staging table');

# 3. 5 partitions fit
($rc, $stdout, $stderr) = load_days('days5', 5);
is($rc, 0, 'a first load into 5 partitions works');
is($stdout, 'succeeded', 'and succeeds');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'dst'::regclass}),
	'5', 'it created its 5 partitions');

# 4. with more lock slots the 89-partition load succeeds
$node->append_conf('postgresql.conf', "max_locks_per_transaction = 100\n");
$node->restart;
$node->safe_psql('postgres', q{
SELECT etl_drop_pipeline(name) FROM etl.pipelines;
DROP TABLE dst;
CREATE TABLE dst (id int, day date NOT NULL, v int, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
});
($rc, $stdout, $stderr) = load_days('days89', 89);
is($rc, 0, 'after raising max_locks_per_transaction the 89-partition load works');
is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = 'dst'::regclass) || ' '
       || (SELECT count(*) FROM (SELECT id, day, v FROM src EXCEPT SELECT id, day, v FROM dst) a) || ' '
       || (SELECT count(*) FROM (SELECT id, day, v FROM dst EXCEPT SELECT id, day, v FROM src) b)}),
	'89 0 0', 'it created 89 partitions and the target equals the source');

$node->stop;
done_testing();
