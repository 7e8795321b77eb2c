# No input crashes the server: every function of the extension (found
# through pg_depend, so that functions added later are called too) is called
# thousands of times with random arguments from a fixed seed -- NULLs, empty
# and huge strings, unicode, hostile names, negative and extreme numbers,
# NaN and infinities, malformed JSON, values of the wrong but castable type
# -- as an unprivileged role and as a superuser, each call in a savepoint
# (test/fuzz/etl_fuzz.sql).  A crash ends the session; an internal error
# (SQLSTATE class XX) or a call that takes more than 10 s (a stall) is
# reported with the call.  The procedures, which commit, are called on their
# own at the top level.  Afterwards the server log holds no crash, failed
# assertion or internal error.  ETL_FUZZ_ROUNDS (default 100) sets how many
# times each function is called in each role.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $here = dirname(abs_path(__FILE__));    # test/t
my $rounds = $ENV{ETL_FUZZ_ROUNDS} // 100;

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_line_prefix = '%m [%p] %e %q%a '
max_worker_processes = 8
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION etl_ext;
CREATE ROLE regress_fuzz_user;
});
$node->safe_psql('postgres', slurp_file("$here/../fuzz/etl_fuzz.sql"));
my $log_start = -s $node->logfile;

my $functions = $node->safe_psql('postgres', 'SELECT count(*) FROM fuzz.functions()');
cmp_ok($functions, '>=', 40, "the fuzzer found the extension's $functions functions");

# fuzz: runs fuzz.run as a role (or the superuser); returns (calls,
# classes, internal errors)
sub fuzz
{
	my ($role, $seed) = @_;
	my ($out, $err) = ('', '');
	my $set_role = $role eq 'superuser' ? 'RESET ROLE;' : "SET ROLE $role;";
	my $rc = $node->psql('postgres', qq{
SET lock_timeout = '5s';
SET statement_timeout = '300s';
SET client_min_messages = warning;
$set_role
SELECT calls, classes, array_to_string(internal_errors, E'\\n') FROM fuzz.run($seed, $rounds);
}, stdout => \$out, stderr => \$err);
	is($rc, 0, "the session of the fuzz as $role survives") or diag($err);
	my ($calls, $classes, $internal) = split(/\|/, $out, 3);
	return ($calls // 0, $classes // '', $internal // '');
}

for my $case (['regress_fuzz_user', 0.4242], ['superuser', 0.1717])
{
	my ($role, $seed) = @$case;
	my ($calls, $classes, $internal) = fuzz($role, $seed);
	cmp_ok($calls, '>=', $functions * $rounds, "as $role: $calls calls");
	note("as $role: calls by SQLSTATE class $classes");
	like($classes, qr/"00": \d+/, "as $role: some calls succeed");
	is($internal, '', "as $role: no internal error and no stall");
}

# the procedures commit, so they run at the top level: hostile arguments
# give errors, never a crash
for my $call (
	q{CALL etl_catch_up(NULL)},
	q{CALL etl_catch_up('')},
	q{CALL etl_catch_up(repeat('x', 100000))},
	q{CALL etl_catch_up('fz_f')},
	q{CALL etl_backfill(NULL, NULL, NULL, NULL)},
	q{CALL etl_backfill('fz_a', NULL, '2024-01-02', '1 hour')},
	q{CALL etl_backfill('fz_a', '2024-01-02', '2024-01-01', '1 hour')},
	q{CALL etl_backfill('fz_a', '-infinity', 'infinity', '1 hour')},
	q{CALL etl_backfill('fz_a', '2024-01-01', '2024-01-02', '-1 hour')},
	q{CALL etl_backfill('fz_a', '2024-01-01', '2024-01-02', '0')},
	q{CALL etl_backfill('fz_s', '1', '9223372036854775807', '9223372036854775807')},
	q{CALL etl_backfill('fz_s', '-9223372036854775808', '0', 'NaN')},
	q{CALL etl_backfill('fz_f', '1', '2', '1')})
{
	my ($out, $err) = ('', '');
	$node->psql('postgres',
		"SET client_min_messages = warning; SET statement_timeout = '60s'; $call",
		stdout => \$out, stderr => \$err);
	unlike($err, qr/server closed the connection|connection to server was lost/,
		"$call: no crash");
	unlike($err, qr/canceling statement due to statement timeout/, "$call: no stall");
	unlike($err, qr/\bXX\d{3}\b|internal error/, "$call: no internal error");
}

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server still answers');

# the server log: no crash, no failed assertion, no internal error
my $log = slurp_file($node->logfile, $log_start);
my @bad = grep { /terminated by signal|TRAP:|PANIC:| XX\d{3} / } split /\n/, $log;
is(scalar(@bad), 0, 'the server log shows no crash and no internal error')
  or diag(join("\n", @bad[0 .. ($#bad < 20 ? $#bad : 20)]));

$node->stop;
done_testing();
