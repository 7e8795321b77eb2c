# Mode xid across pg_dump and pg_restore into another cluster (another
# system identifier): the restored pipelines are refused (55000) until
# etl_rebase_xid() re-stamps their source; then each pipeline's next run
# loads exactly the rows it had not loaded before the dump (rows written or
# updated after its last run, rows of a transaction open at that run), no
# row it had loaded, and the rows written here between the restore and the
# call; later runs go on as usual.  Three pipelines with snapshots of three
# moments share one source (one loads with append and no key: a row loaded
# twice would show), and a partitioned source is restored too.  The old
# cluster's transaction ids are ahead of the new cluster's in the first
# restore and behind them in the second.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $old = PostgreSQL::Test::Cluster->new('xid_old');
$old->init;
$old->start;
my $new = PostgreSQL::Test::Cluster->new('xid_new');
$new->init;
$new->start;

my $burn = q{DO $$BEGIN FOR i IN 1..%d LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END$$};

$old->safe_psql('postgres', sprintf($burn, 3000));
$old->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE SCHEMA xr;
CREATE TABLE xr.orders (id int PRIMARY KEY, v text,
                        touched timestamptz NOT NULL DEFAULT '2000-01-01');
-- a user trigger that must not fire when the source is re-stamped
CREATE FUNCTION xr.touch() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN NEW.touched := '2099-01-01'; RETURN NEW; END$$;
CREATE TRIGGER touch BEFORE UPDATE ON xr.orders FOR EACH ROW EXECUTE FUNCTION xr.touch();
INSERT INTO xr.orders (id, v) SELECT g, 'v' || g FROM generate_series(1, 20) g;
SELECT etl_track_changes('xr.orders');
CREATE TABLE xr.merge_dst (id int PRIMARY KEY, v text);
CREATE TABLE xr.late_dst (id int PRIMARY KEY, v text);
CREATE TABLE xr.log_dst (id int, v text);
SELECT etl_create_pipeline('xr_merge', 'xr.orders', 'xr.merge_dst', mode => 'xid',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');
SELECT etl_create_pipeline('xr_late', 'xr.orders', 'xr.late_dst', mode => 'xid',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');
SELECT etl_create_pipeline('xr_log', 'xr.orders', 'xr.log_dst', mode => 'xid',
    load => 'append', transform => 'SELECT id, v FROM etl_delta');
CREATE TABLE xr.events (id int, region text, v text, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE xr.events_eu PARTITION OF xr.events FOR VALUES IN ('eu');
CREATE TABLE xr.events_us PARTITION OF xr.events FOR VALUES IN ('us');
INSERT INTO xr.events SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'e' || g
  FROM generate_series(1, 10) g;
SELECT etl_track_changes('xr.events');
CREATE TABLE xr.events_dst (id int, region text, v text, PRIMARY KEY (id, region));
SELECT etl_create_pipeline('xr_events', 'xr.events', 'xr.events_dst', mode => 'xid');
});

# first runs; a transaction open during xr_merge's first run commits after it
my $open = $old->background_psql('postgres');
is($old->safe_psql('postgres', q{SELECT rows_extracted FROM etl_run('xr_log')}),
	'20', 'xr_log loads the first rows');
$open->query_safe(q{BEGIN; INSERT INTO xr.orders (id, v) VALUES (21, 'open at the run')});
is($old->safe_psql('postgres', q{SELECT rows_extracted FROM etl_run('xr_merge')}),
	'20', 'xr_merge loads the first rows, not the open transaction\'s');
is($old->safe_psql('postgres', q{SELECT rows_extracted FROM etl_run('xr_events')}),
	'10', 'xr_events loads the first rows');
$open->query_safe('COMMIT');
$open->quit;

# changes after those runs, then xr_late's first run, then more changes
$old->safe_psql('postgres', q{
INSERT INTO xr.orders (id, v) VALUES (22, 'after the first runs');
UPDATE xr.orders SET v = v || ' updated' WHERE id IN (1, 2);
UPDATE xr.events SET v = v || ' updated' WHERE id IN (1, 2);
});
is($old->safe_psql('postgres', q{SELECT rows_extracted FROM etl_run('xr_late')}),
	'22', 'xr_late loads everything');
$old->safe_psql('postgres', q{
INSERT INTO xr.orders (id, v) VALUES (23, 'after the late run');
UPDATE xr.orders SET v = v || ' again' WHERE id IN (2, 3);
INSERT INTO xr.events VALUES (11, 'us', 'after the runs');
});

my $dump = $old->basedir . '/xid.dump';
$old->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('postgres')],
	'pg_dump of the old cluster');
