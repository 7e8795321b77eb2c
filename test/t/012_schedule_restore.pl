# Schedules restored with pg_dump onto another server: pg_cron restores its
# jobs with the host, port and database they were made for, so they would
# run against the old server.  etl.status.schedule_elsewhere flags such a
# pipeline (where its job connects), and etl_schedule re-creates the job
# here, keeping its schedule and its pause; a job for another database of
# the same server stays refused (42710).  No job runs during the test: the
# schedules are on the first of January at midnight.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $never = '0 0 1 1 *';

# a node with pg_cron keeping its jobs in database $db, cron.host $host
sub cron_node
{
	my ($name, $db, $host) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = '$db'
cron.host = '$host'
log_line_prefix = '%m [%p] %e %q%a '
});
	$node->start;
	$node->safe_psql('postgres', qq{CREATE ROLE alice LOGIN; CREATE DATABASE $db;});
	return $node;
}

# error_of(node, db, sql): the stderr of sql, with SQLSTATEs shown
sub error_of
{
	my ($node, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err);
	return $err;
}

# the pipeline's job as pg_cron keeps it
sub job_of
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, q{
SELECT format('%s|%s|%s|%s|%s|%s', nodename, nodeport, database, username, schedule, active)
  FROM cron.job WHERE jobname = 'etl:orders'});
}

# ---------------------------------------------------------------------------
# the original: database app, pipeline orders of alice, scheduled
my $old = cron_node('old', 'app', 'localhost');
$old->safe_psql('app', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION etl_ext;
GRANT USAGE ON SCHEMA cron TO alice;
CREATE SCHEMA src AUTHORIZATION alice;
CREATE SCHEMA dw AUTHORIZATION alice;
SET ROLE alice;
CREATE TABLE src.orders (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
CREATE TABLE dw.orders (id int PRIMARY KEY, v text);
INSERT INTO src.orders SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('orders', 'src.orders', 'dw.orders', watermark_column => 'at');
SELECT status FROM etl_run('orders');
});
$old->safe_psql('app', qq{SET ROLE alice; SELECT etl_schedule('orders', '$never')});
my $old_port = $old->port;
is(job_of($old, 'app'), "localhost|$old_port|app|alice|$never|t",
	'pg_cron made the job for this server: cron.host, its port, its database');
is($old->safe_psql('app', q{SELECT schedule || '|' || (schedule_elsewhere IS NULL) FROM etl.status}),
	"$never|true", 'etl.status: scheduled, and not elsewhere');

my $dump = $old->basedir . '/app.dump';
$old->command_ok(
	[ 'pg_dump', '-Fc', '-h', $old->host, '-p', $old->port, '-f', $dump, 'app' ],
	'pg_dump of the database with its pipelines and pg_cron jobs');

# ---------------------------------------------------------------------------
# restored onto another server (another port): the job still names the old
# port, and etl.status says so
my $new = cron_node('new', 'app', 'localhost');
$new->command_ok(
	[ 'pg_restore', '-h', $new->host, '-p', $new->port, '-d', 'app', $dump ],
	'pg_restore onto another server');
is(job_of($new, 'app'), "localhost|$old_port|app|alice|$never|t",
	'the restored job still connects to the old server');
is($new->safe_psql('app', q{SELECT schedule || '|' || schedule_elsewhere FROM etl.status}),
	"$never|host=localhost port=$old_port dbname=app",
	'etl.status flags it: schedule_elsewhere is where the job connects');
is($new->safe_psql('app', q{SELECT count(*) FROM etl.status WHERE schedule_elsewhere IS NOT NULL}),
	'1', 'one pipeline to schedule again');
# the restored job is paused meanwhile; re-created, it stays paused
$new->safe_psql('app', q{SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'etl:orders'});
my $old_jobid = $new->safe_psql('app', q{SELECT jobid FROM cron.job WHERE jobname = 'etl:orders'});

