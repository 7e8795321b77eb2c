/*
 * src/install/60_lineage.sql -- column lineage (etl_lineage,
 * etl_lineage_upstream, etl_lineage_dot) and OpenLineage run events
 * (etl_openlineage), with their parts in etl_internal.
 */

-- Lineage -----------------------------------------------------------------------

CREATE FUNCTION etl_internal.etl_lineage_columns(pipeline text,
    OUT target_column text, OUT source_columns text[], OUT transformation text,
    OUT input_fields jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_lineage_columns'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lineage_columns(text) IS
    'column lineage of a pipeline''s transform, read from its query tree';

CREATE FUNCTION etl_internal.etl_lineage_relations(pipeline text)
RETURNS TABLE (relation text, kind text)
AS 'MODULE_PATHNAME', 'etl_lineage_relations'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lineage_relations(text) IS
    'relations other than its source that a pipeline''s transform reads';

CREATE FUNCTION etl_lineage(relation regclass DEFAULT NULL)
RETURNS TABLE (source text, pipeline text, target text, target_column text,
               source_columns text[], transformation text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT p.source, p.name, p.target, l.target_column, l.source_columns, l.transformation
  FROM etl.pipelines p, LATERAL etl_internal.etl_lineage_columns(p.name) l
 WHERE relation IS NULL
    OR to_regclass(p.source) = relation OR to_regclass(p.target) = relation
 ORDER BY p.name, l.target_column
$fn$;
COMMENT ON FUNCTION etl_lineage(regclass) IS
    'column lineage of the pipelines reading or writing a relation (all pipelines when NULL)';

CREATE FUNCTION etl_internal.etl_lineage_edges()
RETURNS TABLE (from_relation text, to_relation text, pipeline text, via text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT p.source, p.target, p.name, 'source'::text FROM etl.pipelines p
UNION
SELECT r.relation, p.target, p.name, 'join'::text
  FROM etl.pipelines p, LATERAL etl_internal.etl_lineage_relations(p.name) AS r
$fn$;
COMMENT ON FUNCTION etl_internal.etl_lineage_edges() IS
    'the relation graph of all pipelines: each source and joined relation to its target';

CREATE FUNCTION etl_lineage_upstream(relation regclass)
RETURNS TABLE (relation text, depth integer, pipeline text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
WITH RECURSIVE edges AS (
    SELECT e.*, to_regclass(e.from_relation) AS from_oid, to_regclass(e.to_relation) AS to_oid
      FROM etl_internal.etl_lineage_edges() e
), up(oid, rel, depth, pipeline) AS (
    SELECT e.from_oid, e.from_relation, 1, e.pipeline FROM edges e WHERE e.to_oid = $1
    UNION
    SELECT e.from_oid, e.from_relation, up.depth + 1, e.pipeline
      FROM up JOIN edges e ON e.to_oid = up.oid
     WHERE up.depth < 64
)
SELECT DISTINCT ON (rel) rel, depth, pipeline FROM up ORDER BY rel, depth, pipeline
$fn$;
COMMENT ON FUNCTION etl_lineage_upstream(regclass) IS
    'every relation a relation derives from through pipelines, recursively, with its distance';

CREATE FUNCTION etl_lineage_dot()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT E'digraph etl_lineage {\n  rankdir=LR;\n  node [shape=box, fontname="Helvetica"];\n  edge [fontname="Helvetica", fontsize=10];\n'
       || COALESCE(string_agg(format(E'  "%s" -> "%s" [label="%s"%s];',
                                     replace(replace(from_relation, '\', '\\'), '"', '\"'),
                                     replace(replace(to_relation, '\', '\\'), '"', '\"'),
                                     replace(replace(pipeline, '\', '\\'), '"', '\"'),
                                     CASE WHEN via = 'join' THEN ', style=dashed' ELSE '' END),
                              E'\n' ORDER BY pipeline, via DESC, from_relation) || E'\n', '')
       || '}' || E'\n'
  FROM etl_internal.etl_lineage_edges()
$fn$;
COMMENT ON FUNCTION etl_lineage_dot() IS
    'the lineage of all pipelines as a Graphviz DOT graph (joined relations dashed)';

-- OpenLineage ------------------------------------------------------------------

CREATE FUNCTION etl_internal.etl_lineage_namespace()
RETURNS text
AS 'MODULE_PATHNAME', 'etl_lineage_namespace'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_lineage_namespace() IS
    'the OpenLineage namespace of this server: etl.lineage_namespace, or postgres://host:port';

CREATE FUNCTION etl_internal.etl_openlineage_dataset(relation regclass)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT jsonb_build_object(
         'namespace', etl_internal.etl_lineage_namespace(),
         'name', current_database() || '.' || n.nspname || '.' || c.relname,
         'facets', jsonb_build_object('schema', jsonb_build_object(
             '_producer', 'https://github.com/etl-ext/etl_ext/tree/v1.0',
             '_schemaURL', 'https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet',
             'fields', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                          'name', a.attname,
                                          'type', format_type(a.atttypid, a.atttypmod))
                                        ORDER BY a.attnum)
                                   FROM pg_attribute a
                                  WHERE a.attrelid = c.oid AND a.attnum > 0
                                    AND NOT a.attisdropped), '[]'))))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = relation
$fn$;
COMMENT ON FUNCTION etl_internal.etl_openlineage_dataset(regclass) IS
    'a relation as an OpenLineage dataset: namespace, db.schema.table name, schema facet';

CREATE FUNCTION etl_openlineage(run_id bigint, event_type text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    producer CONSTANT text := 'https://github.com/etl-ext/etl_ext/tree/v1.0';
    facets CONSTANT text := 'https://openlineage.io/spec/facets/';
    ns text := etl_internal.etl_lineage_namespace();
    r etl.runs;
    p etl.pipelines;
    et text;
    at timestamptz;
    h text;
    run_facets jsonb := '{}';
    job_facets jsonb := '{}';
    src jsonb;
    tgt jsonb;
    joined jsonb := '[]';
    lineage jsonb := '{}';
    checks jsonb;
BEGIN
    SELECT * INTO r FROM etl.runs x WHERE x.run_id = etl_openlineage.run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', etl_openlineage.run_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT run_id, pipeline, status FROM etl.runs lists the runs.';
    END IF;
    SELECT * INTO p FROM etl.pipelines x WHERE x.pipeline_id = r.pipeline_id;

    et := COALESCE(upper(event_type),
                   CASE r.status WHEN 'succeeded' THEN 'COMPLETE' WHEN 'failed' THEN 'FAIL'
                                 WHEN 'skipped' THEN 'ABORT' ELSE 'RUNNING' END);
    IF et NOT IN ('START', 'RUNNING', 'COMPLETE', 'ABORT', 'FAIL', 'OTHER') THEN
        RAISE EXCEPTION 'invalid OpenLineage event type "%"', event_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are: START, RUNNING, COMPLETE, ABORT, FAIL, OTHER; NULL follows the run''s status.';
    END IF;
    at := CASE WHEN et = 'START' THEN r.started_at
               ELSE COALESCE(r.finished_at, r.started_at + r.duration, r.started_at) END;

    -- a stable UUID (version 8) per server, database, pipeline and run
    h := md5(ns || '/' || current_database() || '/' || p.pipeline_id || '/' ||
             p.created_at::text || '/' || r.run_id);
    IF r.status = 'failed' AND et <> 'START' THEN
        run_facets := jsonb_build_object('errorMessage', jsonb_build_object(
            '_producer', producer,
            '_schemaURL', facets || '1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet',
            'message', COALESCE(r.error, 'failed') ||
                       COALESCE(' (SQLSTATE ' || r.sqlstate || ')', ''),
            'programmingLanguage', 'SQL'));
    END IF;
    IF p.transform IS NOT NULL THEN
        job_facets := jsonb_build_object('sql', jsonb_build_object(
            '_producer', producer,
            '_schemaURL', facets || '1-0-1/SQLJobFacet.json#/$defs/SQLJobFacet',
            'query', p.transform));
    END IF;

    src := etl_internal.etl_openlineage_dataset(to_regclass(p.source));
    tgt := etl_internal.etl_openlineage_dataset(to_regclass(p.target));

    -- column lineage and joined relations, from the current definition: a
    -- pipeline that no longer analyses gives none (etl_lineage_columns says
    -- why in a WARNING), and the event has no columnLineage facet
    BEGIN
        SELECT COALESCE(jsonb_object_agg(l.target_column, jsonb_build_object(
                   'inputFields', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                                       'namespace', ns,
                                       'name', current_database() || '.' || (f->>'schema') || '.' || (f->>'table'),
                                       'field', f->>'field',
                                       'transformations', jsonb_build_array(jsonb_build_object(
                                           'type', 'DIRECT',
                                           'subtype', CASE l.transformation WHEN 'DIRECT' THEN 'IDENTITY'
                                                                            ELSE 'TRANSFORMATION' END)))), '[]')
                                     FROM jsonb_array_elements(l.input_fields) f))), '{}')
          INTO lineage
          FROM etl_internal.etl_lineage_columns(p.name) l;
        IF lineage = '{}' THEN
            lineage := NULL;
        ELSE
            SELECT COALESCE(jsonb_agg(etl_internal.etl_openlineage_dataset(to_regclass(x.relation))
                                      ORDER BY x.relation), '[]')
              INTO joined
              FROM etl_internal.etl_lineage_relations(p.name) x;
        END IF;
    END;

    IF src IS NOT NULL AND et <> 'START' THEN
        SELECT jsonb_build_object(
                 'dataQualityMetrics', jsonb_build_object(
                     '_producer', producer,
                     '_schemaURL', facets || '1-0-2/DataQualityMetricsInputDatasetFacet.json#/$defs/DataQualityMetricsInputDatasetFacet',
                     'rowCount', r.rows_extracted,
                     'columnMetrics', COALESCE(jsonb_object_agg(c.column_name,
                                          jsonb_build_object('nullCount', c.failing_rows))
                                          FILTER (WHERE c.kind = 'not_null' AND c.column_name IS NOT NULL),
                                          '{}')),
                 'dataQualityAssertions', jsonb_build_object(
                     '_producer', producer,
                     '_schemaURL', facets || '1-0-1/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet',
                     'assertions', COALESCE(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                       'assertion', c.kind, 'success', c.passed,
                                       'column', c.column_name)) ORDER BY c.result_id), '[]')))
          INTO checks
          FROM etl.check_results c
         WHERE c.run_id = r.run_id;
        src := src || jsonb_build_object('inputFacets', checks);
    END IF;
    IF tgt IS NOT NULL THEN
        IF lineage IS NOT NULL THEN
            tgt := jsonb_set(tgt, '{facets,columnLineage}', jsonb_build_object(
                       '_producer', producer,
                       '_schemaURL', facets || '1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet',
                       'fields', lineage));
        END IF;
        IF et <> 'START' THEN
            tgt := tgt || jsonb_build_object('outputFacets', jsonb_build_object(
                       'outputStatistics', jsonb_build_object(
                           '_producer', producer,
                           '_schemaURL', facets || '1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet',
                           'rowCount', r.rows_inserted + r.rows_updated + r.rows_deleted)));
        END IF;
    END IF;

    RETURN jsonb_build_object(
        'eventType', et,
        'eventTime', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'producer', producer,
        'schemaURL', 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent',
        'run', jsonb_build_object(
            'runId', substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-8' || substr(h, 14, 3) || '-' ||
                     substr('89ab', get_byte(decode(substr(h, 17, 2), 'hex'), 0) % 4 + 1, 1) ||
                     substr(h, 18, 3) || '-' || substr(h, 21, 12),
            'facets', run_facets),
        'job', jsonb_build_object('namespace', ns, 'name', current_database() || '.' || p.name,
                                  'facets', job_facets),
        'inputs', (CASE WHEN src IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(src) END) || joined,
        'outputs', CASE WHEN tgt IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(tgt) END);
END
$fn$;
COMMENT ON FUNCTION etl_openlineage(bigint, text) IS
    'an OpenLineage 2-0-2 RunEvent for a run (COMPLETE, FAIL or ABORT by its status, or the event_type given)';

