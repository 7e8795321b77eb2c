# Install-time trojans.  A non-superuser who may create objects in schema
# public plants look-alikes of what the install script names there —
# functions (the built-in ones of the names it calls, same signatures and
# parameter names), aggregates, every built-in operator of the usual names,
# domains named like types and casts to types named like built-in ones —
# each of which records that it ran and tries to make its author a
# superuser.  A superuser then installs etl_ext under search_path = public,
# pg_catalog (PostgreSQL runs an extension script with search_path set to
# the extension's schema and pg_temp, here pg_catalog, pg_temp: the session's
# path does not reach the script) and uses it under that path: nothing
# planted runs, and no object of the extension depends on a planted one.
# In other databases the same role first creates schema etl, or
# etl_internal, with objects in it: the installation is refused with 42P06
# and a hint, and leaves the schema as it was.
#
# Last, the API the installation created is the README's Functions list:
# the functions in pg_catalog named etl_* are exactly those it names.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $here = dirname(abs_path(__FILE__));    # test/t
my $readme = $ENV{ETL_README} // "$here/../../README.md";

my $node = PostgreSQL::Test::Cluster->new('trojans');
$node->init;
$node->start;

# what the planted objects call: a record of what ran, as whom, and an
# attempt to make mallory a superuser
my $trap_sql = q{
CREATE TABLE public.trojan_log (what text, who name DEFAULT current_user);
GRANT INSERT, SELECT ON public.trojan_log TO PUBLIC;
CREATE FUNCTION public.trojan(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
    INSERT INTO public.trojan_log (what) VALUES (what);
    BEGIN
        ALTER ROLE mallory SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END
$fn$;
};

# look-alikes in schema public of what the install script names
my $plant_sql = q{
DO $do$
DECLARE
    t text;
    o record;
    f record;
    n integer := 0;
    args text;
BEGIN
    -- domains named like the types the script uses
    FOREACH t IN ARRAY ARRAY['text', 'int8', 'int4', 'int2', 'numeric', 'float8', 'bool',
                             'timestamptz', 'timestamp', 'interval', 'jsonb', 'json', 'bytea',
                             'name', 'oid', 'regclass', 'regrole', 'xid8', 'varchar'] LOOP
        EXECUTE format('CREATE DOMAIN public.%I AS pg_catalog.%I CHECK (public.trojan(%L))',
                       t, t, 'domain ' || t);
    END LOOP;
    -- types named like built-in ones, with an implicit cast from text
    FOREACH t IN ARRAY ARRAY['regtype', 'regnamespace', 'regprocedure', 'pg_lsn'] LOOP
        EXECUTE format('CREATE TYPE public.%I AS ENUM (''x'')', t);
        EXECUTE format('CREATE FUNCTION public.%I(pg_catalog.text) RETURNS public.%I '
                       'LANGUAGE sql SET search_path = pg_catalog AS %L', 'to_' || t, t,
                       format('SELECT CASE WHEN public.trojan(%L) THEN ''x''::public.%I END',
                              'cast to ' || t, t));
        EXECUTE format('CREATE CAST (pg_catalog.text AS public.%I) '
                       'WITH FUNCTION public.%I(pg_catalog.text) AS IMPLICIT', t, 'to_' || t);
    END LOOP;
    -- every built-in operator of these names, same argument types
    FOR o IN
        SELECT op.oprname, op.oprleft, op.oprright, op.oprresult
          FROM pg_catalog.pg_operator op
         WHERE op.oprnamespace = 'pg_catalog'::regnamespace
           AND op.oprname IN ('=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||',
                              '->', '->>', '?', '@>', '~~')
           AND op.oprleft <> 0
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_type ty
                            WHERE ty.oid IN (op.oprleft, op.oprright, op.oprresult)
                              AND ty.typtype = 'p')
    LOOP
        n := n + 1;
        EXECUTE format('CREATE FUNCTION public.op%s(%s, %s) RETURNS %s LANGUAGE sql '
                       'SET search_path = pg_catalog AS %L',
                       n, o.oprleft::regtype, o.oprright::regtype, o.oprresult::regtype,
                       format('SELECT CASE WHEN public.trojan(%L) THEN $1 OPERATOR(pg_catalog.%s) $2 END',
                              'operator ' || o.oprname, o.oprname));
        EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.op%s)',
                       o.oprname, o.oprleft::regtype, o.oprright::regtype, n);
    END LOOP;
    -- built-in functions of the names the script calls
    FOR f IN
        SELECT p.oid, p.proname, p.pronargs, p.proretset, p.prorettype,
               pg_catalog.pg_get_function_arguments(p.oid) AS arglist,
               pg_catalog.pg_get_function_result(p.oid) AS result
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
           AND p.proname IN ('now', 'clock_timestamp', 'pg_has_role', 'pg_extension_config_dump',
                             'set_config', 'format', 'date_part', 'to_char', 'round', 'ceil',
                             'make_interval', 'lower', 'upper', 'replace', 'md5', 'substr',
                             'to_regclass', 'current_database', 'format_type', 'jsonb_set',
                             'jsonb_strip_nulls', 'get_byte', 'decode', 'nextval', 'coalesce',
                             'greatest', 'nullif')
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_type ty
                            WHERE ty.oid = ANY (p.proargtypes) AND ty.typtype = 'p')
           AND (p.prorettype = 'void'::regtype
                OR NOT EXISTS (SELECT FROM pg_catalog.pg_type ty
                                WHERE ty.oid = p.prorettype AND ty.typtype = 'p'))
    LOOP
        SELECT pg_catalog.string_agg('$' || i, ', ' ORDER BY i) INTO args
          FROM pg_catalog.generate_series(1, f.pronargs) i;
        EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE sql '
                       'SET search_path = pg_catalog AS %L',
                       f.proname, f.arglist, f.result,
                       CASE WHEN f.prorettype = 'void'::regtype
                            THEN format('SELECT public.trojan(%L); SELECT pg_catalog.%I(%s)',
                                        'function ' || f.oid::regprocedure::text, f.proname,
                                        COALESCE(args, ''))
                            ELSE format('SELECT CASE WHEN public.trojan(%L) THEN pg_catalog.%I(%s) END',
                                        'function ' || f.oid::regprocedure::text, f.proname,
                                        COALESCE(args, '')) END);
    END LOOP;
