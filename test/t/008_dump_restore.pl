# pg_dump / pg_restore of a database holding pipelines of every mode
# (timestamp, serial, xid, cdc, snapshot, full) and load (merge, append,
# delete_insert, partition_swap), owned by a plain role, with history, a
# pending dead letter and changes not loaded yet.  Restored into another
# database of the same cluster (mode xid's watermark names the cluster,
# which stays the same), the runs continue exactly: the next runs of the
# restored database do what the same runs do in the original one (the same
# counts, the same targets), each target equals its transformed source row
# for row, nothing is loaded twice or lost; run ids continue, the metrics'
# counters are those of the original, a dead letter replays.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', qq{
timezone = 'UTC'
log_line_prefix = '%m [%p] %e %q%a '
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE alice;
CREATE DATABASE app;
});
$node->safe_psql('app', q{
CREATE EXTENSION etl_ext;
CREATE SCHEMA s AUTHORIZATION alice;
SET ROLE alice;

-- timestamp, merge (row hash)
CREATE TABLE s.ts (id int PRIMARY KEY, v text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE s.ts_dst (id int PRIMARY KEY, v text, _etl_row_hash bytea, _etl_run_id bigint);
SELECT etl_create_pipeline('ts', 's.ts', 's.ts_dst', watermark_column => 'at',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');

-- serial, append
CREATE SEQUENCE s.ser_seq CACHE 1;
CREATE TABLE s.ser (id bigint PRIMARY KEY DEFAULT nextval('s.ser_seq'), v text);
CREATE TABLE s.ser_dst (id bigint PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('ser', 's.ser', 's.ser_dst', mode => 'serial', watermark_column => 'id',
    load => 'append');

-- xid, delete_insert
CREATE TABLE s.xs (id int PRIMARY KEY, v text);
SELECT etl_track_changes('s.xs');
CREATE TABLE s.xs_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('xs', 's.xs', 's.xs_dst', mode => 'xid', load => 'delete_insert',
    transform => 'SELECT id, v || ''!'' AS v FROM etl_delta');

-- cdc, merge
CREATE TABLE s.changes (id int, v text, _cdc_operation text, _cdc_lsn bigint);
CREATE TABLE s.cdc_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('cdc', 's.changes', 's.cdc_dst', key => ARRAY['id'], mode => 'cdc',
    watermark_column => '_cdc_lsn');

-- snapshot, merge, soft deletes
CREATE TABLE s.snap (id int PRIMARY KEY, v text);
CREATE TABLE s.snap_dst (id int PRIMARY KEY, v text, _deleted_at timestamptz, _etl_run_id bigint);
SELECT etl_create_pipeline('snap', 's.snap', 's.snap_dst', mode => 'snapshot',
    options => '{"delete_mode": "soft"}');

-- full, merge
CREATE TABLE s.fl (id int PRIMARY KEY, v text);
CREATE TABLE s.fl_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('fl', 's.fl', 's.fl_dst', mode => 'full');

-- timestamp, partition_swap by month
CREATE TABLE s.sales (id int PRIMARY KEY, day date NOT NULL, amount int,
                      at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE s.sales_dw (id int, day date NOT NULL, amount int, PRIMARY KEY (id, day))
    PARTITION BY RANGE (day);
SELECT etl_create_pipeline('swap', 's.sales', 's.sales_dw', key => ARRAY['id'], watermark_column => 'at',
    load => 'partition_swap', options => '{"partition_interval": "1 month"}');

-- a pipeline with a dead letter pending (an append without a key)
CREATE TABLE s.dl (id int, v text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE s.dl_dst (id int, n int);
SELECT etl_create_pipeline('dl', 's.dl', 's.dl_dst', watermark_column => 'at', load => 'append',
    error_threshold => 50, transform => 'SELECT id, v::int AS n FROM etl_delta');
});

# changes($db, $n): new, changed and deleted rows in every source
sub changes
{
	my ($db, $n) = @_;
	$node->safe_psql($db, qq{
SET ROLE alice;
INSERT INTO s.ts (id, v) SELECT g, 'ts$n-' || g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE s.ts SET v = v || '+', at = clock_timestamp() WHERE id % 7 = $n;
INSERT INTO s.ser (v) SELECT 'ser$n-' || g FROM generate_series(1, 100) g;
INSERT INTO s.xs SELECT g, 'xs$n-' || g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE s.xs SET v = v || '+' WHERE id % 7 = $n;
INSERT INTO s.changes SELECT g % 150, 'c$n-' || g, CASE WHEN g % 150 = 3 * $n THEN 'd' ELSE 'u' END,
       1000 * $n + g FROM generate_series(1, 200) g;
INSERT INTO s.snap SELECT g, 'snap$n-' || g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE s.snap SET v = v || '+' WHERE id % 7 = $n;
DELETE FROM s.snap WHERE id % 11 = $n;
INSERT INTO s.fl SELECT g, 'fl$n-' || g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE s.fl SET v = v || '+' WHERE id % 7 = $n;
DELETE FROM s.fl WHERE id % 11 = $n;
INSERT INTO s.sales (id, day, amount)
SELECT g, date '2024-01-01' + (g * 13 + $n) % 120, g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE s.sales SET amount = amount + 1, at = clock_timestamp() WHERE id % 7 = $n;
INSERT INTO s.dl (id, v) SELECT g, g::text FROM generate_series(100 * $n + 1, 100 * $n + 10) g;
});
}

my @pipelines = qw(ts ser xs cdc snap fl swap dl);
my %expected = (
	ts => [ 'SELECT id, upper(v) FROM s.ts', 'SELECT id, v FROM s.ts_dst' ],
	ser => [ 'SELECT id, v FROM s.ser', 'SELECT id, v FROM s.ser_dst' ],
	xs => [ q{SELECT id, v || '!' FROM s.xs}, 'SELECT id, v FROM s.xs_dst' ],
	# each key as its last change left it; a deleted key is gone
	cdc => [
		q{SELECT id, v FROM (SELECT DISTINCT ON (id) id, v, _cdc_operation FROM s.changes
  ORDER BY id, _cdc_lsn DESC) c WHERE _cdc_operation <> 'd'},
		'SELECT id, v FROM s.cdc_dst'
	],
	# vanished keys stay, stamped
	snap => [
		q{SELECT id, v, false FROM s.snap},
		q{SELECT id, v, _deleted_at IS NOT NULL FROM s.snap_dst WHERE id IN (SELECT id FROM s.snap)
  UNION ALL SELECT id, v, false FROM s.snap_dst WHERE id NOT IN (SELECT id FROM s.snap) AND _deleted_at IS NULL}
	],
	fl => [ 'SELECT id, v FROM s.fl', 'SELECT id, v FROM s.fl_dst' ],
	swap => [ 'SELECT id, day, amount FROM s.sales', 'SELECT id, day, amount FROM s.sales_dw' ],
	# the bad row is a dead letter, not in the target
	dl => [ q{SELECT id, v::int FROM s.dl WHERE v ~ '^[0-9]+$'}, 'SELECT id, n FROM s.dl_dst' ]);

# run_all($db): one run of each pipeline, as its owner; returns the counts
sub run_all
{
	my ($db) = @_;
	return $node->safe_psql($db, "SET ROLE alice;\n" . join("\n",
		map {
			"SELECT '$_:' || status || ':' || rows_extracted || '/' || rows_inserted || '/' || rows_updated"
			  . " || '/' || rows_deleted || '/' || rows_unchanged || '/' || rows_rejected FROM etl_run('$_');"
		} @pipelines));
}

# check_targets($db, $label): each target equals its transformed source
# row for row; each row of a keyed target once
sub check_targets
{
	my ($db, $label) = @_;
	for my $p (@pipelines)
	{
		my ($exp, $act) = @{ $expected{$p} };
		is($node->safe_psql($db, qq{
SELECT count(*) FROM ((($exp) EXCEPT ALL ($act)) UNION ALL (($act) EXCEPT ALL ($exp))) d}),
			'0', "$label: target of $p equals its transformed source");
	}
}

# history: what the dump must keep
my $history = q{
SELECT string_agg(format('%s|%s|%s|%s', name, mode, load, watermark), E'\n' ORDER BY name) FROM etl.pipelines;
SELECT count(*) || ' runs, last ' || max(run_id) FROM etl.runs;
SELECT count(*) || ' batches' FROM etl.batches;
SELECT string_agg(status || ' ' || (record->>'id'), ',') FROM etl.dead_letters;
SELECT count(*) || ' signatures' FROM etl.snapshot_signatures;
SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 's.sales_dw'::regclass;
};
# the counters of the metrics (durations differ)
my $counters = q{
SELECT string_agg(l, E'\n' ORDER BY l) FROM regexp_split_to_table(etl_metrics(), E'\n') l
 WHERE l ~ '^etl_(rows_total|runs_total|dead_letters_pending)'};

changes('app', 1);
$node->safe_psql('app', q{INSERT INTO s.dl (id, v) VALUES (1000, 'bad')});
run_all('app');
changes('app', 2);
run_all('app');
check_targets('app', 'before the dump');
# changes not loaded yet when the dump is taken
changes('app', 3);

my $dump = $node->basedir . '/app.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('app'), '-f', $dump ], 'pg_dump');
# a dump of selected schemas leaves the extension, and so every pipeline,
# out; --extension etl_ext keeps them
for my $case ([ [ '-n', 's' ], 0 ], [ [ '-n', 's', '--extension', 'etl_ext' ], 1 ])
{
	my ($opts, $kept) = @$case;
	my ($stdout, $stderr) = run_command([ 'pg_dump', @$opts, '-d', $node->connstr('app') ]);
	is(($stdout =~ /^COPY etl\.pipelines /m ? 1 : 0) . ($stdout =~ /^CREATE EXTENSION IF NOT EXISTS etl_ext /m ? 1 : 0),
		$kept x 2, "pg_dump @$opts: the pipelines are " . ($kept ? 'kept' : 'left out'));
}
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into another database of the cluster');

is($node->safe_psql('restored', $history), $node->safe_psql('app', $history),
	'the restored database has the pipelines, watermarks, runs, batches, dead letters, signatures and partitions');
is($node->safe_psql('restored', $counters), $node->safe_psql('app', $counters),
	'the counters of the metrics are those of the original');
like($node->safe_psql('restored', q{SELECT string_agg(DISTINCT (lag IS NOT NULL AND last_status = 'succeeded')::text, ',') FROM etl.status WHERE pipeline IN ('ts', 'ser', 'xs', 'cdc')}),
	qr/^true$/, 'etl.status shows the restored pipelines with their lag');

# the next runs: the same in both databases, exactly the third changes
my $last_run = $node->safe_psql('restored', 'SELECT max(run_id) FROM etl.runs');
my $restored_runs = run_all('restored');
is($restored_runs, run_all('app'), 'the next runs of the restored database do what they do in the original');
# the third changes: 100 new rows and 29 older ones updated (ts, xs, swap;
# delete_insert replaces the 29: updated rows), 100 ids (ser), 200 change
# rows of 150 keys (cdc: the 50 superseded ones unchanged; key 6, deleted by
# the second changes, comes back, key 9 goes), a source of 244 rows (snap,
# fl: 91 new, 22 changed, 19 vanished), 10 rows (dl)
is($restored_runs, join("\n",
	'ts:succeeded:129/100/29/0/0/0',
	'ser:succeeded:100/100/0/0/0/0',
	'xs:succeeded:129/100/29/0/0/0',
	'cdc:succeeded:200/1/148/1/50/0',
	'snap:succeeded:244/91/22/19/131/0',
	'fl:succeeded:244/91/22/19/131/0',
	'swap:succeeded:129/100/29/0/0/0',
	'dl:succeeded:10/10/0/0/0/0'),
	'they take the changes made before the dump, once');
is($node->safe_psql('restored', qq{SELECT min(run_id) > $last_run FROM etl.runs WHERE run_id > $last_run}),
	't', 'run ids continue after the restored ones');
check_targets('restored', 'after the restore');
for my $db ('app', 'restored')
{
	is($node->safe_psql($db, q{
SELECT string_agg(t, ',') FROM (
  SELECT 'ts' AS t FROM s.ts_dst GROUP BY id HAVING count(*) > 1
  UNION ALL SELECT 'xs' FROM s.xs_dst GROUP BY id HAVING count(*) > 1
  UNION ALL SELECT 'dl' FROM s.dl_dst GROUP BY id HAVING count(*) > 1) d}),
		'', "$db: no row loaded twice");
}
for my $tab ('s.ts_dst', 's.xs_dst')
{
	is($node->safe_psql('restored', qq{SELECT count(*) FROM $tab WHERE _etl_run_id > $last_run}),
		'129', "restored: the run into $tab wrote only the new and changed rows");
}

# the restored database goes on by itself
changes('restored', 4);
like(run_all('restored'), qr/^(?:\w+:succeeded:[0-9\/]+\n?){8}$/, 'later runs of the restored database succeed');
check_targets('restored', 'later');

# its dead letter replays through a fixed transform
is($node->safe_psql('restored', q{
SET ROLE alice;
SELECT etl_alter_pipeline('dl', transform => $$SELECT id, CASE WHEN v ~ '^[0-9]+$' THEN v::int ELSE -1 END AS n FROM etl_delta$$) > 0;
SELECT retried || ' ' || resolved || ' ' || still_pending FROM etl_retry_dead_letters('dl');
SELECT n FROM s.dl_dst WHERE id = 1000}),
	"t\n1 1 0\n-1", 'the restored dead letter replays');

# a run in progress while pg_dump reads is not in the dump: the restored
# database's run takes the batch the held run took
changes('app', 4);
my $ts_state = q{
SELECT (SELECT watermark FROM etl.pipelines WHERE name = 'ts') || ' ' ||
       (SELECT count(*) FROM etl.runs WHERE pipeline = 'ts') || ' ' ||
       (SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM s.ts_dst)};
my $before_run = $node->safe_psql('app', $ts_state);
my $holder = $node->background_psql('app');
$holder->query_safe('SELECT pg_advisory_lock(727274)');
my $runner = $node->background_psql('app');
$runner->query_until(qr/started/, q{
SET etl.debug_pause_at = 'before_record';
\echo started
SELECT rows_extracted || '/' || rows_inserted || '/' || rows_updated FROM etl_run('ts');
});
$node->poll_query_until('app', q{
SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 727274 AND NOT granted})
  or die 'the run did not reach before_record';
my $dump2 = $node->basedir . '/app2.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('app'), '-f', $dump2 ],
	'pg_dump while a run is held before its record');
$holder->query_safe('SELECT pg_advisory_unlock(727274)');
$holder->quit;
# the held run's result comes before that of the next query
my ($held) = $runner->query_safe(q{SELECT 'committed'}) =~ /^(\d+\/\d+\/\d+)\ncommitted$/;
$runner->quit;
like($held // '', qr/^\d+\/\d+\/\d+$/, 'the held run committed after the dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored2');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored2'), $dump2 ],
	'pg_restore of that dump');
is($node->safe_psql('restored2', $ts_state), $before_run,
	'the dump holds nothing of the run in progress');
is($node->safe_psql('restored2', q{SELECT rows_extracted || '/' || rows_inserted || '/' || rows_updated FROM etl_run('ts')}),
	$held,
	'the restored run takes the batch the held run took');

$node->stop;
done_testing();