# etl_schedule re-creates the job for this server
my $err = error_of($new, 'app', qq{SET ROLE alice; SELECT etl_schedule('orders', '$never')});
like($err, qr/NOTICE:  00000: pg_cron job $old_jobid of pipeline "orders" ran at host=localhost port=$old_port dbname=app, not in this server's database/,
	'etl_schedule says the old job ran elsewhere');
like($err, qr/WARNING:  01000: pg_cron job "etl:orders" of pipeline "orders" is inactive/,
	'and that the new one keeps its pause');
my $new_port = $new->port;
is(job_of($new, 'app'), "localhost|$new_port|app|alice|$never|f",
	'the job now connects to this server, same schedule, still paused');
isnt($new->safe_psql('app', q{SELECT jobid FROM cron.job WHERE jobname = 'etl:orders'}), $old_jobid,
	'it is a new job');
is($new->safe_psql('app', q{SELECT count(*) FROM cron.job}), '1', 'the old one is gone');
is($new->safe_psql('app', q{SELECT schedule_elsewhere IS NULL FROM etl.status}),
	't', 'etl.status no longer flags it');
# scheduling again changes nothing but the schedule
my $jobid = $new->safe_psql('app', q{SELECT jobid FROM cron.job WHERE jobname = 'etl:orders'});
$err = error_of($new, 'app', q{SET ROLE alice; SELECT etl_schedule('orders', '0 0 2 1 *')});
unlike($err, qr/NOTICE/, 'a job that runs here is not re-created');
is($new->safe_psql('app', q{SELECT jobid || '|' || schedule FROM cron.job WHERE jobname = 'etl:orders'}),
	"$jobid|0 0 2 1 *", 'the same job gets the new schedule');

# ---------------------------------------------------------------------------
# restored under another database name, on a server whose cron.host differs:
# host and database are flagged; the old database does not exist here, so
# the job is re-created
my $renamed = cron_node('renamed', 'warehouse', '127.0.0.1');
$renamed->command_ok(
	[ 'pg_restore', '-h', $renamed->host, '-p', $renamed->port, '-d', 'warehouse', $dump ],
	'pg_restore into a database of another name');
is($renamed->safe_psql('warehouse', q{SELECT schedule_elsewhere FROM etl.status}),
	"host=localhost port=$old_port dbname=app",
	'etl.status flags a job of another host, port and database');
$renamed->safe_psql('warehouse', qq{SET ROLE alice; SELECT etl_schedule('orders', '$never')});
my $renamed_port = $renamed->port;
is(job_of($renamed, 'warehouse'), "127.0.0.1|$renamed_port|warehouse|alice|$never|t",
	're-created for this host, port and database');
is($renamed->safe_psql('warehouse', q{SELECT schedule || '|' || (schedule_elsewhere IS NULL) FROM etl.status}),
	"$never|true", 'etl.status shows the schedule and no flag');

# a job for another database that this server has is left alone: it may be
# a pipeline of the same name there (42710, as before)
$renamed->safe_psql('postgres', 'CREATE DATABASE other');
$renamed->safe_psql('warehouse', q{SELECT cron.alter_job(jobid, database => 'other') FROM cron.job WHERE jobname = 'etl:orders'});
is($renamed->safe_psql('warehouse', q{SELECT schedule_elsewhere FROM etl.status}),
	"host=127.0.0.1 port=$renamed_port dbname=other",
	'etl.status flags a job of another database of this server');
like(error_of($renamed, 'warehouse', qq{SET ROLE alice; SELECT etl_schedule('orders', '$never')}),
	qr/ERROR:  42710: role "alice" already has pg_cron job "etl:orders", for database "other"/,
	'etl_schedule does not take over a job of another database of this server');

# the runs of the restored pipelines continue from their watermark
is($new->safe_psql('app', q{SET ROLE alice; SELECT status || '|' || rows_extracted FROM etl_run('orders')}),
	'succeeded|0', 'a run on the restored server continues from the restored watermark');

done_testing();