END
$do$;
-- aggregates of the names the script uses
CREATE FUNCTION public.count_star(bigint) RETURNS bigint LANGUAGE sql SET search_path = pg_catalog
    AS $$SELECT CASE WHEN public.trojan('aggregate count(*)') THEN $1 + 1 END$$;
CREATE AGGREGATE public.count(*) (SFUNC = public.count_star, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION public.sum_n(numeric, numeric) RETURNS numeric LANGUAGE sql SET search_path = pg_catalog
    AS $$SELECT CASE WHEN public.trojan('aggregate sum(numeric)') THEN $2 END$$;
CREATE AGGREGATE public.sum(numeric) (SFUNC = public.sum_n, STYPE = numeric);
CREATE FUNCTION public.string_agg_t(text, text, text) RETURNS text LANGUAGE sql
    SET search_path = pg_catalog
    AS $$SELECT CASE WHEN public.trojan('aggregate string_agg') THEN $2 END$$;
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = public.string_agg_t, STYPE = text);
};

# planted($db): how many objects mallory has in public (functions,
# operators, types)
sub planted
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'public'::regnamespace)});
}

$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
CREATE DATABASE trojans;
CREATE DATABASE trojans_etl;
CREATE DATABASE trojans_internal;
GRANT CREATE ON DATABASE trojans_etl, trojans_internal TO mallory;
});
for my $db ('trojans', 'trojans_etl', 'trojans_internal')
{
	$node->safe_psql($db, 'GRANT CREATE ON SCHEMA public TO mallory');
	$node->safe_psql($db, "SET ROLE mallory;\n$trap_sql\n$plant_sql");
}
cmp_ok(planted('trojans'), '>', 400, 'mallory planted her objects in public');

# the plants work: a statement that resolves through public runs them
$node->safe_psql('trojans',
	"SET ROLE mallory; SET search_path = public, pg_catalog; SELECT 1 = 1, now(), 'x'::text");
is( $node->safe_psql('trojans', 'SELECT string_agg(DISTINCT what, \', \' ORDER BY what) FROM trojan_log'),
	'domain text, function now(), operator =',
	'a statement under search_path = public, pg_catalog runs them');
$node->safe_psql('trojans', 'TRUNCATE trojan_log');

# a superuser installs under the hostile path, then uses the extension
my $deps_before = $node->safe_psql('trojans', q{
SELECT count(*) FROM pg_depend d
 WHERE (d.refclassid = 'pg_proc'::regclass
        AND d.refobjid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'public'::regnamespace))
    OR (d.refclassid = 'pg_operator'::regclass
        AND d.refobjid IN (SELECT oid FROM pg_operator WHERE oprnamespace = 'public'::regnamespace))
    OR (d.refclassid = 'pg_type'::regclass
        AND d.refobjid IN (SELECT oid FROM pg_type WHERE typnamespace = 'public'::regnamespace))});
$node->safe_psql('trojans', q{
SET search_path = public, pg_catalog;
CREATE EXTENSION etl_ext;
});
is($node->safe_psql('trojans', 'SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = \'etl_ext\''),
	'1', 'etl_ext installs under search_path = public, pg_catalog');
