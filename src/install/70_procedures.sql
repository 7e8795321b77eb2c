/*
 * src/install/70_procedures.sql -- long work in committed steps: the
 * procedures etl_catch_up and etl_backfill, and the steps in etl_internal
 * they call (each step one transaction, recorded in the batch log).
 */

-- Long work in steps: catch-up and backfill -------------------------------------

CREATE FUNCTION etl_internal.etl_run_step(pipeline text, kind text, range_from text DEFAULT NULL,
                             range_to text DEFAULT NULL, batch_id bigint DEFAULT NULL)
RETURNS etl.run_result
AS 'MODULE_PATHNAME', 'etl_run_step'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_run_step(text, text, text, text, bigint) IS
    'one step of etl_catch_up or etl_backfill: a run recorded as kind, completing its batch row; with a range, the watermark stays';

CREATE FUNCTION etl_internal.etl_steps_check(procedure text, pipeline text,
                                           force boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'etl_steps_check'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_steps_check(text, text, boolean) IS
    'what etl_catch_up and etl_backfill check first: no transaction block (25001), the pipeline and its owner, a backfill''s mode and keyless append (unless force)';

CREATE FUNCTION etl_internal.etl_batch_start(pipeline text, kind text, range_from text DEFAULT NULL,
                                range_to text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_batch_start'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_batch_start(text, text, text, text) IS
    'write the started row of a step in the batch log (commit it before the step) and return its id';

CREATE FUNCTION etl_internal.etl_batch_recover(pipeline text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_batch_recover'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION etl_internal.etl_batch_recover(text) IS
    'mark the started or staged batch rows a crash left as abandoned (their range is redone); returns how many';

CREATE FUNCTION etl_internal.etl_backfill_steps(pipeline text, from_value text, to_value text, step text)
RETURNS TABLE (step_no integer, range_from text, range_to text)
AS 'MODULE_PATHNAME', 'etl_backfill_steps'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_backfill_steps(text, text, text, text) IS
    'the ranges [from, from + step) ... up to to_value of a backfill, in the watermark column''s type';

CREATE FUNCTION etl_internal.etl_pending_rows(pipeline text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_pending_rows'
LANGUAGE C STABLE;
COMMENT ON FUNCTION etl_internal.etl_pending_rows(text) IS
    'the source rows past the watermark (NULL for modes without a watermark column)';

-- The procedures commit between steps, so they run as CALL outside a
-- transaction block, and carry no SET clause (which would forbid COMMIT):
-- they run under the caller's search_path, so every type, function and
-- operator in them is schema-qualified (plpgsql declarations included), and
-- none of the constructs that look an operator up by name is used.
CREATE PROCEDURE etl_catch_up(pipeline text)
LANGUAGE plpgsql
AS $fn$
DECLARE
    total   pg_catalog.int8;
    bsize   pg_catalog.int8;
    nsteps  pg_catalog.int8;
    step_no pg_catalog.int4 := 0;
    done    pg_catalog.int8 := 0;
    fresh   pg_catalog.int8;
    t0      pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    secs    pg_catalog.float8;
    b       pg_catalog.int8;
    r       etl.run_result;
BEGIN
    PERFORM etl_internal.etl_steps_check('etl_catch_up', etl_catch_up.pipeline);
    PERFORM etl_internal.etl_batch_recover(etl_catch_up.pipeline);
    COMMIT;
    total := etl_internal.etl_pending_rows(etl_catch_up.pipeline);
    SELECT p.batch_size INTO bsize FROM etl.pipelines p
     WHERE p.name OPERATOR(pg_catalog.=) etl_catch_up.pipeline;
    nsteps := CASE WHEN bsize IS NULL OR total IS NULL THEN 1
                   ELSE GREATEST(1, pg_catalog.ceil(total::pg_catalog.numeric
                                                  OPERATOR(pg_catalog./) bsize)::pg_catalog.int8) END;
    LOOP
        b := etl_internal.etl_batch_start(etl_catch_up.pipeline, 'catch_up');
        COMMIT;
        r := etl_internal.etl_run_step(etl_catch_up.pipeline, 'catch_up', NULL, NULL, b);
        COMMIT;
        IF r.status OPERATOR(pg_catalog.=) 'skipped' THEN
            RAISE NOTICE 'catch-up of "%" stopped: another session is running it', etl_catch_up.pipeline;
            RETURN;
        END IF;
        -- the rows the step took past the watermark, in its batch row (an
        -- overlap also re-reads rows before it)
        SELECT bt.rows INTO fresh FROM etl.batches bt
         WHERE bt.batch_id OPERATOR(pg_catalog.=) b;
        fresh := COALESCE(fresh, 0);
        step_no := step_no OPERATOR(pg_catalog.+) 1;
        done := done OPERATOR(pg_catalog.+) fresh;
        secs := GREATEST(pg_catalog.date_part('epoch',
                    pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) t0), 0.001);
        RAISE NOTICE 'catch-up of "%": step % of %, % rows (% of %), % rows/s, ETA %',
            etl_catch_up.pipeline, step_no, GREATEST(nsteps, step_no),
            fresh, done, COALESCE(total::pg_catalog.text, '?'),
            pg_catalog.round((done OPERATOR(pg_catalog./) secs)::pg_catalog.numeric),
            CASE WHEN total IS NULL OR done OPERATOR(pg_catalog.>=) total THEN '00:00:00'
                 ELSE pg_catalog.to_char(pg_catalog.make_interval(secs =>
                          (total OPERATOR(pg_catalog.-) done) OPERATOR(pg_catalog.*)
                          secs OPERATOR(pg_catalog./) GREATEST(done, 1)),
                          'HH24:MI:SS') END;
        -- fewer rows than batch_size past the watermark: the step reached
        -- the safe bound; a step that left the watermark where it was
        -- would only be repeated
        EXIT WHEN bsize IS NULL OR fresh OPERATOR(pg_catalog.<) bsize
               OR r.watermark_to OPERATOR(pg_catalog.=) r.watermark_from
               OR (r.watermark_to IS NULL AND r.watermark_from IS NULL);
    END LOOP;
END
$fn$;
COMMENT ON PROCEDURE etl_catch_up(text) IS
    'run increments of batch_size rows, committing after each, until the pipeline is caught up';

CREATE PROCEDURE etl_backfill(pipeline text, from_value text, to_value text, step text,
                              force boolean DEFAULT false)
LANGUAGE plpgsql
AS $fn$
DECLARE
    s      pg_catalog.record;
    nsteps pg_catalog.int4;
    ran    pg_catalog.int4 := 0;
    done   pg_catalog.int8 := 0;
    t0     pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    secs   pg_catalog.float8;
    b      pg_catalog.int8;
    r      etl.run_result;
BEGIN
    PERFORM etl_internal.etl_steps_check('etl_backfill', etl_backfill.pipeline, force);
    PERFORM etl_internal.etl_batch_recover(etl_backfill.pipeline);
    COMMIT;
    SELECT pg_catalog.count(*) INTO nsteps
      FROM etl_internal.etl_backfill_steps(etl_backfill.pipeline, from_value, to_value, step);
    FOR s IN SELECT * FROM etl_internal.etl_backfill_steps(etl_backfill.pipeline, from_value,
                                                           to_value, step) LOOP
        IF NOT COALESCE(force, false) AND EXISTS (
            SELECT FROM etl.batches bt
             WHERE bt.pipeline OPERATOR(pg_catalog.=) etl_backfill.pipeline
               AND bt.kind OPERATOR(pg_catalog.=) 'backfill'
               AND bt.range_from OPERATOR(pg_catalog.=) s.range_from
               AND bt.range_to OPERATOR(pg_catalog.=) s.range_to
               AND bt.status OPERATOR(pg_catalog.=) 'completed') THEN
            RAISE NOTICE 'backfill of "%": step %/% [%, %) already done, skipped',
                etl_backfill.pipeline, s.step_no, nsteps, s.range_from, s.range_to;
            CONTINUE;
        END IF;
        b := etl_internal.etl_batch_start(etl_backfill.pipeline, 'backfill', s.range_from, s.range_to);
        COMMIT;
        r := etl_internal.etl_run_step(etl_backfill.pipeline, 'backfill', s.range_from, s.range_to, b);
        COMMIT;
        IF r.status OPERATOR(pg_catalog.=) 'skipped' THEN
            RAISE NOTICE 'backfill of "%" stopped: another session is running it', etl_backfill.pipeline;
            RETURN;
        END IF;
        ran := ran OPERATOR(pg_catalog.+) 1;
        done := done OPERATOR(pg_catalog.+) GREATEST(r.rows_extracted, 0);
        secs := GREATEST(pg_catalog.date_part('epoch',
                    pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) t0), 0.001);
        RAISE NOTICE 'backfill of "%": step %/% [%, %): % rows, % rows/s, ETA %',
            etl_backfill.pipeline, s.step_no, nsteps, s.range_from, s.range_to,
            r.rows_extracted,
            pg_catalog.round((done OPERATOR(pg_catalog./) secs)::pg_catalog.numeric),
            pg_catalog.to_char(pg_catalog.make_interval(secs =>
                (nsteps OPERATOR(pg_catalog.-) s.step_no) OPERATOR(pg_catalog.*)
                secs OPERATOR(pg_catalog./) ran), 'HH24:MI:SS');
    END LOOP;
END
$fn$;
COMMENT ON PROCEDURE etl_backfill(text, text, text, text, boolean) IS
    'reprocess [from_value, to_value) in steps, each its own transaction, never moving the watermark; completed steps are skipped unless force';

