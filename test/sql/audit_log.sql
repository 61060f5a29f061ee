-- mcp.log_token_operation and the daily partitions of mcp.token_audit_log.
-- Times are relative to now(); partition names are checked through booleans, so the output
-- does not depend on the date.
\set VERBOSITY terse
SET search_path = mcp, public;

INSERT INTO users (id, email) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'a@example.com'),
    ('00000000-0000-0000-0000-00000000000b', 'b@example.com');
INSERT INTO mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'github', 'GitHub', 7001, 'api_key');
INSERT INTO mcp_service_table (instance_id, user_id, mcp_service_id, status) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1', 'active'),
    ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1', 'inactive'),
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c1', 'active');

-- A helper for the checks below: the partition holding a day, NULL when none.
CREATE FUNCTION pg_temp.day_partition(ts timestamptz) RETURNS regclass LANGUAGE sql AS $$
    SELECT to_regclass('mcp.token_audit_log_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDD'))
$$;

-- Fresh install: no day partition yet, only the DEFAULT one.
SELECT count(*) AS day_partitions FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass
   AND inhrelid <> 'mcp.token_audit_log_default'::regclass;

-- ---- writing as the application, tenant A ---------------------------------------------------
SET ROLE mcp_app;
-- no tenant set: MC301
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'validate', 'success');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000a', true) IS NOT NULL AS tenant_set;
-- the row lands in the DEFAULT partition: today has no partition yet, and that is no failure
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'success', 'oauth',
                               metadata => '{"attempt": 1}') > 0 AS logged_without_partition;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'failure', 'oauth',
                               'invalid_grant', repeat('x', 5000)) > 0 AS logged_long_error;
-- the user comes from the instance; the error message is cut at 1000 characters
SELECT user_id, instance_id, operation, status, method, error_type, length(error_message) AS error_length,
       metadata, created_at = now() AS created_now
  FROM token_audit_log ORDER BY audit_id;
-- invalid operation or status: 22023, nothing written
SAVEPOINT s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'explode', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'maybe');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', NULL, 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', NULL);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- one spelling per method (api_key, oauth): a variant would split a summary in two; 22023
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'success', 'oauth2');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'success', 'OAuth');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- bounded sizes and shapes: 22023
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'success', repeat('m', 51));
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'failure', NULL, repeat('e', 101));
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'success', metadata => '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'refresh', 'success',
                               metadata => jsonb_build_object('blob', repeat('z', 9000)));
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation(NULL, 'refresh', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- another tenant's instance, or an unknown one: 42501
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000b1', 'validate', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000ff', 'validate', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- NULL metadata is stored as {}
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a2', 'validate', 'pending', metadata => NULL) > 0 AS logged;
SAVEPOINT s;
SELECT count(*) AS rows_of_a FROM token_audit_log;
SELECT metadata FROM token_audit_log WHERE instance_id = '00000000-0000-0000-0000-0000000000a2';
-- the application cannot write the log, partitions or rollup directly, nor run maintenance
INSERT INTO token_audit_log (instance_id, user_id, operation, status)
VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'validate', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT count(*) FROM token_audit_log_default;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.ensure_audit_partitions(now(), now());
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.cleanup_old_token_audit_logs('1 day');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.run_maintenance();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
RESET ROLE;

-- all three rows are in the DEFAULT partition
SELECT tableoid::regclass AS partition, count(*) FROM token_audit_log GROUP BY 1;

-- ---- partitions created ahead by maintenance ------------------------------------------------
SELECT (r->>'skipped')::boolean AS skipped, (r->>'partitions_created')::int AS partitions_created,
       (r->>'removed_audit_rows')::int AS removed
  FROM mcp.run_maintenance() AS r;
-- today and the next 7 days (mcp_platform.audit_partitions_ahead) now exist
SELECT count(*) FILTER (WHERE pg_temp.day_partition(now() + make_interval(days => d)) IS NOT NULL) AS made_ahead
  FROM generate_series(0, 7) AS d;
SELECT pg_temp.day_partition(now() + interval '8 days') IS NULL AS not_beyond_window;
-- today's rows moved out of the DEFAULT partition into today's
SELECT tableoid = pg_temp.day_partition(now()) AS in_todays_partition, count(*) FROM token_audit_log GROUP BY 1;
SELECT count(*) AS rows_in_default FROM token_audit_log_default;
-- a second run creates nothing new
SELECT (r->>'partitions_created')::int AS partitions_created FROM mcp.run_maintenance() AS r;
-- a new row goes straight into today's partition
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000a', true) IS NOT NULL AS tenant_set;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'revoke', 'success') > 0 AS logged;
SELECT tableoid = pg_temp.day_partition(now()) AS in_todays_partition
  FROM token_audit_log WHERE operation = 'revoke';
COMMIT;

-- ---- beyond the premade window, and in the past: the DEFAULT partition catches the row ------
INSERT INTO token_audit_log (instance_id, user_id, operation, status, created_at) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'validate', 'success', now() + interval '30 days'),
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'validate', 'success', now() - interval '50 days'),
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'validate', 'failure', now() - interval '50 days');
SELECT count(*) AS rows_in_default FROM token_audit_log_default;
-- ensure_audit_partitions prepares any range: the rows of those days move into their partitions
SELECT mcp.ensure_audit_partitions(now() - interval '50 days', now() - interval '50 days') AS created_past;
SELECT mcp.ensure_audit_partitions(now() + interval '30 days', now() + interval '31 days') AS created_future;
SELECT count(*) AS rows_in_default FROM token_audit_log_default;
SELECT count(*) AS rows_50_days_ago FROM token_audit_log
 WHERE tableoid = pg_temp.day_partition(now() - interval '50 days');