is( $node->safe_psql('trojans', q{
SELECT count(*) FROM pg_depend d
 WHERE (d.refclassid = 'pg_proc'::regclass
        AND d.refobjid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'public'::regnamespace))
    OR (d.refclassid = 'pg_operator'::regclass
        AND d.refobjid IN (SELECT oid FROM pg_operator WHERE oprnamespace = 'public'::regnamespace))
    OR (d.refclassid = 'pg_type'::regclass
        AND d.refobjid IN (SELECT oid FROM pg_type WHERE typnamespace = 'public'::regnamespace))}),
	$deps_before,
	'no object of the extension depends on a planted function, operator or type');

# using it under the same path: a pipeline, runs, a catch-up, monitoring
$node->safe_psql('trojans', q{
CREATE SCHEMA src;
CREATE TABLE src.orders (id int PRIMARY KEY, v text, at timestamptz NOT NULL);
INSERT INTO src.orders SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 30) g;
CREATE TABLE src.copy (id int PRIMARY KEY, v text, at timestamptz);
});
$node->safe_psql('trojans', q{
SET search_path = public, pg_catalog;
SET client_min_messages = warning;
SELECT etl_create_pipeline('p', 'src.orders', 'src.copy', watermark_column => 'at', batch_size => 10);
SELECT etl_add_check('p', 'unique', column_name => 'id');
CALL etl_catch_up('p');
CALL etl_backfill('p', '2024-01-01', '2024-01-02', '12 hours');
SELECT * FROM etl_run('p');
SELECT * FROM etl.status;
SELECT etl_metrics();
SELECT * FROM etl_lineage();
SELECT etl_lineage_dot();
SELECT etl_drop_pipeline('p');
});
is($node->safe_psql('trojans', 'SELECT count(*) FROM src.copy'), '30',
	'the pipeline loaded every row under the hostile path');
is($node->safe_psql('trojans', 'SELECT count(*) FROM trojan_log'), '0',
	'nothing planted in public ran, at installation or after');
is($node->safe_psql('trojans', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f', 'mallory is no superuser');

# a schema etl (or etl_internal) made before is refused, and left alone
for my $case (['trojans_etl', 'etl'], ['trojans_internal', 'etl_internal'])
{
	my ($db, $schema) = @$case;
	$node->safe_psql($db, qq{
SET ROLE mallory;
CREATE SCHEMA $schema;
CREATE TABLE $schema.pipelines (name text);
CREATE FUNCTION $schema.etl_lag(text) RETURNS text LANGUAGE sql
    AS \$\$SELECT CASE WHEN public.trojan('$schema.etl_lag') THEN '0' END\$\$;
GRANT USAGE ON SCHEMA $schema TO PUBLIC;
});
	my ($out, $err) = ('', '');
	my $rc = $node->psql($db,
		"\\set VERBOSITY verbose\nSET search_path = public, pg_catalog;\nCREATE EXTENSION etl_ext;",
		stdout => \$out, stderr => \$err);
	isnt($rc, 0, "$schema made by mallory: CREATE EXTENSION fails");
	like($err, qr/ERROR:  42P06: schema "$schema" already exists/,
		"$schema made by mallory: 42P06 naming the schema");
	like($err, qr/DETAIL:  etl_ext creates the schemas etl and etl_internal itself/,
		"$schema made by mallory: the detail says why");
	like($err, qr/HINT:  Check what schema $schema holds and who owns it, drop or rename it/,
		"$schema made by mallory: the hint says what to do");
	is( $node->safe_psql($db, qq{
SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'etl_ext') || ' '
    || (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = '$schema') || ' '
    || (SELECT count(*) FROM pg_class WHERE relnamespace = '$schema'::regnamespace) || ' '
    || (SELECT count(*) FROM pg_proc WHERE pronamespace = '$schema'::regnamespace) || ' '
    || (SELECT count(*) FROM pg_namespace WHERE nspname IN ('etl', 'etl_internal'))}),
		'0 mallory 1 1 1',
		"$schema made by mallory: nothing installed, her schema as it was, no other schema made");
	is($node->safe_psql($db, 'SELECT count(*) FROM trojan_log'), '0',
		"$schema made by mallory: nothing planted ran");
}
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f', 'mallory is still no superuser');

# the API is the README's Functions list
open(my $fh, '<', $readme) or die "cannot read $readme: $!";
my $text = do { local $/; <$fh> };
close $fh;
my ($section) = $text =~ /^## Functions\n(.*?)^## /ms;
ok(defined $section, 'README has a Functions section');
my %listed = map { $_ => 1 } ($section // '') =~ /^\| `(?:CALL )?(etl_[a-z_]+)\(/mg;
my @installed = split /\n/, $node->safe_psql('trojans', q{
SELECT DISTINCT proname FROM pg_proc
 WHERE pronamespace = 'pg_catalog'::regnamespace AND proname LIKE 'etl\_%' ORDER BY 1});
is_deeply([ sort keys %listed ], \@installed,
	'the functions in pg_catalog are exactly those README lists under Functions');
$node->stop;
done_testing();
