# Scheduling with pg_cron end to end: etl_schedule creates the job
# etl:<pipeline> that runs as the pipeline's owner, whoever schedules it; a
# real pg_cron tick runs the pipelines and their runs are recorded with
# triggered_by = 'schedule' (pg_cron over libpq, and with background
# workers); unschedule and drop remove jobs; refusals; a pipeline of another
# database; a server without pg_cron.
#
# pg_cron 1.4 (postgresql-15-cron in bookworm) runs jobs at minute
# boundaries ('* * * * *' is its shortest schedule; '5 seconds' needs 1.5),
# so both pg_cron nodes are set up first and then wait for the same tick,
# at most a minute away.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# error_of(node, db, sql): the stderr of sql, with SQLSTATEs shown
sub error_of
{
	my ($node, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err);
	return $err;
}

# pipelines over src.orders into dw.<target>, as role $owner
sub pipelines_sql
{
	my ($owner, %pipelines) = @_;
	my $sql = q{
CREATE SCHEMA IF NOT EXISTS src;
CREATE SCHEMA IF NOT EXISTS dw;
CREATE TABLE IF NOT EXISTS src.orders (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO src.orders SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 100) g ON CONFLICT DO NOTHING;
};
	$sql .= "GRANT USAGE ON SCHEMA src, dw TO $owner;\n"
	  . "GRANT SELECT ON src.orders TO $owner;\n";
	for my $name (sort keys %pipelines)
	{
		my $t = $pipelines{$name};
		$sql .= "CREATE TABLE dw.$t (id int PRIMARY KEY, v text);\n"
		  . "GRANT SELECT, INSERT, UPDATE ON dw.$t TO $owner;\n"
		  . "SET ROLE $owner;\n"
		  . "SELECT etl_create_pipeline($name, 'src.orders', 'dw.$t', watermark_column => 'at');\n"
		  . "RESET ROLE;\n";
	}
	return $sql;
}

# ---------------------------------------------------------------------------
# a server with pg_cron over libpq (its default), jobs kept in postgres
my $cron = PostgreSQL::Test::Cluster->new('cron');
$cron->init;
$cron->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '@{[ $cron->host ]}'
log_line_prefix = '%m [%p] %e %q%a '
});
$cron->start;
$cron->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION etl_ext;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN IN ROLE alice;
CREATE ROLE nologin;
CREATE DATABASE other;
});
$cron->safe_psql('postgres', pipelines_sql('alice',
	q{'it''s'} => 'a', q{'second'} => 'b', q{'third'} => 'c',
	q{'mine'} => 'd', q{'paused'} => 'e', q{'orders'} => 'o',
	q{'racy'} => 'r1', q{'racy2'} => 'r2'));
$cron->safe_psql('postgres', pipelines_sql('nologin', q{'nologin_pipe'} => 'n'));
$cron->safe_psql('other', "CREATE EXTENSION etl_ext;\n"
	  . pipelines_sql('alice', q{'orders'} => 'o'));

# a server with pg_cron in background-worker mode
my $bgw = PostgreSQL::Test::Cluster->new('bgw');
$bgw->init;
$bgw->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
log_line_prefix = '%m [%p] %e %q%a '
});
$bgw->start;
$bgw->safe_psql('postgres', "CREATE EXTENSION etl_ext;\n"
	  . pipelines_sql('postgres', q{'bg'} => 'bg'));

# 1. pg_cron loaded, but its extension not created yet: 55000
like(error_of($bgw, 'postgres', q{SELECT etl_schedule('bg', '* * * * *')}),
	qr/ERROR:  55000: cannot schedule pipeline "bg": extension "pg_cron" is not installed in database "postgres"\n.*\nHINT:  Run CREATE EXTENSION pg_cron in database "postgres"\./,
	'before CREATE EXTENSION pg_cron: a clear error and a hint');
$bgw->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
my $bg_job = $bgw->safe_psql('postgres', q{SELECT etl_schedule('bg', '* * * * *')});

# 2. the owner needs pg_cron's own permission (USAGE on schema cron) to
#    have jobs of their own; a non-owner may not schedule at all
like(error_of($cron, 'postgres', q{SET ROLE alice; SELECT etl_schedule('mine', '* * * * *')}),
	qr/ERROR:  42501: owner "alice" of pipeline "mine" may not use pg_cron\n.*\nHINT:  A superuser may GRANT USAGE ON SCHEMA cron TO alice, or schedule the pipeline\./,
	'an owner without USAGE on schema cron is told to ask for it');
