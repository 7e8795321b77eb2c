# Observability of runs, as seen from outside the database:
#   1. structured log lines of each stage (etl.log_format json and text,
#      etl.log_min_messages);
#   2. alerts on the etl_events channel: run_failed from the autonomous
#      writer once a pipeline has failed alert_after_failures times in a
#      row, check_failed at the commit of a run whose warning check failed;
#   3. etl_metrics() in the Prometheus text exposition format (checked by a
#      parser written here) and as JSON, against etl.runs;
#   4. the same series through prometheus-postgres-exporter with
#      contrib/postgres_exporter.yml (ETL_CONTRIB names the contrib
#      directory when the tests run from a copy of test/);
#   5. OpenLineage RunEvents, validated by test/openlineage/validate.py
#      against test/openlineage/runevent-2-0-2.schema.json.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $here = dirname(abs_path(__FILE__));    # test/t
my $contrib = $ENV{ETL_CONTRIB} // "$here/../../contrib";
my $exporter_yml = "$contrib/postgres_exporter.yml";
my $exporter_bin = '/usr/bin/prometheus-postgres-exporter';
my $validator = "$here/../openlineage/validate.py";
my $ol_schema = "$here/../openlineage/runevent-2-0-2.schema.json";
my $json = JSON::PP->new->canonical;

my $node = PostgreSQL::Test::Cluster->new('observe');
$node->init;
$node->append_conf('postgresql.conf', qq{
etl.log_format = json
max_worker_processes = 8
});
$node->start;

# the source with a dimension table: the transform has a plain column, an
# expression and a column from a join
my $weird = 'we"ird\\name';    # a pipeline name with a double quote and a backslash
$node->safe_psql('postgres', qq{
CREATE EXTENSION etl_ext;
CREATE TABLE src (id int PRIMARY KEY, v int, cat int);
CREATE TABLE dim (cat int PRIMARY KEY, label text);
CREATE TABLE dst (id int PRIMARY KEY, v int, doubled int, label text);
INSERT INTO dim VALUES (1, 'one'), (2, 'two');
INSERT INTO src SELECT g, g, 1 + g % 2 FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('p', 'src', 'dst', mode => 'serial', watermark_column => 'id',
    max_attempts => 1,
    transform => 'SELECT d.id, d.v, d.v * 2 AS doubled, m.label FROM etl_delta d LEFT JOIN public.dim m ON m.cat = d.cat');
SELECT etl_add_check('p', 'not_null', 'v');

CREATE TABLE tsrc (id int PRIMARY KEY, at timestamptz NOT NULL);
CREATE TABLE tdst (id int PRIMARY KEY, at timestamptz);
INSERT INTO tsrc VALUES (1, '2024-01-01 00:00:00+00'), (2, '2024-01-01 00:00:30+00');
SELECT etl_create_pipeline('ts', 'tsrc', 'tdst', watermark_column => 'at', max_attempts => 1);

CREATE TABLE wsrc (id int PRIMARY KEY, v int);
CREATE TABLE wdst (id int PRIMARY KEY, v int CHECK (v <> 3));
INSERT INTO wsrc SELECT g, g FROM generate_series(1, 5) g;
SELECT etl_create_pipeline('$weird', 'wsrc', 'wdst', mode => 'serial', watermark_column => 'id',
    max_attempts => 1, error_threshold => 50);

CREATE TABLE bsrc (id int PRIMARY KEY, v int);
CREATE TABLE bdst (id int PRIMARY KEY, v int);
INSERT INTO bsrc VALUES (1, NULL);
SELECT etl_create_pipeline('bad', 'bsrc', 'bdst', mode => 'serial', watermark_column => 'id',
    max_attempts => 1);
SELECT etl_add_check('bad', 'not_null', 'v');
});

# run_pipeline(name) runs a pipeline that must succeed and returns its result
my @run_cols = qw(run_id status rows_extracted rows_inserted rows_updated rows_deleted);
sub run_pipeline
{
	my ($name) = @_;
	my $out = $node->safe_psql('postgres',
		"SELECT " . join(', ', @run_cols) . " FROM etl_run('$name')");
	my %r;
	@r{@run_cols} = split /\|/, $out;
	die "run of $name did not succeed: $out" unless $r{status} eq 'succeeded';
	return \%r;
}

# fail_pipeline(name) runs a pipeline that must fail; returns the run id and stderr
sub fail_pipeline
{
	my ($name, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	$sql //= "SELECT * FROM etl_run('$name')";
	my $rc = $node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr);
	die "run of $name did not fail: $stdout" if $rc == 0;
	$stderr =~ /run (\d+) of pipeline ".*" failed/
	  or die "no failed run in: $stderr";
	return ($1, $stderr);
}

sub log_offset { return -s $node->logfile; }

