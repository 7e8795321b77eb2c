# Failure handling across processes: retries against a postgres_fdw source
# whose server is down (a second cluster), a lock timeout on the target that
# clears between attempts, cancel and statement_timeout during the retry
# sleep, the durable failure record, and no free worker slot.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $remote = PostgreSQL::Test::Cluster->new('remote');
$remote->init;
$remote->start;
$remote->safe_psql('postgres', q{
CREATE TABLE orders (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO orders SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 100) g;
});

my $node = PostgreSQL::Test::Cluster->new('local');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_line_prefix = '%m [%p] %e %q%a '
max_worker_processes = 8
});
$node->start;
my $rport = $remote->port;
my $rhost = $remote->host;
$node->safe_psql('postgres', qq{
CREATE EXTENSION etl_ext;
CREATE EXTENSION postgres_fdw;
CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '$rhost', port '$rport', dbname 'postgres', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER remote;
CREATE FOREIGN TABLE remote_orders (id int, v text, at timestamptz) SERVER remote
    OPTIONS (table_name 'orders');
CREATE TABLE dst (id int PRIMARY KEY, v text);
SELECT etl_create_pipeline('fdw', 'remote_orders', 'dst', key => ARRAY['id'],
    watermark_column => 'at', retry_policy => 'linear',
    retry_base_delay => '100 ms', max_attempts => 3);
});

# 1. the remote server is up: the foreign source loads
is($node->safe_psql('postgres', q{SELECT status || ' ' || rows_inserted FROM etl_run('fdw')}),
	'succeeded 100', 'a postgres_fdw source loads while its server is up');

# 2. the remote server is down: each attempt fails with a connection error,
#    the run retries, then fails with its record kept
$remote->safe_psql('postgres', q{
INSERT INTO orders VALUES (101, 'late', '2024-06-01')});
$remote->stop;
my ($stdout, $stderr) = ('', '');
my $rc = $node->psql('postgres', q{SELECT * FROM etl_run('fdw')},
	stdout => \$stdout, stderr => \$stderr);
isnt($rc, 0, 'with the server down the run fails');
like($stderr, qr/attempt 1 of 3 failed, retrying in 100 ms/, 'the first attempt is retried after the base delay');
like($stderr, qr/attempt 2 of 3 failed, retrying in 200 ms/, 'the second after twice that (linear)');
like($stderr, qr/ERROR:  run \d+ of pipeline "fdw" failed/, 'the run fails after max_attempts');
like($stderr, qr/HINT:  SELECT \* FROM etl.runs WHERE run_id = \d+/, 'its hint names the run');
is($node->safe_psql('postgres', q{
SELECT status || ' ' || attempts || ' ' || error_class || ' ' || left(sqlstate, 2) || ' '
       || jsonb_array_length(attempt_errors)
  FROM etl.runs WHERE pipeline = 'fdw' ORDER BY run_id DESC LIMIT 1}),
	'failed 3 transient 08 3', 'the failed run is recorded with each attempt');

# 3. the server comes back: the next run takes up where the watermark is
$remote->start;
is($node->safe_psql('postgres', q{SELECT status || ' ' || rows_extracted FROM etl_run('fdw')}),
	'succeeded 1', 'after the server is back the next run loads what was missed');
is($node->safe_psql('postgres', q{SELECT count(*) FROM dst}), '101', 'all remote rows are loaded once');

# 4. a lock on the target times out the first attempt; released during the
#    retry sleep, the second attempt succeeds
$node->safe_psql('postgres', q{
CREATE TABLE src (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO src SELECT g, 'v', '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 50) g;
CREATE TABLE locked_dst (id int PRIMARY KEY, v text);
SELECT etl_create_pipeline('locked', 'src', 'locked_dst', watermark_column => 'at',
        retry_policy => 'exponential', retry_base_delay => '2 seconds', max_attempts => 3);
});
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE locked_dst IN ACCESS EXCLUSIVE MODE;');
my $runner = $node->background_psql('postgres', on_error_stop => 0);
$runner->query_until(qr/started/, q{
SET lock_timeout = '200ms';
\echo started
SELECT status, attempts FROM etl_run('locked');
});
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Extension' AND query LIKE '%etl_run(''locked'')%'})
  or die 'the run never slept between attempts';
$locker->query_safe('COMMIT;');
$locker->quit;
# the second attempt comes 2 s later
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM etl.runs WHERE pipeline = 'locked'}, 't')
  or die 'the run did not finish';