$cron->safe_psql('postgres', 'GRANT USAGE ON SCHEMA cron TO alice');
like(error_of($cron, 'postgres', q{SET ROLE bob; SELECT etl_schedule('mine', '* * * * *')}),
	qr/ERROR:  42501: must be owner of pipeline "mine" to schedule it/,
	'a non-owner may not schedule a pipeline (42501)');
like(error_of($cron, 'postgres', q{SET ROLE bob; SELECT etl_unschedule('mine')}),
	qr/ERROR:  42501: must be owner of pipeline "mine" to unschedule it/,
	'nor unschedule it');

# 3. a bad expression is refused with pg_cron's own error
like(error_of($cron, 'postgres', q{SET ROLE alice; SELECT etl_schedule('mine', 'every minute')}),
	qr/ERROR:  22023: invalid schedule: every minute/,
	'a bad cron expression fails with pg_cron\'s message and 22023');
like(error_of($cron, 'postgres', q{SET ROLE alice; SELECT etl_schedule('mine', '5 seconds')}),
	qr/ERROR:  22023: invalid schedule: 5 seconds/,
	'pg_cron 1.4 knows no seconds');

# 4. the owner schedules; a superuser schedules for the owner; a member of
#    the owner role schedules as the owner: every job belongs to alice
my $mine_job = $cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_schedule('mine', '*/5 * * * *')});
like($mine_job, qr/^\d+$/, 'etl_schedule returns the job id');
is($cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_schedule('mine', '* * * * *')}),
	$mine_job, 'scheduling again replaces the schedule of the same job');
my $a_job = $cron->safe_psql('postgres', q{SELECT etl_schedule('it''s', '* * * * *')});
my $b_job = $cron->safe_psql('postgres', q{SET ROLE carol; SELECT etl_schedule('second', '* * * * *')});
my $c_job = $cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_schedule('third', '* * * * *')});
is($cron->safe_psql('postgres', q{
SELECT string_agg(format('%s|%s|%s|%s|%s', jobname, schedule, command, database, username), E'\n' ORDER BY jobname)
  FROM cron.job}),
	join("\n",
		q{etl:it's|* * * * *|SELECT etl_run('it''s')|postgres|alice},
		q{etl:mine|* * * * *|SELECT etl_run('mine')|postgres|alice},
		q{etl:second|* * * * *|SELECT etl_run('second')|postgres|alice},
		q{etl:third|* * * * *|SELECT etl_run('third')|postgres|alice}),
	'each job is etl:<pipeline> running SELECT etl_run(<literal>) as the owner, also when a superuser or a member scheduled it');
is($cron->safe_psql('postgres', q{SET ROLE bob; SELECT schedule FROM etl.status WHERE pipeline = 'it''s'}),
	'* * * * *', 'etl.status shows the schedule, to every role');

# 5. what pg_cron needs of the owner is checked before a job is made
like(error_of($cron, 'postgres', q{SELECT etl_schedule('nologin_pipe', '* * * * *')}),
	qr/ERROR:  55000: owner "nologin" of pipeline "nologin_pipe" cannot log in\n.*\nHINT:  ALTER ROLE nologin LOGIN;/,
	'an owner that cannot log in cannot have jobs');
$cron->safe_psql('postgres', 'REVOKE CONNECT ON DATABASE postgres FROM PUBLIC');
like(error_of($cron, 'postgres', q{SELECT etl_schedule('it''s', '* * * * *')}),
	qr/ERROR:  42501: owner "alice" of pipeline "it's" may not connect to database "postgres"/,
	'an owner that may not connect cannot have jobs');
$cron->safe_psql('postgres', 'GRANT CONNECT ON DATABASE postgres TO PUBLIC');

# 6. a paused job stays paused, and says so
my $e_job = $cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_schedule('paused', '0 0 1 1 *')});
$cron->safe_psql('postgres', "SELECT cron.alter_job($e_job, active => false)");
like(error_of($cron, 'postgres', q{SET ROLE alice; SELECT etl_schedule('paused', '0 0 2 1 *')}),
	qr/WARNING:  01000: pg_cron job "etl:paused" of pipeline "paused" is inactive/,
	'scheduling a paused job warns that it stays paused');
is($cron->safe_psql('postgres', q{SELECT schedule FROM etl.status WHERE pipeline = 'paused'}),
	'', 'etl.status shows no schedule for a paused job');

