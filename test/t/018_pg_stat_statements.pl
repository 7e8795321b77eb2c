# Checks of kind expression on a server with pg_stat_statements loaded: its
# hook after parse analysis reads the constants of each analysed query at
# their locations in the query's text.  etl_ext analyses an expression
# check over the batch's columns; every location of that tree must point
# into the text it analyses, or pg_stat_statements, normalizing that text,
# writes beyond its buffer and the server process crashes (as it did for
# the first check below when the columns were parsed from a text of their
# own).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pgss');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION etl_ext;
CREATE TABLE calls (at timestamptz);
CREATE FUNCTION note(text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.calls VALUES (now()); RETURN true; END$$;
CREATE DOMAIN noted AS text CHECK (public.note(VALUE));
CREATE TABLE s (id int PRIMARY KEY, total numeric, at timestamptz NOT NULL);
CREATE TABLE t (id int PRIMARY KEY, total numeric);
INSERT INTO s VALUES (1, 5, '2024-01-01'), (2, 2e6, '2024-01-02');
SELECT etl_create_pipeline('p', 's', 't', watermark_column => 'at') > 0;
});

# the expression that crashed a server process: a column, and a constant of
# a domain whose check runs a query
my ($rc, $out, $err) = $node->psql('postgres', q{
SELECT etl_add_check('p', 'expression', name => 'noted',
    params => '{"sql": "total IS NOT NULL AND ''{ok}''::public.noted[] IS NOT NULL"}');
});
is($rc, 0, 'an expression check with a column and a domain constant is added');
is($out, 'noted', 'its name is returned');
is($err, '', 'without an error');

is($node->safe_psql('postgres', q{
SELECT etl_add_check('p', 'expression', name => 'small',
                     params => '{"sql": "total < 1e7"}');
}), 'small', 'a second expression check is added');

# the checks run: both pass
is($node->safe_psql('postgres', q{
SELECT status || ' ' || rows_inserted FROM etl_run('p');
SELECT string_agg(check_name || ' ' || passed, ', ' ORDER BY check_name)
  FROM etl.check_results;
}), "succeeded 2\nnoted true, small true", 'the run evaluates both checks');

$node->stop;
done_testing();