-- a historical migration: prepare the range, then a plain INSERT … SELECT
SELECT mcp.ensure_audit_partitions(now() - interval '12 days', now() - interval '10 days') AS created_for_migration;
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'refresh',
       CASE WHEN g % 4 = 0 THEN 'failure' ELSE 'success' END, 'oauth',
       now() - interval '12 days' + g * interval '1 minute'
  FROM generate_series(1, 2880) AS g;
SELECT count(*) AS migrated_rows, count(*) FILTER (WHERE tableoid = 'mcp.token_audit_log_default'::regclass) AS in_default
  FROM token_audit_log WHERE operation = 'refresh' AND created_at < now() - interval '9 days';
-- filling the gap between, then idempotent
SELECT mcp.ensure_audit_partitions(now() - interval '50 days', now() + interval '31 days') > 0 AS created_more;
SELECT mcp.ensure_audit_partitions(now() - interval '50 days', now() - interval '50 days') AS created_again;
-- bad ranges: 22023
SELECT mcp.ensure_audit_partitions(now(), now() - interval '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.ensure_audit_partitions(NULL, now());
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.ensure_audit_partitions('-infinity', now());
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.ensure_audit_partitions(now(), now() + interval '20 years');
\echo :LAST_ERROR_SQLSTATE

-- partitions are reachable only through the log (no grants of their own) and carry its
-- indexes and its dirty-day triggers
SELECT has_table_privilege('mcp_app', pg_temp.day_partition(now()), 'SELECT') AS app_reads_partition;
SELECT count(*) AS indexes_on_todays_partition FROM pg_index WHERE indrelid = pg_temp.day_partition(now());
SELECT count(*) AS triggers_on_todays_partition FROM pg_trigger WHERE tgrelid = pg_temp.day_partition(now());

-- ---- rows outlive their instance ------------------------------------------------------------
DELETE FROM mcp_service_table WHERE instance_id = '00000000-0000-0000-0000-0000000000a2';
SELECT count(*) AS audit_rows_of_deleted_instance FROM token_audit_log
 WHERE instance_id = '00000000-0000-0000-0000-0000000000a2';
-- but nothing more can be logged for it
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000a', true) IS NOT NULL AS tenant_set;
SET LOCAL ROLE mcp_app;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a2', 'validate', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- ---- mcp_admin may manage partitions and retention -----------------------------------------
SET ROLE mcp_admin;
SELECT mcp.ensure_audit_partitions(now(), now()) AS created_by_admin;
RESET ROLE;

-- clean up for the following tests: no rows, no day partitions, empty rollup
\i test/include/reset_audit_log.sql
SELECT (SELECT count(*) FROM token_audit_daily) + (SELECT count(*) FROM token_audit_dirty_days)
     + (SELECT count(*) FROM token_audit_rollup_state) AS rollup_rows_left;
DELETE FROM users;
DELETE FROM mcp_table;
