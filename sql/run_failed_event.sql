-- run_failed_event: the run_failed event on etl_events carries the failed
-- run's SQLSTATE and error class, as etl.runs records them, also when the
-- run holds dead letters of another SQLSTATE; heard by a second session
-- (dblink) that LISTENs

CREATE EXTENSION dblink SCHEMA public;
SELECT public.dblink_connect('ev_listener',
           format('dbname=%s port=%s host=%s', current_database(),
                  current_setting('port'), current_setting('unix_socket_directories')));
SELECT public.dblink_exec('ev_listener', 'LISTEN etl_events');

CREATE SCHEMA ev;
CREATE TABLE ev.src (id int PRIMARY KEY, v text, w int);
CREATE TABLE ev.dst (id int PRIMARY KEY, v int CHECK (v >= 0), w int);

-- heard(): the events the listener has received, with the record of their run
CREATE FUNCTION ev.heard() RETURNS TABLE (event text, pipeline text, event_sqlstate text,
                                          run_sqlstate text, event_class text, run_class text,
                                          rows_rejected bigint)
LANGUAGE sql AS $$
    SELECT e.j->>'event', e.j->>'pipeline', e.j->>'sqlstate', r.sqlstate,
           e.j->>'error_class', r.error_class, (e.j->>'rows_rejected')::bigint
      FROM (SELECT n.extra::jsonb AS j
              FROM public.dblink_get_notify('ev_listener') AS n
             WHERE n.notify_name = 'etl_events') AS e
      LEFT JOIN etl.runs AS r ON r.run_id = (e.j->>'run_id')::bigint
     ORDER BY (e.j->>'run_id')::bigint
$$;

-- over error_threshold: 5 of 10 rows break the target's CHECK (23514 each),
-- the run fails with 22000
INSERT INTO ev.src SELECT g, CASE WHEN g <= 5 THEN '-1' ELSE '1' END, g FROM generate_series(1, 10) g;
SELECT etl_create_pipeline('ev_threshold', 'ev.src', 'ev.dst', mode => 'full',
                           transform => 'SELECT id, v::int AS v, w FROM etl_delta',
                           max_attempts => 1, error_threshold => 10) > 0 AS created;
\set VERBOSITY sqlstate
SELECT status FROM etl_run('ev_threshold');
\set VERBOSITY default
-- the listener's session delivers what it has been sent before it answers
SELECT * FROM public.dblink('ev_listener', 'SELECT 1') AS t(one int);
SELECT * FROM ev.heard();
SELECT stage, sqlstate, count(*) FROM etl.dead_letters d JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name = 'ev_threshold' GROUP BY 1, 2;

-- a critical check fails the run (23514)
TRUNCATE ev.src;
INSERT INTO ev.src VALUES (1, '1', 1), (2, '2', NULL), (3, '3', 3);
SELECT etl_create_pipeline('ev_check', 'ev.src', 'ev.dst', mode => 'full',
                           transform => 'SELECT id, v::int AS v, w FROM etl_delta',
                           max_attempts => 1, error_threshold => 50) > 0 AS created;
SELECT etl_add_check('ev_check', 'not_null', 'w');
\set VERBOSITY sqlstate
SELECT status FROM etl_run('ev_check');
\set VERBOSITY default
SELECT * FROM public.dblink('ev_listener', 'SELECT 1') AS t(one int);
SELECT * FROM ev.heard();
SELECT etl_drop_check('ev_check', 'ev_check_w_not_null');

-- a fatal error (42501, from a trigger of the target) in a batch with a
-- row that breaks the target's CHECK: the run fails with 42501
TRUNCATE ev.src;
INSERT INTO ev.src SELECT g, CASE WHEN g = 2 THEN '-1' ELSE '1' END, g FROM generate_series(1, 10) g;
CREATE FUNCTION ev.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 9 THEN
        RAISE insufficient_privilege USING MESSAGE = 'row 9 is not for you';
    END IF;
    RETURN NEW;
END$$;
CREATE TRIGGER refuse BEFORE INSERT ON ev.dst FOR EACH ROW EXECUTE FUNCTION ev.refuse();
\set VERBOSITY sqlstate
SELECT status FROM etl_run('ev_check');
\set VERBOSITY default
SELECT * FROM public.dblink('ev_listener', 'SELECT 1') AS t(one int);
SELECT * FROM ev.heard();
SELECT stage, sqlstate, count(*) FROM etl.dead_letters d JOIN etl.pipelines p USING (pipeline_id)
 WHERE p.name = 'ev_check' GROUP BY 1, 2;

-- nothing else was heard, and nothing loaded
SELECT * FROM public.dblink('ev_listener', 'SELECT 1') AS t(one int);
SELECT count(*) AS heard FROM ev.heard();
SELECT count(*) AS loaded FROM ev.dst;

SELECT public.dblink_disconnect('ev_listener');
SELECT etl_drop_pipeline('ev_threshold'), etl_drop_pipeline('ev_check');
DROP SCHEMA ev CASCADE;
DROP EXTENSION dblink;