my $old_sysid = $old->safe_psql('postgres',
	'SELECT system_identifier FROM pg_control_system()');

# the rows each pipeline had not loaded before the dump
my %expected = (
	xr_merge => 6,     # 21 (open at its run), 22, 23, 1, 2, 3
	xr_log => 6,       # the same: its first run came before them all
	xr_late => 3,      # 23, 2, 3
	xr_events => 3,    # 1, 2 updated, 11
);

sub restore_and_rebase
{
	my ($db, $label) = @_;
	$new->safe_psql('postgres', "CREATE DATABASE $db");
	$new->command_ok(['pg_restore', '-d', $new->connstr($db), $dump],
		"$label: pg_restore into the new cluster");
	isnt($new->safe_psql($db, 'SELECT system_identifier FROM pg_control_system()'),
		$old_sysid, "$label: the new cluster has another system identifier");

	# refused until rebased, with the way out in the hint
	my ($ret, $stdout, $stderr) = $new->psql($db,
		q{SELECT rows_extracted FROM etl_run('xr_merge')},
		extra_params => ['-v', 'VERBOSITY=verbose']);
	isnt($ret, 0, "$label: a run of a restored pipeline fails");
	like($stderr, qr/55000/, "$label: with 55000");
	like($stderr, qr/etl_rebase_xid\('xr\.orders'\)/, "$label: the hint names etl_rebase_xid");

	# etl.status still reads: the lag of such a pipeline is unknown
	is($new->safe_psql($db, q{SELECT count(*) FILTER (WHERE lag IS NULL) || '/' || count(*) FROM etl.status}),
		'4/4', "$label: etl.status reads, the lag of restored xid pipelines NULL");

	# rows written here after the restore, before the rebase
	$new->safe_psql($db, q{
INSERT INTO xr.orders (id, v) VALUES (24, 'after the restore');
UPDATE xr.orders SET v = v || ' after the restore' WHERE id = 4;
});
	like($new->safe_psql($db, q{SELECT etl_rebase_xid('xr.orders')}),
		qr/^rebased pipelines xr_log, xr_merge, xr_late of xr\.orders: 24 rows re-stamped, 8 of them not loaded by every pipeline before the dump$/,
		"$label: etl_rebase_xid rebases the three pipelines, oldest snapshot first");
	like($new->safe_psql($db, q{SELECT etl_rebase_xid('xr.events')}),
		qr/^rebased pipeline xr_events of xr\.events: 11 rows re-stamped, 3 of them/,
		"$label: and the partitioned source's");
	is($new->safe_psql($db, q{SELECT count(*) FROM xr.orders WHERE touched <> '2000-01-01' AND id NOT IN (1, 2, 3, 4)}),
		'0', "$label: the source's own triggers did not fire");
	is($new->safe_psql($db, q{SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'xr.orders'::regclass}),
		'etl_track_changes:A,touch:O', "$label: and are enabled as before");

	# each pipeline's next run takes what it had not loaded, plus rows 24 and 4
	is($new->safe_psql($db, q{SELECT rows_extracted FROM etl_run('xr_merge')}),
		$expected{xr_merge} + 2, "$label: xr_merge loads what it lacked");
	is($new->safe_psql($db, q{SELECT rows_extracted FROM etl_run('xr_log')}),
		$expected{xr_log} + 2, "$label: xr_log loads what it lacked");
	is($new->safe_psql($db, q{SELECT rows_extracted FROM etl_run('xr_late')}),
		$expected{xr_late} + 2, "$label: xr_late loads what it lacked");
	is($new->safe_psql($db, q{SELECT rows_extracted FROM etl_run('xr_events')}),
		$expected{xr_events}, "$label: xr_events loads what it lacked");
	for my $p (qw(xr_merge xr_log xr_late xr_events))
	{
		is($new->safe_psql($db, "SELECT rows_extracted FROM etl_run('$p')"),
			'0', "$label: $p then finds nothing");
	}

	# row for row: the merge targets equal the transformed source, the
	# append target holds each version once and every current row
	for my $t (qw(merge_dst late_dst))
	{
		is($new->safe_psql($db, qq{
SELECT count(*) FROM (
  (SELECT id, upper(v) FROM xr.orders EXCEPT ALL SELECT id, v FROM xr.$t)
  UNION ALL
  (SELECT id, v FROM xr.$t EXCEPT ALL SELECT id, upper(v) FROM xr.orders)) d}),
			'0', "$label: xr.$t equals the transformed source");
	}
	is($new->safe_psql($db, q{
SELECT count(*) - count(DISTINCT (id, v)) FROM xr.log_dst}),
		'0', "$label: xr.log_dst holds no version twice");
	is($new->safe_psql($db, q{
SELECT count(*) FROM (SELECT id, v FROM xr.orders EXCEPT SELECT id, v FROM xr.log_dst) d}),
		'0', "$label: xr.log_dst holds every current row");
	is($new->safe_psql($db, q{SELECT count(*) FROM xr.log_dst}),
		'20' + $expected{xr_log} + 2, "$label: xr.log_dst holds each version loaded, once");
	is($new->safe_psql($db, q{
SELECT count(*) FROM (
  (SELECT id, region, v FROM xr.events EXCEPT ALL SELECT * FROM xr.events_dst)
  UNION ALL
  (SELECT * FROM xr.events_dst EXCEPT ALL SELECT id, region, v FROM xr.events)) d}),
		'0', "$label: xr.events_dst equals the source");

	# and later writes are taken as usual, by every pipeline, once
	$new->safe_psql($db, q{
INSERT INTO xr.orders (id, v) VALUES (25, 'after the rebase');
UPDATE xr.orders SET v = v || ' later' WHERE id = 5;
INSERT INTO xr.events VALUES (12, 'eu', 'after the rebase');
});
	for my $p (qw(xr_merge xr_log xr_late))
	{
		is($new->safe_psql($db, "SELECT rows_extracted FROM etl_run('$p')"),
			'2', "$label: $p takes the later writes");
	}
	is($new->safe_psql($db, q{SELECT rows_extracted FROM etl_run('xr_events')}),
		'1', "$label: xr_events takes the later write");
	is($new->safe_psql($db, q{SELECT count(*) FROM etl.status WHERE lag IS NOT NULL}),
		'4', "$label: etl.status shows their lag again");
	like($new->safe_psql($db, q{SELECT watermark FROM etl.pipelines WHERE name = 'xr_merge'}),
		qr/^\d+\//, "$label: the watermark is this cluster's now");
	isnt($new->safe_psql($db, q{SELECT split_part(watermark, '/', 1) FROM etl.pipelines WHERE name = 'xr_merge'}),
		$old_sysid, "$label: not the old cluster's");
}

# 1. the new cluster is younger: the old ids lie in its future
cmp_ok($new->safe_psql('postgres', 'SELECT pg_current_xact_id()::text::bigint'), '<',
	$old->safe_psql('postgres', 'SELECT pg_current_xact_id()::text::bigint') - 2000,
	'the old cluster\'s transaction ids are ahead of the new one\'s');
restore_and_rebase('restored1', 'younger cluster');

# 2. the new cluster is older: the old ids lie in its past
$new->safe_psql('postgres', sprintf($burn, 6000));
cmp_ok($new->safe_psql('postgres', 'SELECT pg_current_xact_id()::text::bigint'), '>',
	$old->safe_psql('postgres', 'SELECT pg_current_xact_id()::text::bigint'),
	'the new cluster\'s transaction ids are now ahead of the old one\'s');
restore_and_rebase('restored2', 'older cluster');

$old->stop;
$new->stop;
done_testing();
