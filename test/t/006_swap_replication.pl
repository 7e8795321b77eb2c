# Logical replication of partition_swap targets, with a real subscriber (a
# second cluster).  A swap writes a partition's rows into a staging table
# and attaches it in place of the partition: a publication of the target
# carries none of it (the subscriber would drift without an error), FOR ALL
# TABLES would carry inserts into a staging table the subscriber does not
# have (it would stop).  So a published target is refused for load
# partition_swap, when the pipeline is defined and by a run when the
# publication came later, and load merge, whose row changes replicate, is
# what to use: the subscriber equals the target after each of its runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->append_conf('postgresql.conf', qq{
log_line_prefix = '%m [%p] %e %q%a '
});
$pub->start;
my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->start;

$pub->safe_psql('postgres', q{
CREATE SCHEMA dw;
CREATE TABLE dw.sales (id int, sold_on date NOT NULL, amount numeric(10,2),
                       PRIMARY KEY (id, sold_on)) PARTITION BY RANGE (sold_on);
CREATE TABLE dw.sales_2024_01 PARTITION OF dw.sales FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE dw.sales_2024_02 PARTITION OF dw.sales FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE TABLE dw.sales_2024_03 PARTITION OF dw.sales FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
CREATE TABLE dw.swapped (LIKE dw.sales INCLUDING ALL) PARTITION BY RANGE (sold_on);
CREATE EXTENSION etl_ext;
CREATE TABLE sales (id int PRIMARY KEY, sold_on date NOT NULL, amount numeric(10,2),
                    at timestamptz NOT NULL);
INSERT INTO sales SELECT g, date '2024-01-01' + (g * 7 % 60), g, '2024-04-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 300) g;
CREATE PUBLICATION dw_sales FOR TABLE dw.sales WITH (publish_via_partition_root = true);
});
# the subscriber's copies are plain tables (the publication sends the rows
# as the root's)
$sub->safe_psql('postgres', q{
CREATE SCHEMA dw;
CREATE TABLE dw.sales (id int, sold_on date NOT NULL, amount numeric(10,2), PRIMARY KEY (id, sold_on));
CREATE TABLE dw.swapped (LIKE dw.sales INCLUDING ALL);
});
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', qq{CREATE SUBSCRIPTION dw_sales CONNECTION '$connstr' PUBLICATION dw_sales});
$sub->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')})
  or die 'the subscription did not sync';

# the rows of a table: how many, and the md5 of all of them in order
sub rows_of
{
	my ($node, $table) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT count(*) || ' rows, md5 ' || md5(string_agg(id || ' ' || sold_on || ' ' || amount, ',' ORDER BY id))
             FROM $table});
}

# wait for the subscriber, then compare it with the target row for row
sub subscriber_equals
{
	my ($table, $name) = @_;
	$pub->wait_for_catchup('dw_sales');
	my $target = rows_of($pub, $table);
	is(rows_of($sub, $table), $target, $name);
	return $target;
}

# 1. load partition_swap into the published target is refused
my ($stdout, $stderr) = ('', '');
my $rc = $pub->psql('postgres', q{
SELECT etl_create_pipeline('swap_published', 'sales', 'dw.sales', key => ARRAY['id'], watermark_column => 'at',
                           load => 'partition_swap')}, stdout => \$stdout, stderr => \$stderr);
isnt($rc, 0, 'a partition_swap pipeline into a published target is refused');
like($stderr, qr/ERROR:  load partition_swap cannot replicate target dw.sales: publication "dw_sales" publishes it \(FOR TABLE dw.sales\)/,
	'the error names the target and the publication');
like($stderr, qr/HINT:  Use load => 'merge' for a published target/, 'its hint says to use load merge');

# 2. load merge replicates: the subscriber equals the target after a first
#    load and after an increment that changes rows, moves some to another
#    partition and adds new ones
$pub->safe_psql('postgres', q{
SELECT etl_create_pipeline('merge', 'sales', 'dw.sales', key => ARRAY['id', 'sold_on'],
                           watermark_column => 'at', load => 'merge');
SELECT etl_run('merge');
});
my $first = subscriber_equals('dw.sales', 'after a first load by merge the subscriber equals the target');
is($pub->safe_psql('postgres', q{SELECT count(*) FROM dw.sales}), '300', 'the target has all 300 rows');
$pub->safe_psql('postgres', q{
UPDATE sales SET amount = amount + 1, at = '2024-05-01' WHERE id % 10 = 0;
INSERT INTO sales SELECT g, date '2024-03-01' + g % 20, g, '2024-05-01' FROM generate_series(301, 320) g;
SELECT etl_run('merge');
});
isnt(subscriber_equals('dw.sales', 'after an increment by merge the subscriber equals the target'),
	$first, 'the increment changed the target');

# 3. a partition_swap pipeline into a target published later: its runs
#    are refused, nothing changes, and the subscriber still equals it
$pub->safe_psql('postgres', q{
SELECT etl_create_pipeline('swap', 'sales', 'dw.swapped', key => ARRAY['id'], watermark_column => 'at',
                           load => 'partition_swap', options => '{"partition_interval": "1 month"}');
SELECT etl_run('swap');
ALTER PUBLICATION dw_sales ADD TABLE dw.swapped;
});
$sub->safe_psql('postgres', q{ALTER SUBSCRIPTION dw_sales REFRESH PUBLICATION});
$sub->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')})
  or die 'the subscription did not sync dw.swapped';
my $before = subscriber_equals('dw.swapped', 'the subscriber copied the swapped target once published');
$pub->safe_psql('postgres', q{UPDATE sales SET amount = amount + 1, at = '2024-06-01' WHERE id % 7 = 0});
$rc = $pub->psql('postgres', q{SELECT etl_run('swap')}, stdout => \$stdout, stderr => \$stderr);
isnt($rc, 0, 'a run of the partition_swap pipeline into the now published target fails');
like($stderr, qr/DETAIL:  load partition_swap cannot replicate target dw.swapped: publication "dw_sales" publishes it/,
	'it says why');
is($pub->safe_psql('postgres', q{
SELECT status || ' ' || sqlstate FROM etl.runs WHERE pipeline = 'swap' ORDER BY run_id DESC LIMIT 1}),
	'failed 0A000', 'the run is recorded as failed with 0A000');
is(subscriber_equals('dw.swapped', 'the subscriber still equals the target'), $before,
	'the target did not change');

# 4. FOR ALL TABLES (which would publish the staging tables): refused too,
#    and the subscription keeps working for the merge pipeline's changes
$pub->safe_psql('postgres', q{
ALTER PUBLICATION dw_sales DROP TABLE dw.swapped;
CREATE PUBLICATION everything FOR ALL TABLES;
});
$rc = $pub->psql('postgres', q{SELECT etl_run('swap')}, stdout => \$stdout, stderr => \$stderr);
isnt($rc, 0, 'with a FOR ALL TABLES publication the partition_swap run fails');
like($stderr, qr/publication "everything" publishes it \(FOR ALL TABLES\)/, 'it names the publication');
is($pub->safe_psql('postgres', q{
SELECT count(*) FROM pg_class WHERE relname LIKE '%etl_swap%' OR relname LIKE 'etl_batch%'}),
	'0', 'no staging table is left');
$pub->safe_psql('postgres', q{
UPDATE sales SET amount = amount + 1, at = '2024-07-01' WHERE id % 3 = 0;
SELECT etl_run('merge');
});
subscriber_equals('dw.sales', 'the merge pipeline still replicates: the subscriber equals the target');
is($sub->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL}),
	'1', 'the subscription is running');

$sub->stop;
$pub->stop;
done_testing();
