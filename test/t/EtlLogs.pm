# EtlLogs: what the logs suite of make test (scripts/test.sh) needs to know
# about the server log of a TAP node.  The suite counts every "terminated
# by signal" line as a crash, but for the server processes a test kills on
# purpose, which the test lists next to the node's log with etl_killed().
package EtlLogs;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(etl_killed);

# etl_killed(node, pid): records that the test kills server process pid of
# node on purpose (appends it to <node's log file>.killed)
sub etl_killed
{
	my ($node, $pid) = @_;
	my $list = $node->logfile . '.killed';
	open(my $fh, '>>', $list) or die "cannot open $list: $!";
	print $fh "$pid\n";
	close($fh) or die "cannot close $list: $!";
	return;
}

1;
