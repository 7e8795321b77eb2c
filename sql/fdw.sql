-- fdw: sources behind postgres_fdw (a loopback to a second database)

\set regress_db :DBNAME
CREATE DATABASE etl_fdw_remote;
\c etl_fdw_remote
CREATE TABLE public.orders (id int PRIMARY KEY, v text, at timestamptz NOT NULL, seq int NOT NULL);
INSERT INTO public.orders SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 hour', g
  FROM generate_series(1, 20) g;
CREATE TABLE public.changes (_cdc_lsn bigint NOT NULL, _cdc_operation text NOT NULL, id int, v text);
INSERT INTO public.changes VALUES (1, 'c', 1, 'a'), (2, 'c', 2, 'b'), (3, 'u', 1, 'a2');
\c :regress_db

CREATE EXTENSION postgres_fdw SCHEMA public;
DO $$BEGIN
    EXECUTE format('CREATE SERVER etl_loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname %L, port %L, host %L)',
                   'etl_fdw_remote', current_setting('port'), current_setting('unix_socket_directories'));
END$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER etl_loopback;
CREATE SCHEMA fdw_src;
IMPORT FOREIGN SCHEMA public FROM SERVER etl_loopback INTO fdw_src;
CREATE SCHEMA fdw_dw;
CREATE TABLE fdw_dw.orders (id int PRIMARY KEY, v text, at timestamptz, seq int);
CREATE TABLE fdw_dw.orders_serial (LIKE fdw_dw.orders INCLUDING ALL);
CREATE TABLE fdw_dw.orders_snap (LIKE fdw_dw.orders INCLUDING ALL);
CREATE TABLE fdw_dw.orders_full (LIKE fdw_dw.orders INCLUDING ALL);
CREATE TABLE fdw_dw.customers (id int PRIMARY KEY, v text);

-- a fetch size for bulk extraction is set when neither table nor server has one
SELECT etl_create_pipeline('fdw_ts', 'fdw_src.orders', 'fdw_dw.orders', watermark_column => 'at',
                           overlap => '2 hours') > 0 AS created;
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'fdw_src.orders'::regclass;
SELECT etl_create_pipeline('fdw_serial', 'fdw_src.orders', 'fdw_dw.orders_serial', mode => 'serial',
                           watermark_column => 'seq') > 0 AS created;
SELECT etl_create_pipeline('fdw_snap', 'fdw_src.orders', 'fdw_dw.orders_snap', mode => 'snapshot') > 0 AS created;
SELECT etl_create_pipeline('fdw_full', 'fdw_src.orders', 'fdw_dw.orders_full', mode => 'full') > 0 AS created;
SELECT etl_create_pipeline('fdw_cdc', 'fdw_src.changes', 'fdw_dw.customers', mode => 'cdc') > 0 AS created;

-- first loads
SELECT rows_extracted, rows_inserted FROM etl_run('fdw_ts');
SELECT rows_extracted, rows_inserted FROM etl_run('fdw_serial');
SELECT rows_extracted, rows_inserted FROM etl_run('fdw_snap');
SELECT rows_extracted, rows_inserted FROM etl_run('fdw_full');
SELECT rows_extracted, rows_inserted FROM etl_run('fdw_cdc');

-- the watermark predicate goes to the remote server
SELECT regexp_replace(line, '''[^'']*''', '<value>', 'g') AS line
  FROM etl_explain('fdw_ts') AS line WHERE line ~ 'Remote SQL|^--';
SELECT line FROM etl_explain('fdw_serial') AS line WHERE line ~ 'Remote SQL|^--';

-- changes on the remote side
\c etl_fdw_remote
UPDATE public.orders SET v = 'changed', at = at + interval '1 minute' WHERE id = 20;
INSERT INTO public.orders VALUES (21, 'v21', '2024-01-01'::timestamptz + 21 * interval '1 hour', 21);
DELETE FROM public.orders WHERE id = 1;
INSERT INTO public.changes VALUES (4, 'd', 2, NULL), (5, 'c', 3, 'c');
\c :regress_db

-- increments: the overlap re-reads rows, unchanged ones are not rewritten
SELECT rows_extracted, rows_inserted, rows_updated, rows_unchanged FROM etl_run('fdw_ts');
SELECT rows_extracted, rows_inserted, rows_updated FROM etl_run('fdw_serial');
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted, rows_unchanged FROM etl_run('fdw_snap');
SELECT rows_extracted, rows_inserted, rows_updated, rows_deleted FROM etl_run('fdw_full');
SELECT rows_extracted, rows_inserted, rows_deleted FROM etl_run('fdw_cdc');
-- re-runs with nothing new
SELECT rows_inserted, rows_updated, rows_deleted FROM etl_run('fdw_snap');
SELECT rows_inserted, rows_updated, rows_deleted FROM etl_run('fdw_full');

-- the targets hold what the source says
SELECT count(*) AS snapshot_differences FROM (
    (SELECT id, v, at, seq FROM fdw_src.orders EXCEPT SELECT id, v, at, seq FROM fdw_dw.orders_snap)
    UNION ALL (SELECT id, v, at, seq FROM fdw_dw.orders_snap EXCEPT SELECT id, v, at, seq FROM fdw_src.orders)) d;
SELECT count(*) AS full_differences FROM (
    (SELECT id, v, at, seq FROM fdw_src.orders EXCEPT SELECT id, v, at, seq FROM fdw_dw.orders_full)
    UNION ALL (SELECT id, v, at, seq FROM fdw_dw.orders_full EXCEPT SELECT id, v, at, seq FROM fdw_src.orders)) d;
-- without deletes (cursor modes), every source row is there, newest version
SELECT count(*) AS timestamp_missing FROM (
    SELECT id, v, at, seq FROM fdw_src.orders EXCEPT SELECT id, v, at, seq FROM fdw_dw.orders) d;
SELECT * FROM fdw_dw.customers ORDER BY id;

-- a table or server that sets fetch_size keeps it
ALTER FOREIGN TABLE fdw_src.changes OPTIONS (SET fetch_size '500');
SELECT etl_alter_pipeline('fdw_cdc', batch_size => 100) > 0 AS altered;
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'fdw_src.changes'::regclass;

SELECT etl_drop_pipeline(name) FROM etl.pipelines WHERE name LIKE 'fdw\_%' ORDER BY name;
SELECT public.postgres_fdw_disconnect_all();
DROP SCHEMA fdw_src CASCADE;
DROP SERVER etl_loopback CASCADE;
DROP DATABASE etl_fdw_remote;