# 7. a pipeline of another database: its job is made in the cron database
#    with the call the hint gives; its runs are scheduled runs too
my $err = error_of($cron, 'other', q{SELECT etl_schedule('orders', '* * * * *')});
like($err, qr/ERROR:  0A000: cannot schedule pipeline "orders" from database "other"\nDETAIL:  pg_cron keeps its jobs in database "postgres" \(cron.database_name\), and its functions exist only there\./,
	'in another database etl_schedule fails with 0A000');
my ($hint_sql) = $err =~ /HINT:  Connect to database "postgres" as a superuser and run: (.*)\n/;
is($hint_sql,
	q{SELECT cron.schedule_in_database('etl:orders', '* * * * *', 'SELECT etl_run(''orders'')', 'other', 'alice');},
	'its hint holds the pg_cron call that schedules it from the cron database');
like(error_of($cron, 'other', q{SELECT etl_unschedule('orders')}),
	qr/ERROR:  0A000: cannot unschedule pipeline "orders" from database "other"/,
	'so does etl_unschedule');
my $o_job = $cron->safe_psql('postgres', $hint_sql);
is($cron->safe_psql('postgres', q{SELECT schedule IS NULL FROM etl.status WHERE pipeline = 'orders'}),
	't', 'in the cron database, a job of another database is not the schedule of a pipeline of the same name');
like(error_of($cron, 'postgres', q{SET ROLE alice; SELECT etl_schedule('orders', '* * * * *')}),
	qr/ERROR:  42710: role "alice" already has pg_cron job "etl:orders", for database "other"\n.*\nHINT:  Remove that job first \(SELECT cron.unschedule\($o_job\);\)/,
	'a job of the same name and owner for another database is not taken over');

# 8. unschedule and drop remove jobs; from then on they do not run
is($cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_unschedule('second')}), 't',
	'etl_unschedule removes the job');
is($cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_unschedule('second')}), 'f',
	'and says when there was none');
is($cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_drop_pipeline('third')}), 't',
	'etl_drop_pipeline drops a scheduled pipeline');
is($cron->safe_psql('postgres', q{SELECT string_agg(jobname, ',' ORDER BY jobname) FROM cron.job}),
	q{etl:it's,etl:mine,etl:orders,etl:paused}, 'and its job with it');

# 9. races: a drop waits for a schedule in progress, then removes its job;
#    a schedule waits for a drop in progress, then finds no pipeline
my $lock_wait = q{SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND query LIKE '%%%s%%'};
my $s1 = $cron->background_psql('postgres');
$s1->query_safe(q{BEGIN; SET ROLE alice; SELECT etl_schedule('racy', '* * * * *');});
my $s2 = $cron->background_psql('postgres', on_error_stop => 0);
$s2->query_until(qr/started/, q{
\echo started
SELECT etl_drop_pipeline('racy');
});
$cron->poll_query_until('postgres', sprintf($lock_wait, q{etl_drop_pipeline(''racy'')}))
  or die 'the drop did not wait for the schedule';
$s1->query_safe('COMMIT');
$s1->quit;
$s2->quit;
is($cron->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM etl.pipelines WHERE name = 'racy') || ' ' ||
       (SELECT count(*) FROM cron.job WHERE jobname = 'etl:racy')}),
	'0 0', 'a drop that waited for a schedule removes the job it made');
$s1 = $cron->background_psql('postgres');
$s1->query_safe(q{BEGIN; SELECT etl_drop_pipeline('racy2');});
$s2 = $cron->background_psql('postgres', on_error_stop => 0);
$s2->query_until(qr/started/, q{
\echo started
SET ROLE alice;
SELECT etl_schedule('racy2', '* * * * *');
});
$cron->poll_query_until('postgres', sprintf($lock_wait, q{etl_schedule(''racy2''}))
  or die 'the schedule did not wait for the drop';
$s1->query_safe('COMMIT');
$s1->quit;
$s2->quit;
like($s2->{stderr}, qr/ERROR:  pipeline "racy2" does not exist\nDETAIL:  It was dropped while it was being scheduled\./,
	'a schedule that waited for a drop finds no pipeline');
is($cron->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname = 'etl:racy2'}),
	'0', 'and makes no job');

my $since = $cron->safe_psql('postgres', 'SELECT clock_timestamp()');

# 10. the next tick: pg_cron runs the pipelines as their owner
my $scheduled_run = q{SELECT count(*) > 0 FROM etl.runs WHERE pipeline = '%s'
 AND triggered_by = 'schedule' AND status = 'succeeded' AND started_at > '%s'};
for my $name (q{it''s}, 'mine')
{
	$cron->poll_query_until('postgres', sprintf($scheduled_run, $name, $since))
	  or die "no scheduled run of $name";
}
$cron->poll_query_until('other', sprintf($scheduled_run, 'orders', $since))
  or die 'no scheduled run in database other';