$runner->quit;
is($node->safe_psql('postgres', q{
SELECT status || ' ' || attempts || ' ' || (attempt_errors->0->>'sqlstate')
  FROM etl.runs WHERE pipeline = 'locked'}),
	'succeeded 2 55P03', 'a lock timeout is retried and the next attempt loads');
is($node->safe_psql('postgres', q{SELECT count(*) FROM locked_dst}), '50', 'the target holds the batch');

# 5. cancel and statement_timeout interrupt the retry sleep, and the
#    interrupted run is recorded
$remote->stop;
$node->safe_psql('postgres', q{
SELECT etl_alter_pipeline('fdw', retry_policy => 'linear', retry_base_delay => '1 hour', retry_max_delay => '1 hour')});
$rc = $node->psql('postgres', q{SET statement_timeout = '3s'; SELECT * FROM etl_run('fdw')},
	stdout => \$stdout, stderr => \$stderr);
like($stderr, qr/canceling statement due to statement timeout/, 'statement_timeout ends the retry sleep');
like($stderr, qr/run \d+ of pipeline "fdw" failed/, 'and fails the run');

$runner = $node->background_psql('postgres', on_error_stop => 0);
$runner->query_until(qr/started/, q{
\echo started
SELECT * FROM etl_run('fdw');
});
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Extension' AND query LIKE '%etl_run(''fdw'')%'})
  or die 'the run never slept';
$node->safe_psql('postgres', q{
SELECT pg_cancel_backend(pid) FROM pg_stat_activity
 WHERE wait_event_type = 'Extension' AND query LIKE '%etl_run(''fdw'')%'});
$node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE state = 'active' AND query LIKE '%etl_run(''fdw'')%' AND pid <> pg_backend_pid()})
  or die 'cancel did not end the run';
$runner->quit;
is($node->safe_psql('postgres', q{
SELECT string_agg(sqlstate, ',' ORDER BY run_id) FROM etl.runs
 WHERE pipeline = 'fdw' AND status = 'failed' AND sqlstate = '57014'}),
	'57014,57014', 'both interrupted runs are recorded as failed with 57014');
$remote->start;

# 6. the record survives the caller's rollback
$node->safe_psql('postgres', q{
CREATE TABLE strict_dst (id int PRIMARY KEY, v text CHECK (v <> 'v'));
SELECT etl_create_pipeline('strict', 'src', 'strict_dst', watermark_column => 'at', error_threshold => 0);
});
$rc = $node->psql('postgres', q{BEGIN; SELECT * FROM etl_run('strict'); ROLLBACK;},
	stderr => \$stderr);
like($stderr, qr/run \d+ of pipeline "strict" failed/, 'a failing run inside a transaction');
is($node->safe_psql('postgres', q{
SELECT (SELECT status FROM etl.runs WHERE pipeline = 'strict')
       || ' ' || (SELECT count(*) FROM etl.dead_letters WHERE pipeline = 'strict')
       || ' ' || (SELECT count(*) FROM strict_dst)}),
	'failed 1 0', 'its record and dead letter are committed, its load is not');

# 7. no worker slot free: a WARNING says the record is not written yet
#    (it waits in a file: 014_unrecorded.pl), the ERROR is raised all the
#    same
$node->append_conf('postgresql.conf', 'max_worker_processes = 0');
$node->restart;
$rc = $node->psql('postgres', q{SELECT * FROM etl_run('strict')}, stderr => \$stderr);
like($stderr, qr/WARNING:  the failure record of run \d+ of pipeline "strict" is not written yet: no background worker slot is free/,
	'without a worker slot a WARNING says so');
like($stderr, qr/ERROR:  run \d+ of pipeline "strict" failed/, 'and the run still fails');

$node->stop;
$remote->stop;
done_testing();
