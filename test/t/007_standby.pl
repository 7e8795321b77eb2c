# A hot standby and its promotion.  On the standby every call that would
# write (a run, a catch-up, a backfill, a replay, definitions, checks,
# schedules, watermark resets, dead letters, change tracking) fails at entry
# with 25006, naming the call and its pipeline (or table, or dead letter),
# with a hint and without internal SQL in a CONTEXT, and changes nothing,
# while etl.status and the metrics answer.  The primary then fails in the middle of a run; after the
# standby's promotion the next run of each pipeline continues exactly from
# the replicated watermark: the target equals the transformed source row
# for row, each row loaded once, in modes timestamp, serial, xid, cdc and
# snapshot.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
max_connections = 30
shared_buffers = 16MB
timezone = 'UTC'
log_line_prefix = '%m [%p] %e %q%a '
});
$primary->start;

# pipelines of the modes that keep a watermark, and one snapshot
$primary->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE TABLE ts (id int PRIMARY KEY, v text, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ts_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('ts', 'ts', 'ts_dst', watermark_column => 'at',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');

CREATE SEQUENCE ser_seq CACHE 1;
CREATE TABLE ser (id bigint PRIMARY KEY DEFAULT nextval('ser_seq'), v text);
CREATE TABLE ser_dst (id bigint PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('ser', 'ser', 'ser_dst', mode => 'serial', watermark_column => 'id',
    load => 'append', transform => 'SELECT id, upper(v) AS v FROM etl_delta');

CREATE TABLE xs (id int PRIMARY KEY, v text);
SELECT etl_track_changes('xs');
CREATE TABLE xs_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('xs', 'xs', 'xs_dst', mode => 'xid', load => 'delete_insert',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');

CREATE TABLE changes (id int, v text, _cdc_operation text, _cdc_lsn bigint);
CREATE TABLE cdc_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('cdc', 'changes', 'cdc_dst', key => ARRAY['id'], mode => 'cdc',
    watermark_column => '_cdc_lsn');

CREATE TABLE snap (id int PRIMARY KEY, v text);
CREATE TABLE snap_dst (id int PRIMARY KEY, v text, _etl_run_id bigint);
SELECT etl_create_pipeline('snap', 'snap', 'snap_dst', mode => 'snapshot',
    transform => 'SELECT id, upper(v) AS v FROM etl_delta');
});

# changes($n): new and changed rows in every source
sub changes
{
	my ($node, $n) = @_;
	$node->safe_psql('postgres', qq{
INSERT INTO ts SELECT g, 'ts$n-' || g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE ts SET v = v || '+', at = now() WHERE id % 7 = $n;
INSERT INTO ser (v) SELECT 'ser$n-' || g FROM generate_series(1, 100) g;
INSERT INTO xs SELECT g, 'xs$n-' || g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE xs SET v = v || '+' WHERE id % 7 = $n;
INSERT INTO changes SELECT g % 150, 'c$n-' || g, CASE WHEN g % 150 = 3 * $n THEN 'd' ELSE 'u' END,
       1000 * $n + g FROM generate_series(1, 200) g;
INSERT INTO snap SELECT g, 'snap$n-' || g FROM generate_series(100 * $n + 1, 100 * $n + 100) g;
UPDATE snap SET v = v || '+' WHERE id % 7 = $n;
DELETE FROM snap WHERE id % 11 = $n;
});
}

my @pipelines = qw(ts ser xs cdc snap);
my %expected = (
	ts => [ 'SELECT id, upper(v) FROM ts', 'SELECT id, v FROM ts_dst' ],
	ser => [ 'SELECT id, upper(v) FROM ser', 'SELECT id, v FROM ser_dst' ],
	xs => [ 'SELECT id, upper(v) FROM xs', 'SELECT id, v FROM xs_dst' ],
	# cdc: each key as its last change left it; a deleted key is gone
	cdc => [
		q{SELECT id, v FROM (SELECT DISTINCT ON (id) id, v, _cdc_operation FROM changes
  ORDER BY id, _cdc_lsn DESC) c WHERE _cdc_operation <> 'd'}, 'SELECT id, v FROM cdc_dst'
	],
	snap => [ 'SELECT id, upper(v) FROM snap', 'SELECT id, v FROM snap_dst' ]);

# run_all($node): one run of each pipeline; returns "name:extracted" pairs
sub run_all
{
	my ($node) = @_;
	return $node->safe_psql('postgres', join("\n",
		map { "SELECT '$_:' || status || ':' || rows_extracted FROM etl_run('$_');" } @pipelines));
}

# check_targets($node, $label): each target equals its transformed source
# row for row, and no row was loaded twice (one row per key)
sub check_targets
{
	my ($node, $label) = @_;
	for my $p (@pipelines)
	{
		my ($exp, $act) = @{ $expected{$p} };
		is($node->safe_psql('postgres', qq{
SELECT count(*) FROM ((($exp) EXCEPT ALL ($act)) UNION ALL (($act) EXCEPT ALL ($exp))) d}),
			'0', "$label: target of $p equals its transformed source");
	}
}

changes($primary, 1);
# (cdc counts the change rows, snapshot the whole source)
is(run_all($primary), "ts:succeeded:100\nser:succeeded:100\nxs:succeeded:100\ncdc:succeeded:200\nsnap:succeeded:91",
	'the first runs on the primary load every pipeline');
changes($primary, 2);
run_all($primary);
check_targets($primary, 'primary');
# a failed run's record and dead letters, for the replay on the standby
$primary->safe_psql('postgres', q{
CREATE TABLE bad (id int PRIMARY KEY, v text, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bad_dst (id int PRIMARY KEY, n int);
INSERT INTO bad VALUES (1, '1'), (2, 'two');
SELECT etl_create_pipeline('bad', 'bad', 'bad_dst', watermark_column => 'at', error_threshold => 50,
    transform => 'SELECT id, v::int AS n FROM etl_delta');
SELECT etl_run('bad');
});

# the standby, from a backup, streaming
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
changes($primary, 3);
run_all($primary);
$primary->wait_for_catchup($standby);

# 1. on the standby: every writer fails with 25006, the readers answer
sub error_of
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err);
	return $err;
}

my $state = q{
SELECT (SELECT string_agg(name || '=' || coalesce(watermark, '-'), ',' ORDER BY name) FROM etl.pipelines) || ' ' ||
       (SELECT count(*) FROM etl.runs) || ' ' || (SELECT count(*) FROM etl.batches) || ' ' ||
       (SELECT count(*) FROM etl.dead_letters WHERE status = 'pending') || ' ' ||
       (SELECT count(*) FROM ts_dst) || ' ' || (SELECT count(*) FROM xs_dst)};
my $standby_before = $standby->safe_psql('postgres', $state);
is($standby_before, $primary->safe_psql('postgres', $state), 'the standby has replayed the runs');

like(error_of($standby, q{SELECT etl_run('ts')}),
	qr/ERROR:  25006: cannot run pipeline "ts" during recovery\n.*HINT:  Run pipelines on the primary; after a promotion the next run continues from the replicated watermark\./s,
	'etl_run on a standby fails with 25006 and a hint');
unlike(error_of($standby, q{SELECT etl_run('xs')}), qr/CONTEXT:/,
	'etl_run on a standby: no context');
# every other writer fails at entry with a 25006 of its own, naming the
# call and what it was for, with a hint; no internal statement in a CONTEXT
my $dead_letter = $standby->safe_psql('postgres', q{
SELECT min(d.id) FROM etl.dead_letters d JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = 'bad'});
for my $case (
	[ q{CALL etl_catch_up('ts')}, 'etl_catch_up', 'pipeline "ts"' ],
	[ q{CALL etl_backfill('ser', from_value => '1', to_value => '100', step => '50')},
		'etl_backfill', 'pipeline "ser"' ],
	[ q{SELECT etl_retry_dead_letters('bad')}, 'etl_retry_dead_letters', 'pipeline "bad"' ],
	[ qq{SELECT etl_resolve_dead_letter($dead_letter, 'ignored', 'on the standby')},
		'etl_resolve_dead_letter', "dead letter $dead_letter" ],
	[ q{SELECT etl_reset_watermark('ts', NULL)}, 'etl_reset_watermark', 'pipeline "ts"' ],
	[ q{SELECT etl_reset_watermark('ser', '5', force => true)}, 'etl_reset_watermark', 'pipeline "ser"' ],
	[ q{SELECT etl_alter_pipeline('ts', batch_size => 10)}, 'etl_alter_pipeline', 'pipeline "ts"' ],
	[ q{SELECT etl_create_pipeline('new', 'ts', 'ts_dst', watermark_column => 'at')},
		'etl_create_pipeline', 'pipeline "new"' ],
	[ q{SELECT etl_add_check('ts', 'not_null', column_name => 'v')}, 'etl_add_check', 'pipeline "ts"' ],
	[ q{SELECT etl_drop_check('ts', 'ts_v_not_null')}, 'etl_drop_check', 'pipeline "ts"' ],
	[ q{SELECT etl_schedule('ts', '* * * * *')}, 'etl_schedule', 'pipeline "ts"' ],
	[ q{SELECT etl_unschedule('ts')}, 'etl_unschedule', 'pipeline "ts"' ],
	[ q{SELECT etl_track_changes('ts')}, 'etl_track_changes', 'table public.ts' ],
	[ q{SELECT etl_rebase_xid('xs')}, 'etl_rebase_xid', 'table public.xs' ],
	[ q{SELECT etl_drop_pipeline('snap')}, 'etl_drop_pipeline', 'pipeline "snap"' ])
{
	my ($call, $function, $object) = @$case;
	my $err = error_of($standby, $call);
	like($err,
		qr/ERROR:  25006: cannot call \Q$function\E for \Q$object\E during recovery\n.*HINT:  Call \Q$function\E on the primary; the standby receives what it writes by replication\./s,
		"on a standby, $call fails with 25006 naming $function and $object, with a hint");
	unlike($err, qr/CONTEXT:/, "and no context, no internal statement ($call)");
	unlike($err, qr/XX000|internal error|autonomous writer/, "and no internal error ($call)");
}
is($standby->safe_psql('postgres', q{
SELECT string_agg(pipeline || ':' || last_status, ',' ORDER BY pipeline) FROM etl.status}),
	'bad:succeeded,cdc:succeeded,ser:succeeded,snap:succeeded,ts:succeeded,xs:succeeded',
	'etl.status answers on the standby');
like($standby->safe_psql('postgres', q{SELECT etl_metrics()}),
	qr/etl_runs_total\{pipeline="ts",status="succeeded"\} 3/, 'so does etl_metrics()');
is($standby->safe_psql('postgres', q{
SELECT string_agg(target_column || ':' || transformation, ',' ORDER BY target_column)
  FROM etl_lineage() WHERE pipeline = 'ts'}),
	'id:DIRECT,v:INDIRECT', 'and the lineage');
is($standby->safe_psql('postgres', $state), $standby_before, 'nothing changed on the standby');

# 2. the primary fails in the middle of a run of every pipeline: new
#    changes replicated, their runs loaded and held before their records
changes($primary, 4);
my $holder = $primary->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(727274)');
my @runners;
for my $p (@pipelines)
{
	my $r = $primary->background_psql('postgres', on_error_stop => 0);
	$r->query_until(qr/started/, qq{
SET etl.debug_pause_at = 'before_record';
\\echo started
SELECT etl_run('$p');
});
	push @runners, $r;
}
$primary->poll_query_until('postgres', q{
SELECT count(*) = 5 FROM pg_locks WHERE locktype = 'advisory' AND objid = 727274 AND NOT granted})
  or die 'the runs did not all reach before_record';
# a commit flushes the WAL the held runs wrote, so that the standby receives
# it (a walsender sends only flushed WAL)
$primary->safe_psql('postgres', 'CREATE TABLE flushed ()');
$primary->wait_for_catchup($standby);
$primary->stop('immediate');
for my $s (@runners, $holder)
{
	eval { $s->{run}->finish };
}

# 3. the promoted standby's next runs continue from the replicated
#    watermarks: they load the fourth changes once, and the targets equal
#    their transformed sources
$standby->promote;
my $last_run = $standby->safe_psql('postgres', 'SELECT max(run_id) FROM etl.runs');
is($standby->safe_psql('postgres', $state), $standby_before,
	'after promotion the watermarks and targets are those replicated; the held runs left nothing');
# the fourth changes: 100 new rows and 43 older ones updated (ts, xs), 100
# ids (ser), 200 change rows (cdc); the snapshot source holds 307 rows
is(run_all($standby), "ts:succeeded:143\nser:succeeded:100\nxs:succeeded:143\ncdc:succeeded:200\nsnap:succeeded:307",
	'the next runs on the promoted standby take exactly the changes since the replicated watermarks');
check_targets($standby, 'promoted');
is($standby->safe_psql('postgres', qq{
SELECT count(*) FROM etl.runs WHERE status = 'succeeded' AND rows_inserted + rows_updated > 0 AND run_id > $last_run}),
	'5', 'each pipeline wrote in one run after the promotion');
changes($standby, 5);
is(run_all($standby), "ts:succeeded:157\nser:succeeded:100\nxs:succeeded:157\ncdc:succeeded:200\nsnap:succeeded:361",
	'and the runs after go on as before');
check_targets($standby, 'promoted, later');

$standby->stop;
done_testing();
