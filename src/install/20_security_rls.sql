/*
 * src/install/20_security_rls.sql -- who may read and write the catalogs:
 * PUBLIC reads them and writes none (the functions write them as the
 * extension owner), and row-level security shows each role only the runs,
 * batches, check results, dead letters and snapshot signatures of the
 * pipelines whose owner's privileges it has.
 */

REVOKE ALL ON etl.pipelines, etl.runs, etl.batches, etl.dead_letters, etl.checks,
    etl.check_results, etl.run_totals, etl.check_totals FROM PUBLIC;
GRANT SELECT ON etl.pipelines, etl.runs, etl.batches, etl.dead_letters, etl.checks,
    etl.check_results, etl.run_totals, etl.check_totals TO PUBLIC;

ALTER TABLE etl.snapshot_signatures ENABLE ROW LEVEL SECURITY;
-- (an uncorrelated IN: one hashed read of the pipelines per statement,
-- whatever the number of signatures; resolved here under pg_catalog)
CREATE POLICY signatures_of_owner ON etl.snapshot_signatures FOR SELECT
    USING (pipeline_id IN (SELECT p.pipeline_id FROM etl.pipelines p
                            WHERE pg_catalog.pg_has_role(p.owner, 'USAGE')));
REVOKE ALL ON etl.snapshot_signatures FROM PUBLIC;
GRANT SELECT ON etl.snapshot_signatures TO PUBLIC;

-- Dead letters, runs, batches and check results may hold personal data
-- (source rows; error messages quote the values that failed, e.g. invalid
-- input syntax for type integer: "123-45-6789"; check results sample keys
-- and values): each role sees those of the pipelines whose owner's
-- privileges it has (superusers and the extension owner see all).  The
-- functions write them as the extension owner, the table owner, which row
-- level security does not restrict.  Definitions (etl.pipelines,
-- etl.checks) and counts (etl.run_totals, etl.status, the metrics) stay
-- readable by all.
ALTER TABLE etl.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY dead_letters_of_owner ON etl.dead_letters FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) dead_letters.pipeline_id),
        'USAGE'));
ALTER TABLE etl.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY runs_of_owner ON etl.runs FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) runs.pipeline_id),
        'USAGE'));
ALTER TABLE etl.batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY batches_of_owner ON etl.batches FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) batches.pipeline_id),
        'USAGE'));
ALTER TABLE etl.check_results ENABLE ROW LEVEL SECURITY;
CREATE POLICY check_results_of_owner ON etl.check_results FOR SELECT
    USING (pg_catalog.pg_has_role(
        (SELECT p.owner FROM etl.pipelines p
          WHERE p.pipeline_id OPERATOR(pg_catalog.=) check_results.pipeline_id),
        'USAGE'));