$bgw->poll_query_until('postgres', sprintf($scheduled_run, 'bg', '-infinity'))
  or die 'no scheduled run on the background-worker node';

is($cron->safe_psql('postgres', q{
SELECT string_agg(DISTINCT format('%s|%s|%s', status, triggered_by, run_by), ',')
  FROM etl.runs WHERE pipeline IN ('it''s', 'mine')}),
	'succeeded|schedule|alice',
	'pg_cron\'s runs are recorded with triggered_by = schedule and run_by = the owner, also for the superuser\'s job');
is($cron->safe_psql('postgres', q{SELECT (SELECT count(*) FROM dw.a) || ' ' || (SELECT count(*) FROM dw.d)}),
	'100 100', 'the scheduled runs loaded the targets');
is($cron->safe_psql('postgres', qq{
SELECT string_agg(DISTINCT status, ',') FROM cron.job_run_details WHERE jobid IN ($a_job, $mine_job)}),
	'succeeded', 'pg_cron records the jobs as succeeded');
is($cron->safe_psql('other', q{
SELECT string_agg(DISTINCT format('%s|%s|%s', status, triggered_by, run_by), ',') FROM etl.runs}),
	'succeeded|schedule|alice', 'the job of another database ran there as its owner');
is($bgw->safe_psql('postgres', q{
SELECT string_agg(DISTINCT format('%s|%s|%s', status, triggered_by, run_by), ',') FROM etl.runs}),
	'succeeded|schedule|postgres', 'pg_cron\'s background workers are recognised too');
is($cron->safe_psql('postgres', qq{
SELECT count(*) FROM etl.runs WHERE pipeline = 'second' AND started_at > '$since'}),
	'0', 'an unscheduled pipeline did not run at that tick');
is($cron->safe_psql('postgres', qq{
SELECT count(*) FROM cron.job_run_details WHERE jobid IN ($b_job, $c_job) AND start_time > '$since'}),
	'0', 'nor did the job of the dropped pipeline');

# 11. a manual run of the same pipeline is manual
is($cron->safe_psql('postgres', q{
SET ROLE alice;
SELECT status FROM etl_run('it''s');
SELECT triggered_by FROM etl.runs WHERE pipeline = 'it''s' ORDER BY run_id DESC LIMIT 1}),
	"succeeded\nmanual", 'a manual run is recorded as manual');

# 12. unschedule the rest; a drop in another database says where the job is
is($cron->safe_psql('postgres', q{SET ROLE alice; SELECT etl_unschedule('it''s'), etl_unschedule('mine')}),
	't|t', 'the owner unschedules a job a superuser made');
is($cron->safe_psql('postgres', q{SELECT schedule IS NULL FROM etl.status WHERE pipeline = 'it''s'}),
	't', 'etl.status shows no schedule once unscheduled');
$err = error_of($cron, 'other', q{SELECT etl_drop_pipeline('orders')});
like($err, qr/NOTICE:  00000: a pg_cron job of pipeline "orders" would be in database "postgres"/,
	'a drop in another database says that the job is kept in the cron database');
my ($unschedule_sql) = $err =~ /HINT:  If it was scheduled, connect to database "postgres" and run: (.*)\n/;
is($cron->safe_psql('postgres', $unschedule_sql), 't', 'and how to remove it there');
is($cron->safe_psql('postgres', q{SELECT string_agg(jobname, ',') FROM cron.job}),
	'etl:paused', 'only the paused job is left');

# ---------------------------------------------------------------------------
# a server without pg_cron: the functions fail with a hint, the rest works
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', q{log_line_prefix = '%m [%p] %e %q%a '});
$plain->start;
$plain->safe_psql('postgres', "CREATE EXTENSION etl_ext;\n"
	  . pipelines_sql('postgres', q{'p'} => 'p'));
like(error_of($plain, 'postgres', q{SELECT etl_schedule('p', '* * * * *')}),
	qr/ERROR:  55000: cannot schedule pipeline "p": pg_cron is not installed\n.*\nHINT:  Set shared_preload_libraries = 'pg_cron' in postgresql.conf, restart the server, and run CREATE EXTENSION pg_cron in the database named by cron.database_name \(default postgres\)\./,
	'without pg_cron etl_schedule fails with 55000 and a hint');
is($plain->safe_psql('postgres', q{SELECT status FROM etl_run('p'); SELECT etl_drop_pipeline('p')}),
	"succeeded\nt", 'runs and drops work without pg_cron');

done_testing();
