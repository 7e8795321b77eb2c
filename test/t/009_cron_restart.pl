# pg_cron runs across a server restart converge.  A scheduled run is cut
# short by an immediate shutdown after its load (it never commits); rows
# keep arriving meanwhile; after the restart the job stays scheduled and the
# next tick's run loads everything once: the target equals the transformed
# source row for row, the cut-short run left no trace in the target, the
# watermark or etl.runs, and no batch row is left started.
#
# pg_cron 1.4 ticks at minute boundaries: the test waits for one tick (at
# most a minute away) and for the next one after the restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron_restart');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '@{[ $node->host ]}'
timezone = 'UTC'
log_line_prefix = '%m [%p] %e %q%a '
});
$node->start;

# the pipeline's owner runs its jobs; the pause is set for that role only,
# so that the test's own sessions never pause
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION etl_ext;
CREATE ROLE cron_owner SUPERUSER LOGIN;
SET ROLE cron_owner;
CREATE TABLE src (id int PRIMARY KEY, v text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
INSERT INTO src (id, v) SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT etl_create_pipeline('cron', 'src', 'dst', watermark_column => 'at',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');
RESET ROLE;
ALTER ROLE cron_owner SET etl.debug_pause_at = 'after_load';
});

my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(727274)');
my $job = $node->safe_psql('postgres', q{SET ROLE cron_owner; SELECT etl_schedule('cron', '* * * * *')});

# 1. the first tick: the scheduled run loads and waits after its load
my $paused = q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'advisory' AND l.objid = 727274 AND NOT l.granted
   AND a.usename = 'cron_owner' AND a.application_name = 'pg_cron'};
$node->poll_query_until('postgres', $paused)
  or die 'no scheduled run reached its pause';
is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM dst) || ' ' || (SELECT count(*) FROM etl.runs) || ' ' ||
       coalesce((SELECT watermark FROM etl.pipelines), '-')}),
	'0 0 -', 'the scheduled run has loaded, nothing is committed');

# rows keep arriving
$node->safe_psql('postgres', q{
INSERT INTO src (id, v) SELECT g, 'v' || g FROM generate_series(101, 150) g;
UPDATE src SET v = v || '+', at = clock_timestamp() WHERE id % 10 = 0;
});

# 2. an immediate shutdown in the middle of the scheduled run, a restart
$node->stop('immediate');
eval { $holder->{run}->finish };
$node->start;
$node->safe_psql('postgres', 'ALTER ROLE cron_owner RESET etl.debug_pause_at');
my $restarted = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM dst) || ' ' || (SELECT count(*) FROM etl.runs) || ' ' ||
       coalesce((SELECT watermark FROM etl.pipelines), '-') || ' ' ||
       (SELECT count(*) FROM etl.batches)}),
	'0 0 - 0', 'after the restart nothing of the cut-short run remains');
is($node->safe_psql('postgres', qq{SELECT schedule || ' ' || active FROM cron.job WHERE jobid = $job}),
	'* * * * * true', 'the job is still scheduled');

# 3. the next tick after the restart loads everything once
$node->poll_query_until('postgres', qq{
SELECT count(*) > 0 FROM etl.runs WHERE triggered_by = 'schedule' AND started_at > '$restarted'})
  or die 'no scheduled run after the restart';
is($node->safe_psql('postgres', q{
SELECT string_agg(format('%s|%s|%s|%s', status, triggered_by, rows_extracted, rows_inserted), ',' ORDER BY run_id)
  FROM etl.runs}),
	'succeeded|schedule|150|150', 'the first scheduled run after the restart loads every row');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM ((SELECT id, upper(v) FROM src EXCEPT ALL SELECT id, v FROM dst)
                      UNION ALL (SELECT id, v FROM dst EXCEPT ALL SELECT id, upper(v) FROM src)) d}),
	'0', 'the target equals the transformed source row for row');
is($node->safe_psql('postgres', q{
SELECT (SELECT count(DISTINCT _etl_run_id) FROM dst) || ' ' ||
       (SELECT string_agg(status, ',') FROM etl.batches) || ' ' ||
       (SELECT watermark::timestamptz = (SELECT max(at) FROM src) FROM etl.pipelines) || ' ' ||
       (SELECT last_status || ' ' || lag FROM etl.status)}),
	'1 completed true succeeded 00:00:00', 'each row written once by that run; the watermark is the source\'s newest; no lag');
is($node->safe_psql('postgres', qq{
SELECT string_agg(status, ',' ORDER BY runid) FROM cron.job_run_details WHERE jobid = $job AND start_time < '$restarted'}),
	'failed', 'pg_cron records the cut-short run as failed');

is($node->safe_psql('postgres', q{SET ROLE cron_owner; SELECT etl_unschedule('cron')}), 't', 'unscheduled');
$node->stop;
done_testing();