# the etl log lines written since offset: the messages after "LOG:  " that
# start with '{' (json) or 'etl: ' (text)
sub etl_log_lines
{
	my ($offset, $kind) = @_;
	my $text = slurp_file($node->logfile, $offset);
	my $re = $kind eq 'json' ? qr/ LOG:  (\{.*)$/ : qr/ LOG:  etl: (.*)$/;
	return map { /$re/ ? ($1) : () } split /\n/, $text;
}

# logfmt: key=value or key="quoted \"value\"" pairs separated by spaces;
# returns the pairs, or undef when the line is not entirely logfmt
sub parse_logfmt
{
	my ($line) = @_;
	my %f;
	my $rest = $line;
	while ($rest =~ s/^([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"=]+)(?: |$)//)
	{
		my ($k, $v) = ($1, $2);
		if ($v =~ s/^"(.*)"$/$1/)
		{
			$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
		}
		return undef if exists $f{$k};
		$f{$k} = $v;
	}
	return $rest eq '' ? \%f : undef;
}

my $num_re = qr/^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

#
# 1. Structured log lines
#

# json: every etl line is a JSON object with the common fields; a run logs
# start and completion of each stage, with the counts etl_run returned
my $off = log_offset();
my $p1 = run_pipeline('p');
my $p2 = do {
	$node->safe_psql('postgres',
		q{INSERT INTO src SELECT g, g, 1 + g % 2 FROM generate_series(11, 15) g});
	run_pipeline('p');
};
my $ts1 = run_pipeline('ts');
my $w1 = run_pipeline($weird);
$node->safe_psql('postgres', q{INSERT INTO src VALUES (16, NULL, 1)});
my ($p_failed) = fail_pipeline('p');
fail_pipeline('bad');
my $bad_failures = 1;
my $p_ok = 2;

my @raw = etl_log_lines($off, 'json');
my @lines;
my $invalid = 0;
for my $l (@raw)
{
	my $obj = eval { decode_json($l) };
	if (ref $obj eq 'HASH') { push @lines, { %$obj, _raw => $l }; }
	else { $invalid++; diag("not a JSON object: $l"); }
}
cmp_ok(scalar(@raw), '>=', 20, 'etl.log_format = json: the runs wrote log lines');
is($invalid, 0, 'every etl log line is a JSON object');

my @missing;
for my $l (@lines)
{
	for my $k (qw(ts level pipeline run_id stage event rows duration_ms attempt))
	{
		push @missing, "$k in $l->{_raw}" unless exists $l->{$k};
	}
}
is_deeply(\@missing, [], 'every line has ts, level, pipeline, run_id, stage, event, rows, duration_ms, attempt');
is_deeply([ grep { $_->{ts} !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/ } @lines ], [],
	'ts is an ISO 8601 UTC timestamp');
is_deeply([ grep { $_->{level} !~ /^(info|warning|error)$/
	  || $_->{stage} !~ /^(run|extract|check|load)$/
	  || $_->{event} !~ /^(stage_start|stage_complete|error|skipped)$/ } @lines ], [],
	'levels, stages and events are from their lists');

sub events_of
{
	my ($run_id) = @_;
	return grep { $_->{run_id} == $run_id } @lines;
}

sub stage_events
{
	my ($run_id) = @_;
	return [ map { "$_->{stage} $_->{event}" } events_of($run_id) ];
}

sub complete_line
{
	my ($run_id, $stage) = @_;
	my @l = grep { $_->{stage} eq $stage && $_->{event} eq 'stage_complete' } events_of($run_id);
	return $l[0];
}

for my $r ($p1, $p2)
{
	my $id = $r->{run_id};
	is_deeply(stage_events($id),
		[ 'run stage_start', 'extract stage_start', 'extract stage_complete',
		  'check stage_start', 'check stage_complete', 'load stage_start',
		  'load stage_complete', 'run stage_complete' ],
		"run $id with a check: start and completion of run, extract, check and load, in order");
	is_deeply([ map { "$_->{pipeline} $_->{level} $_->{attempt}" } events_of($id) ],
		[ ('p info 1') x 8 ], "run $id: pipeline, level info and attempt 1 on each line");
	is(complete_line($id, 'run')->{rows}, $r->{rows_extracted}, "run $id: the run's rows are the rows extracted");
	is(complete_line($id, 'extract')->{rows}, $r->{rows_extracted}, "run $id: extract's rows are those etl_run returned");
	is(complete_line($id, 'check')->{rows}, $r->{rows_extracted}, "run $id: the check looked at every row");
	is(complete_line($id, 'load')->{rows},
		$r->{rows_inserted} + $r->{rows_updated} + $r->{rows_deleted},
		"run $id: load's rows are the rows written");
	my @bad_ms = grep {
		my ($ms) = $_->{_raw} =~ /"duration_ms": ([^,}]+)[,}]/;
		$_->{event} eq 'stage_complete' && !(defined $ms && $ms =~ $num_re && $ms >= 0)
	} events_of($id);
	is(scalar(@bad_ms), 0, "run $id: duration_ms of each completed stage is a JSON number >= 0");
	is_deeply([ map { $_->{duration_ms} } grep { $_->{event} eq 'stage_start' } events_of($id) ],
		[ (undef) x 4 ], "run $id: a stage start has no duration");
}
is($p1->{rows_extracted}, 10, 'the first run extracted the 10 source rows');

is_deeply(stage_events($ts1->{run_id}),
	[ 'run stage_start', 'extract stage_start', 'extract stage_complete',
	  'load stage_start', 'load stage_complete', 'run stage_complete' ],
	'a pipeline without checks logs no check stage');
is(complete_line($ts1->{run_id}, 'run')->{rows}, $ts1->{rows_extracted},
	'its run line has the rows extracted');
my $ts_extract_rows = complete_line($ts1->{run_id}, 'extract')->{rows};
ok(!defined($ts_extract_rows) || $ts_extract_rows == $ts1->{rows_extracted},
	'its extract line has the rows extracted or null (counted while loading)');

is_deeply([ map { $_->{pipeline} } events_of($w1->{run_id}) ], [ ($weird) x 6 ],
	'a pipeline name with a quote and a backslash is escaped in JSON');

my @err = grep { $_->{event} eq 'error' } events_of($p_failed);
is(scalar(@err), 1, 'a failed run logs one error line');
is($err[0]{level}, 'error', 'at level error');
is($err[0]{sqlstate}, '23514', 'with the SQLSTATE of the failed check');
like($err[0]{error}, qr/check "p_v_not_null" failed/, 'and its message');
is($err[0]{stage}, 'check', 'in the stage that failed');
is(scalar(grep { $_->{stage} eq 'run' && $_->{event} eq 'stage_complete' } events_of($p_failed)),
	0, 'a failed run does not log the completion of the run');

# text: logfmt lines "etl: ts=... level=..."
$node->safe_psql('postgres', q{
LOAD 'etl_ext';
ALTER SYSTEM SET etl.log_format = 'text';
SELECT pg_reload_conf();});
$node->poll_query_until('postgres', q{SELECT current_setting('etl.log_format') = 'text'})
  or die 'etl.log_format = text was not loaded';
$node->safe_psql('postgres', q{UPDATE src SET v = 0 WHERE v IS NULL});
$off = log_offset();
my $p3 = run_pipeline('p');
$p_ok++;
$node->safe_psql('postgres', q{INSERT INTO wsrc VALUES (6, 6)});
my $w2 = run_pipeline($weird);
fail_pipeline('bad');
$bad_failures++;
my @text = etl_log_lines($off, 'text');
cmp_ok(scalar(@text), '>=', 15, 'etl.log_format = text: the runs wrote etl: lines');
is_deeply([ grep { !/^ts=\d{4}-\d\d-\d\dT[\d:.]+Z level=\w+ pipeline=/ } @text ], [],
	'each starts with ts=, level=, pipeline=');
my @parsed = map { parse_logfmt($_) } @text;
is(scalar(grep { !defined } @parsed), 0, 'each is entirely logfmt key=value pairs');
@parsed = grep { defined } @parsed;
my ($p3_run) = grep { $_->{run_id} == $p3->{run_id} && $_->{stage} eq 'run' && $_->{event} eq 'stage_complete' } @parsed;
ok($p3_run, 'the completion of the run is logged');
is($p3_run->{rows}, $p3->{rows_extracted}, 'with its rows');
like($p3_run->{duration_ms}, $num_re, 'and its duration');
is($p3_run->{level} . ' ' . $p3_run->{attempt} . ' ' . $p3_run->{pipeline}, 'info 1 p', 'level, attempt, pipeline');
is_deeply([ sort map { $_->{pipeline} } grep { $_->{run_id} == $w2->{run_id} } @parsed ],
	[ ($weird) x 6 ], 'a quoted pipeline name reads back as it is');
ok((grep { /pipeline="we\\"ird\\\\name" / } @text), 'quoted and escaped as pipeline="we\"ird\\\\name"');
my ($text_err) = grep { $_->{event} eq 'error' } @parsed;
is(join(' ', map { $text_err->{$_} // '' } qw(level pipeline stage sqlstate error)),
	'error bad check 23514 check "bad_v_not_null" failed', 'a failure: level, stage, sqlstate, error');
is(scalar(etl_log_lines($off, 'json')), 0, 'no JSON line in text format');

# etl.log_min_messages = warning: a successful run writes nothing, a failure
# its error line; off: nothing at all
$node->safe_psql('postgres', q{
LOAD 'etl_ext';
ALTER SYSTEM SET etl.log_min_messages = 'warning';
SELECT pg_reload_conf();});
$node->poll_query_until('postgres', q{SELECT current_setting('etl.log_min_messages') = 'warning'})
  or die 'etl.log_min_messages = warning was not loaded';
$off = log_offset();
$node->safe_psql('postgres', q{INSERT INTO src VALUES (17, 17, 2)});
run_pipeline('p');
$p_ok++;
fail_pipeline('bad');
$bad_failures++;
@text = etl_log_lines($off, 'text');
is(scalar(@text), 1, 'etl.log_min_messages = warning: only one line');
like($text[0] // '', qr/level=error pipeline=bad .*event=error/, 'the error of the failed run');

$node->safe_psql('postgres', q{
LOAD 'etl_ext';
ALTER SYSTEM SET etl.log_min_messages = 'off';
SELECT pg_reload_conf();});
$node->poll_query_until('postgres', q{SELECT current_setting('etl.log_min_messages') = 'off'})
  or die 'etl.log_min_messages = off was not loaded';
$off = log_offset();
$node->safe_psql('postgres', q{INSERT INTO src VALUES (18, 18, 1)});
my $p_last = run_pipeline('p');
$p_ok++;
fail_pipeline('bad');
$bad_failures++;
is(scalar(etl_log_lines($off, 'text')) + scalar(etl_log_lines($off, 'json')), 0,
	'etl.log_min_messages = off: no etl line, successful or failed run');

$node->safe_psql('postgres', q{
LOAD 'etl_ext';
ALTER SYSTEM RESET etl.log_format;
ALTER SYSTEM RESET etl.log_min_messages;
SELECT pg_reload_conf();});
$node->poll_query_until('postgres', q{
SELECT current_setting('etl.log_format') = 'json'
   AND coalesce(nullif(current_setting('etl.log_min_messages', true), ''), 'info') = 'info'})
  or die 'the settings were not reset';

#
# 2. Alerts on etl_events
#

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN etl_events');

# events(): the notifications the listener has received, decoded; asks
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
			my $payload = $1;
			my $ev = eval { decode_json($payload) };
			push @ev, $ev // { invalid => $payload };
		}
		last if $want && @ev >= $want;
		select(undef, undef, undef, 0.1);
	}
	return @ev;
}

$node->safe_psql('postgres', q{
CREATE TABLE asrc (id int PRIMARY KEY, v int);
CREATE TABLE adst (id int PRIMARY KEY, v int);
INSERT INTO asrc VALUES (1, 1), (2, NULL);
SELECT etl_create_pipeline('a3', 'asrc', 'adst', mode => 'serial', watermark_column => 'id',
    max_attempts => 1, alert_after_failures => 3);
SELECT etl_add_check('a3', 'not_null', 'v');
});
my @ev = events(0);
is(scalar(@ev), 0, 'nothing is announced before any run');

fail_pipeline('a3');
@ev = events(0);
is(scalar(@ev), 0, 'alert_after_failures => 3: the first failure is not announced');
fail_pipeline('a3', q{BEGIN; SELECT * FROM etl_run('a3'); ROLLBACK;});
@ev = events(0);
is(scalar(@ev), 0, 'nor the second');
my ($a3, $a3_err) = fail_pipeline('a3');
@ev = events(1);
is(scalar(@ev), 1, 'the third failure in a row is announced, once');
my $e = $ev[0] // {};
is($e->{event}, 'run_failed', 'as run_failed');
is($e->{pipeline}, 'a3', 'with the pipeline');
is($e->{run_id}, $a3, 'the run, although its transaction rolled back');
is($e->{sqlstate}, '23514', 'the SQLSTATE');
like($e->{error} // '', qr/check "a3_v_not_null" failed/, 'the error');
is($e->{consecutive_failures}, 3, 'consecutive_failures 3');
is($e->{alert_after_failures}, 3, 'alert_after_failures 3');
is_deeply([ map { "$_->{check} $_->{severity} $_->{failing_rows}" } @{ $e->{failed_checks} // [] } ],
	[ 'a3_v_not_null critical 1' ], 'and the failed check with its failing rows');
like($a3_err, qr/run $a3 of pipeline "a3" failed/, 'the caller got the error of the same run');

is($node->safe_psql('postgres', q{
SELECT last_status || ' ' || consecutive_failures || ' ' || last_error FROM etl.status WHERE pipeline = 'a3'}),
	'failed 3 check "a3_v_not_null" failed', 'etl.status: 3 consecutive failures and the last error');

my ($a4) = fail_pipeline('a3');
@ev = events(1);
is_deeply([ map { "$_->{event} $_->{run_id} $_->{consecutive_failures}" } @ev ],
	[ "run_failed $a4 4" ], 'each further failure is announced');

$node->safe_psql('postgres', q{UPDATE asrc SET v = 0 WHERE v IS NULL});
run_pipeline('a3');
is($node->safe_psql('postgres', q{
SELECT last_status || ' ' || consecutive_failures FROM etl.status WHERE pipeline = 'a3'}),
	'succeeded 0', 'a success ends the series of failures');
@ev = events(0);
is(scalar(@ev), 0, 'and announces nothing');

my ($b_next) = fail_pipeline('bad');
$bad_failures++;
@ev = events(1);
is_deeply([ map { "$_->{event} $_->{pipeline} $_->{run_id} $_->{consecutive_failures} $_->{alert_after_failures}" } @ev ],
	[ "run_failed bad $b_next $bad_failures 1" ],
	'by default (alert_after_failures 1) every failure is announced, with the count of failures in a row');

# a warning check that fails: the run loads and announces check_failed at
# commit, not when the caller rolls back
$node->safe_psql('postgres', q{
CREATE TABLE csrc (id int PRIMARY KEY, v int);
CREATE TABLE cdst (id int PRIMARY KEY, v int);
INSERT INTO csrc VALUES (1, NULL), (2, 2), (3, NULL);
SELECT etl_create_pipeline('w', 'csrc', 'cdst', mode => 'serial', watermark_column => 'id', max_attempts => 1);
SELECT etl_add_check('w', 'not_null', 'v', severity => 'warning');
});
$node->safe_psql('postgres', q{BEGIN; SELECT etl_run('w'); ROLLBACK;});
@ev = events(0);
is(scalar(@ev), 0, 'a warning check failing in a run rolled back by its caller announces nothing');
my $wr = run_pipeline('w');
is($wr->{rows_inserted}, 3, 'a warning check does not stop the load');
@ev = events(1);
is(scalar(@ev), 1, 'the committed run announces one event');
$e = $ev[0] // {};
is("$e->{event} $e->{pipeline} $e->{run_id}", "check_failed w $wr->{run_id}", 'check_failed, with pipeline and run');
is_deeply([ map { "$_->{check} $_->{severity} $_->{failing_rows}" } @{ $e->{failed_checks} // [] } ],
	[ 'w_v_not_null warning 2' ], 'its failed check: name, severity warning, failing rows');
ok(exists $e->{at}, 'and when');
$listener->quit;

#
# 3. etl_metrics(): the Prometheus text exposition format
#

# parse_exposition(text): checks the text against the exposition format
# 0.0.4 and returns { families => {name => type}, samples => [...], errors }
sub parse_labels
{
	my ($s) = @_;
	my %l;
	while ($s ne '')
	{
		$s =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//
		  or return (undef, "bad label syntax at: $s");
		my ($k, $v) = ($1, $2);
		return (undef, "label $k twice") if exists $l{$k};
		$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
		$l{$k} = $v;
	}
	return (\%l, undef);
}

sub parse_exposition
{
	my ($text) = @_;
	my (%type, %help, @samples, @errors, %seen_family, %series, $current);
	my $n = 0;
	for my $line (split /\n/, $text)
	{
		$n++;
		next if $line =~ /^\s*$/;
		if ($line =~ /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/)
		{
			my ($what, $name, $rest) = ($1, $2, $3);
			if ($what eq 'TYPE')
			{
				push @errors, "line $n: second TYPE for $name" if exists $type{$name};
				push @errors, "line $n: TYPE of $name after its samples" if $seen_family{$name};
				push @errors, "line $n: unknown type $rest"
				  unless $rest =~ /^(counter|gauge|histogram|summary|untyped)$/;
				$type{$name} = $rest;
			}
			else
			{
				push @errors, "line $n: bad escape in HELP" if $rest =~ /\\[^\\n]/;
				$help{$name} = $rest;
			}
			next;
		}
		next if $line =~ /^#/;
		my ($name, $labels, $value) =
		  $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/
		  or do { push @errors, "line $n: not a sample: $line"; next };
		my ($l, $why) = parse_labels($labels // '');
		if (!$l) { push @errors, "line $n: $why"; next; }
		push @errors, "line $n: bad value $value"
		  unless $value =~ $num_re || $value =~ /^(NaN|[+-]Inf)$/;
		# the family: the name itself, or a histogram's or summary's
		my ($family, $suffix) = ($name, '');
		my ($base, $part) = $name =~ /^(.*)(_bucket|_sum|_count)$/;
		if (!exists $type{$name} && defined $base && exists $type{$base}
			&& ($type{$base} eq 'histogram'
				|| ($type{$base} eq 'summary' && $part ne '_bucket')))
		{
			($family, $suffix) = ($base, $part);
		}
		if (!exists $type{$family})
		{
			push @errors, "line $n: no TYPE line before $name";
			next;
		}
		if (defined $current && $current ne $family && $seen_family{$family})
		{
			push @errors, "line $n: the samples of $family are not together";
		}
		$current = $family;
		$seen_family{$family} = 1;
		push @errors, "line $n: counter $family does not end in _total"
		  if $type{$family} eq 'counter' && $family !~ /_total$/;
		my $key = $name . $json->encode($l);
		push @errors, "line $n: series $key twice" if $series{$key}++;
		push @samples, { name => $name, family => $family, suffix => $suffix,
			labels => $l, value => $value };
	}

	# histograms: per label set, buckets with increasing le up to +Inf,
	# counts that never decrease, +Inf = _count, and a _sum
	for my $family (grep { $type{$_} eq 'histogram' } keys %type)
	{
		my %sets;
		for my $s (grep { $_->{family} eq $family } @samples)
		{
			my %l = %{ $s->{labels} };
			my $le = delete $l{le};
			my $set = $sets{ $json->encode(\%l) } //= { buckets => [] };
			if ($s->{suffix} eq '_bucket')
			{
				if (defined $le) { push @{ $set->{buckets} }, [ $le, $s->{value} ]; }
				else { push @errors, "$family: a bucket without le"; }
			}
			elsif ($s->{suffix} eq '_sum' || $s->{suffix} eq '_count')
			{
				push @errors, "$family$s->{suffix}: le on $s->{suffix}" if defined $le;
				$set->{ $s->{suffix} } = $s->{value};
			}
			else { push @errors, "$family: a sample without _bucket, _sum or _count"; }
		}
		while (my ($set, $h) = each %sets)
		{
			my @b = @{ $h->{buckets} };
			if (!@b || $b[-1][0] ne '+Inf')
			{
				push @errors, "$family $set: the last bucket is not le=\"+Inf\"";
				next;
			}
			for my $i (1 .. $#b)
			{
				my ($prev, $cur) = ($b[ $i - 1 ], $b[$i]);
				push @errors, "$family $set: le $cur->[0] does not increase"
				  unless $cur->[0] eq '+Inf' || ($prev->[0] ne '+Inf' && $cur->[0] > $prev->[0]);
				push @errors, "$family $set: bucket count decreases at le=$cur->[0]"
				  if $cur->[1] < $prev->[1];
			}
			push @errors, "$family $set: no _count" unless defined $h->{_count};
			push @errors, "$family $set: no _sum" unless defined $h->{_sum};
			push @errors, "$family $set: +Inf bucket $b[-1][1] is not _count $h->{_count}"
			  if defined $h->{_count} && $b[-1][1] != $h->{_count};
		}
	}
	return { types => \%type, help => \%help, samples => \@samples, errors => \@errors };
}

# value(parsed, name, labels): the value of one series (undef if absent)
sub value
{
	my ($m, $name, %labels) = @_;
	my $want = $json->encode(\%labels);
	my @v = map { $_->{value} } grep {
		$_->{name} eq $name && $json->encode($_->{labels}) eq $want
	} @{ $m->{samples} };
	return $v[0];
}

# the parser finds what it must
{
	my $bad = parse_exposition(join "\n",
		'etl_x_total{a="1"} 1',
		'# TYPE etl_y counter',
		'etl_y 1',
		'# TYPE etl_h histogram',
		'etl_h_bucket{le="1"} 2',
		'etl_h_bucket{le="0.5"} 1',
		'etl_h_bucket{le="+Inf"} 3',
		'etl_h_count 4',
		'etl_z{a="x\\q"} 1',
		'');
	my $errors = join "\n", @{ $bad->{errors} };
	like($errors, qr/no TYPE line before etl_x_total/, 'self-test: a sample without TYPE is found');
	like($errors, qr/counter etl_y does not end in _total/, 'self-test: a counter not ending in _total');
	like($errors, qr/le 0.5 does not increase/, 'self-test: buckets out of order');
	like($errors, qr/bucket count decreases/, 'self-test: decreasing bucket counts');
	like($errors, qr/\+Inf bucket 3 is not _count 4/, 'self-test: +Inf different from _count');
	like($errors, qr/no _sum/, 'self-test: a histogram without _sum');
	like($errors, qr/bad label syntax/, 'self-test: a bad escape in a label value');
}

my $prom = $node->safe_psql('postgres', q{SELECT etl_metrics()});
my $m = parse_exposition($prom);
is_deeply($m->{errors}, [], 'etl_metrics() is valid exposition format: TYPE before samples, counters _total, histograms whole');
is_deeply([ sort keys %{ $m->{types} } ],
	[ qw(etl_check_failures_total etl_dead_letters_pending etl_last_run_duration_seconds
		etl_last_success_timestamp_seconds etl_rows_total etl_run_duration_seconds etl_runs_total
		etl_watermark_lag_seconds) ], 'the eight metric families');
is($m->{types}{etl_run_duration_seconds}, 'histogram', 'etl_run_duration_seconds is a histogram');
ok(index($prom, 'pipeline="we\\"ird\\\\name"') >= 0,
	'a label value with a quote and a backslash is escaped: pipeline="we\"ird\\\\name"');
is(value($m, 'etl_dead_letters_pending', pipeline => $weird), 1,
	'and reads back as the name (its pending dead letter)');

is(value($m, 'etl_runs_total', pipeline => 'p', status => 'succeeded'), $p_ok,
	"etl_runs_total{pipeline=\"p\",status=\"succeeded\"} is the $p_ok successful runs");
is(value($m, 'etl_runs_total', pipeline => 'p', status => 'failed'), 1, 'status="failed" the failed one');
is(value($m, 'etl_runs_total', pipeline => 'bad', status => 'failed'), $bad_failures,
	"and $bad_failures for a pipeline that always fails");
is(value($m, 'etl_runs_total', pipeline => 'bad', status => 'succeeded'), undef, 'which has no succeeded series');

my %runs = map { my @f = split /\|/; ("$f[0] $f[1]" => $f[2]) } split /\n/, $node->safe_psql('postgres', q{
SELECT p.name, k.kind, k.n
  FROM etl.pipelines p,
       LATERAL (SELECT sum(rows_extracted) e, sum(rows_inserted) i, sum(rows_updated) u,
                       sum(rows_deleted) d, sum(rows_unchanged) c, sum(rows_rejected) r
                  FROM etl.runs WHERE pipeline_id = p.pipeline_id AND status IN ('succeeded', 'failed')) s,
       LATERAL (VALUES ('extracted', s.e), ('inserted', s.i), ('updated', s.u),
                       ('deleted', s.d), ('unchanged', s.c), ('rejected', s.r)) k(kind, n)
 WHERE s.e IS NOT NULL});
my @rows_diff;
while (my ($k, $n) = each %runs)
{
	my ($pipeline, $kind) = split / /, $k, 2;
	my $v = value($m, 'etl_rows_total', pipeline => $pipeline, kind => $kind);
	push @rows_diff, "$k: $n in etl.runs, " . ($v // 'none') unless defined $v && $v == $n;
}
cmp_ok(scalar(keys %runs), '>=', 36, 'etl.runs has rows of six pipelines');
is_deeply(\@rows_diff, [], 'etl_rows_total of each pipeline and kind is the sum in etl.runs');
is(value($m, 'etl_rows_total', pipeline => 'p', kind => 'inserted'),
	$node->safe_psql('postgres', q{SELECT sum(rows_inserted) FROM etl.runs WHERE pipeline = 'p'}),
	'etl_rows_total{kind="inserted"} of p is the sum of its rows_inserted');
is(value($m, 'etl_rows_total', pipeline => $weird, kind => 'rejected'), 1, 'the rejected row is counted');

is(value($m, 'etl_check_failures_total', pipeline => 'p', check => 'p_v_not_null'), 1,
	'etl_check_failures_total: the failed check of p');
is(value($m, 'etl_check_failures_total', pipeline => 'bad', check => 'bad_v_not_null'), $bad_failures,
	'one per failed run of bad');
is(value($m, 'etl_check_failures_total', pipeline => 'a3', check => 'a3_v_not_null'), 4, 'the 4 of a3');
is(value($m, 'etl_check_failures_total', pipeline => 'w', check => 'w_v_not_null'), 1,
	'the warning check of the committed run of w (not the rolled back one)');

my ($n_runs, $secs) = split /\|/, $node->safe_psql('postgres', q{
SELECT count(*), sum(extract(epoch FROM duration)) FROM etl.runs WHERE pipeline = 'p' AND status IN ('succeeded', 'failed')});
is(value($m, 'etl_run_duration_seconds_count', pipeline => 'p'), $n_runs, 'the histogram counts every run of p');
ok(abs(value($m, 'etl_run_duration_seconds_sum', pipeline => 'p') - $secs) < 1e-6, 'its _sum is their duration');
is(value($m, 'etl_run_duration_seconds_bucket', pipeline => 'p', le => '+Inf'), $n_runs, 'le="+Inf" counts them all');
my ($last_secs, $last_at) = split /\|/, $node->safe_psql('postgres', qq{
SELECT extract(epoch FROM duration), extract(epoch FROM finished_at) FROM etl.runs WHERE run_id = $p_last->{run_id}});
ok(abs(value($m, 'etl_last_run_duration_seconds', pipeline => 'p') - $last_secs) < 1e-6,
	'etl_last_run_duration_seconds is the duration of the last run');
ok(abs(value($m, 'etl_last_success_timestamp_seconds', pipeline => 'p') - $last_at) < 1e-6,
	'etl_last_success_timestamp_seconds when it finished');
is(value($m, 'etl_last_success_timestamp_seconds', pipeline => 'bad'), undef, 'none for a pipeline that never succeeded');

$node->safe_psql('postgres', q{INSERT INTO tsrc VALUES (3, '2024-01-01 00:02:00+00')});
$prom = $node->safe_psql('postgres', q{SELECT etl_metrics()});
$m = parse_exposition($prom);
is(value($m, 'etl_watermark_lag_seconds', pipeline => 'ts'), 90,
	'etl_watermark_lag_seconds: the newest source row is 90 s past the watermark');
is(value($m, 'etl_watermark_lag_seconds', pipeline => 'p'), undef, 'only for timestamp pipelines');

# JSON: the same metrics
my $mj = eval { decode_json($node->safe_psql('postgres', q{SELECT etl_metrics('json')})) };
ok(ref $mj eq 'HASH' && ref $mj->{metrics} eq 'ARRAY', q{etl_metrics('json') is a JSON object with metrics});
my (%jtypes, %jcount);
for my $x (@{ $mj->{metrics} // [] })
{
	$jtypes{ $x->{name} } = $x->{type};
	$jcount{ $x->{name} } = scalar @{ $x->{samples} };
}
is_deeply(\%jtypes, $m->{types}, 'with the same names and types');
my %tcount;
$tcount{ $_->{family} }++ for @{ $m->{samples} };
is_deeply(\%jcount, \%tcount, 'and as many samples of each');
my ($jrun) = grep { $_->{name} eq 'etl_runs_total' } @{ $mj->{metrics} // [] };
is_deeply([ map { $_->{value} } grep { $_->{labels}{pipeline} eq 'p' && $_->{labels}{status} eq 'succeeded' } @{ $jrun->{samples} // [] } ],
	[ $p_ok ], 'and the same values');

#
# 4. prometheus-postgres-exporter with contrib/postgres_exporter.yml
#

my $exporter;
END
{
	local $?;
	$exporter->kill_kill if $exporter;
}

SKIP:
{
	ok(-x $exporter_bin, "$exporter_bin is installed") or skip 'no exporter', 1;
	ok(-r $exporter_yml, "$exporter_yml is there (ETL_CONTRIB names the contrib directory)")
	  or skip 'no queries file', 1;

	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $user = getpwuid($>);
	my ($out, $err) = ('', '');
	{
		local $ENV{DATA_SOURCE_NAME} = sprintf(
			'host=%s port=%d user=%s dbname=postgres sslmode=disable',
			$node->host, $node->port, $user);
		$exporter = IPC::Run::start(
			[ $exporter_bin, "--extend.query-path=$exporter_yml",
			  "--web.listen-address=127.0.0.1:$port",
			  '--disable-default-metrics', '--disable-settings-metrics',
			  '--no-collector.database', '--no-collector.bgwriter' ],
			'<', \undef, '>', \$out, '2>', \$err);
	}
	my $http = HTTP::Tiny->new(timeout => 5);
	my $page;
	for (1 .. 300)
	{
		my $res = $http->get("http://127.0.0.1:$port/metrics");
		if ($res->{success} && $res->{content} =~ /^pg_up 1$/m)
		{
			$page = $res->{content};
			last;
		}
		last unless $exporter->pumpable;
		$exporter->pump_nb;
		select(undef, undef, undef, 0.1);
	}
	ok(defined $page, 'the exporter serves /metrics and reaches the server') or do {
		$exporter->pump_nb if $exporter->pumpable;
		diag("exporter output: $out$err");
		skip 'exporter down', 1;
	};
	like($page, qr/^pg_exporter_user_queries_load_error\{[^}]*\} 0$/m, 'it loaded the queries file');
	is_deeply([ $page =~ /^(pg_exporter_last_scrape_error \S+)$/m ], [ 'pg_exporter_last_scrape_error 0' ],
		'and the last scrape ran every query without error');

	# the same series as etl_metrics(), but for the label server="host:port"
	$prom = $node->safe_psql('postgres', q{SELECT etl_metrics()});
	$page = $http->get("http://127.0.0.1:$port/metrics")->{content};
	my $etl_page = join "\n", grep { /^(# (HELP|TYPE) )?etl_/ } split /\n/, $page;
	my $x = parse_exposition($etl_page);
	is_deeply($x->{errors}, [], 'the exporter\'s etl_ series are valid exposition format');
	$m = parse_exposition($prom);
	is_deeply($x->{types}, $m->{types}, 'the exporter has the same families with the same types, histogram included');
	my (%want, %got);
	my $key = sub {
		my ($s) = @_;
		my %l = %{ $s->{labels} };
		$l{le} = $l{le} eq '+Inf' ? '+Inf' : 0 + $l{le} if exists $l{le};
		return $s->{name} . $json->encode(\%l);
	};
	$want{ $key->($_) } = $_->{value} for @{ $m->{samples} };
	my @no_server;
	for my $s (@{ $x->{samples} })
	{
		push @no_server, $s->{name} unless defined delete $s->{labels}{server};
		$got{ $key->($s) } = $s->{value};
	}
	is_deeply(\@no_server, [], 'the exporter labels each series with server');
	is_deeply([ sort keys %got ], [ sort keys %want ], 'and has the series of etl_metrics(), no more, no fewer');
	my @diff = map { "$_: $want{$_} vs " . ($got{$_} // 'none') }
	  grep { !defined $got{$_} || abs($got{$_} - $want{$_}) > 1e-12 * (1 + abs($want{$_})) } sort keys %want;
	is_deeply(\@diff, [], 'with the same values');
	like($page, qr/^etl_runs_total\{pipeline="p",server="[^"]+",status="succeeded"\} $p_ok$/m,
		"etl_runs_total{pipeline=\"p\",status=\"succeeded\"} $p_ok");
	like($page, qr/^etl_dead_letters_pending\{pipeline="we\\"ird\\\\name",server="[^"]+"\} 1$/m,
		'a label value with a quote and a backslash escaped');
	like($page, qr/^etl_run_duration_seconds_bucket\{pipeline="p",server="[^"]+",le="\+Inf"\} $n_runs$/m,
		'the histogram of p with its +Inf bucket');
	like($page, qr/^etl_watermark_lag_seconds\{pipeline="ts",server="[^"]+"\} 90$/m, 'the watermark lag');

	$exporter->kill_kill;
	$exporter = undef;
}

#
# 5. OpenLineage
#

# validate(event): runs validate.py on the event; returns (ok, errors)
sub validate
{
	my ($event) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'python3', $validator, $ol_schema ], '<', \$event, '>', \$out, '2>', \$err);
	return ($ok, $err);
}

my $ok_id = $p_last->{run_id};
my $complete_text = $node->safe_psql('postgres', "SELECT etl_openlineage($ok_id)");
my $fail_text = $node->safe_psql('postgres', "SELECT etl_openlineage($p_failed)");
my $start_text = $node->safe_psql('postgres', "SELECT etl_openlineage($ok_id, 'START')");
my ($valid, $errors) = validate($complete_text);
ok($valid, 'the event of a succeeded run is a valid RunEvent') or diag($errors);
($valid, $errors) = validate($fail_text);
ok($valid, 'the event of a failed run too') or diag($errors);
($valid, $errors) = validate($start_text);
ok($valid, 'and a START event') or diag($errors);

my $complete = decode_json($complete_text);
my $failed = decode_json($fail_text);
my $start = decode_json($start_text);

# the validator rejects what it must
{
	my %bad = (
		'runId removed' => sub { delete $_[0]{run}{runId} },
		'a facet without _producer' => sub { delete $_[0]{outputs}[0]{facets}{schema}{_producer} },
		'an eventType not in the list' => sub { $_[0]{eventType} = 'DONE' },
		'an eventTime that is no date' => sub { $_[0]{eventTime} = '2024-02-30T10:00:00Z' },
		'a runId that is no UUID' => sub { $_[0]{run}{runId} = 'run-42' },
		'an http:// producer' => sub { $_[0]{producer} = 'http://example.com/p' },
		'a transformation without type' => sub {
			delete $_[0]{outputs}[0]{facets}{columnLineage}{fields}{id}{inputFields}[0]{transformations}[0]{type};
		},
		'a dataset without name' => sub { delete $_[0]{inputs}[0]{name} },
		'a rowCount that is a string' => sub {
			$_[0]{outputs}[0]{outputFacets}{outputStatistics}{rowCount} = '10';
		},
		'an errorMessage without programmingLanguage' => sub {
			delete $_[0]{run}{facets}{errorMessage}{programmingLanguage};
		},
		'an assertion without success' => sub {
			delete $_[0]{inputs}[0]{inputFacets}{dataQualityAssertions}{assertions}[0]{success};
		});
	for my $case (sort keys %bad)
	{
		my $ev = decode_json($fail_text);
		$bad{$case}->($ev);
		($valid, $errors) = validate(encode_json($ev));
		ok(!$valid, "the validator rejects $case") or diag('accepted');
	}
}

is($complete->{eventType}, 'COMPLETE', 'a succeeded run: COMPLETE');
is($failed->{eventType}, 'FAIL', 'a failed run: FAIL');
is($start->{eventType}, 'START', 'event_type START');
is($start->{run}{runId}, $complete->{run}{runId}, 'START and COMPLETE of a run share its runId');
isnt($failed->{run}{runId}, $complete->{run}{runId}, 'another run has another runId');
is(decode_json($node->safe_psql('postgres', "SELECT etl_openlineage($ok_id)"))->{run}{runId},
	$complete->{run}{runId}, 'the runId of a run is stable');
like($failed->{run}{facets}{errorMessage}{message} // '', qr/check "p_v_not_null" failed.*23514/,
	'FAIL has errorMessage with the error and its SQLSTATE');
ok(!exists $complete->{run}{facets}{errorMessage}, 'COMPLETE has none');

my $db = 'postgres';
is($complete->{job}{name}, "$db.p", 'job.name is database.pipeline');
like($complete->{job}{namespace}, qr{^postgres://[^/]+:\d+$}, 'the namespace is postgres://host:port');
is($complete->{job}{namespace}, $complete->{inputs}[0]{namespace}, 'datasets share it');
is_deeply([ map { $_->{name} } @{ $complete->{inputs} } ], [ "$db.public.src", "$db.public.dim" ],
	'inputs: the source, then the joined dimension table, as db.schema.table');
is_deeply([ map { $_->{name} } @{ $complete->{outputs} } ], ["$db.public.dst"], 'outputs: the target');
is($complete->{job}{facets}{sql}{query} // '', $node->safe_psql('postgres', q{SELECT transform FROM etl.pipelines WHERE name = 'p'}),
	'the sql job facet holds the transform');
is_deeply([ map { $_->{name} } @{ $complete->{outputs}[0]{facets}{schema}{fields} } ], [qw(id v doubled label)],
	'the schema facet lists the target columns in order');

my $lineage = $complete->{outputs}[0]{facets}{columnLineage}{fields} // {};
sub lineage_of
{
	my ($col) = @_;
	return join ', ', map {
		my $f = $_;
		"$f->{name}.$f->{field} " . join('/', map { "$_->{type} " . ($_->{subtype} // '') } @{ $f->{transformations} // [] })
	} @{ $lineage->{$col}{inputFields} // [] };
}
is_deeply([ sort keys %$lineage ], [qw(doubled id label v)], 'columnLineage has each target column');
is(lineage_of('id'), "$db.public.src.id DIRECT IDENTITY", 'a plain column: DIRECT IDENTITY from the source column');
is(lineage_of('v'), "$db.public.src.v DIRECT IDENTITY", 'another plain column');
is(lineage_of('label'), "$db.public.dim.label DIRECT IDENTITY", 'a column of the joined table: DIRECT from that table');
like(lineage_of('doubled'), qr/^\Q$db.public.src.v\E \w+ TRANSFORMATION$/,
	'an expression: from the column it computes on, as a TRANSFORMATION');
is(lineage_of('doubled'), "$db.public.src.v DIRECT TRANSFORMATION",
	'an expression is DIRECT TRANSFORMATION (OpenLineage 1-2-0: INDIRECT is for joins, filters, sorts)');

my $in = $failed->{inputs}[0]{inputFacets} // {};
is($in->{dataQualityMetrics}{rowCount}, 1, 'FAIL: dataQualityMetrics counts the rows of the batch');
is($in->{dataQualityMetrics}{columnMetrics}{v}{nullCount}, 1, 'and the null of the not_null check');
is_deeply([ map { "$_->{assertion} $_->{column} " . ($_->{success} ? 'true' : 'false') } @{ $in->{dataQualityAssertions}{assertions} // [] } ],
	[ 'not_null v false' ], 'dataQualityAssertions: the failed assertion');
is_deeply([ map { $_->{success} ? 'true' : 'false' } @{ $complete->{inputs}[0]{inputFacets}{dataQualityAssertions}{assertions} // [] } ],
	['true'], 'COMPLETE: the assertion held');
is($complete->{outputs}[0]{outputFacets}{outputStatistics}{rowCount},
	$p_last->{rows_inserted} + $p_last->{rows_updated} + $p_last->{rows_deleted},
	'outputStatistics: the rows written');
ok(!exists $start->{outputs}[0]{outputFacets}, 'START has no output statistics');
is($start->{eventTime},
	$node->safe_psql('postgres', qq{SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM etl.runs WHERE run_id = $ok_id}),
	'START happens when the run started');

$node->stop;
done_testing();
