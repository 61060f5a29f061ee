-- token_audit_summary: equal to the plain 30-day aggregate over the raw log in every
-- state of the rollup (nothing rolled up, rolled up, a late row in a rolled-up day, rows at the
-- window's edge), unchanged by retention, and showing only the current tenant's rows.
\set VERBOSITY terse
SET search_path = mcp, public;

INSERT INTO users (id, email) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'a@example.com'),
    ('00000000-0000-0000-0000-00000000000b', 'b@example.com');

-- The plain aggregate, as the first version defined the view.
CREATE VIEW pg_temp.plain_summary AS
SELECT l.instance_id, l.user_id, l.operation, l.method,
       count(*) AS total_operations,
       count(*) FILTER (WHERE l.status = 'success') AS success_count,
       count(*) FILTER (WHERE l.status = 'failure') AS failure_count,
       round(100.0 * count(*) FILTER (WHERE l.status = 'success') / count(*), 2) AS success_rate,
       min(l.created_at) AS first_operation_at,
       max(l.created_at) AS last_operation_at
  FROM mcp.token_audit_log l
 WHERE l.created_at >= now() - interval '30 days'
 GROUP BY l.instance_id, l.user_id, l.operation, l.method;

-- Compares the view with the plain aggregate, in one transaction (one now()).
CREATE FUNCTION pg_temp.compare(OUT view_rows bigint, OUT plain_rows bigint, OUT only_in_view bigint,
                                OUT only_in_plain bigint, OUT total bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM mcp.token_audit_summary),
           (SELECT count(*) FROM pg_temp.plain_summary),
           (SELECT count(*) FROM (SELECT * FROM mcp.token_audit_summary EXCEPT ALL SELECT * FROM pg_temp.plain_summary) x),
           (SELECT count(*) FROM (SELECT * FROM pg_temp.plain_summary EXCEPT ALL SELECT * FROM mcp.token_audit_summary) x),
           (SELECT coalesce(sum(total_operations), 0) FROM mcp.token_audit_summary)
$$;

-- 40 days of rows, every 37 minutes, for two tenants, two instances each, a mix of operations,
-- methods (one NULL) and statuses; plus rows on both sides of the window's edge.
SELECT mcp.ensure_audit_partitions(now() - interval '40 days', now() + interval '1 day') AS created;
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT CASE WHEN g % 2 = 0 THEN '00000000-0000-0000-0000-0000000000a1' ELSE '00000000-0000-0000-0000-0000000000a2' END::uuid,
       '00000000-0000-0000-0000-00000000000a',
       (ARRAY['refresh', 'validate', 'revoke'])[1 + g % 3],
       (ARRAY['success', 'failure', 'pending', 'success'])[1 + g % 4],
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'oauth' END,
       now() - g * interval '37 minutes'
  FROM generate_series(1, 1557) AS g;   -- 1557 * 37 min ≈ 40 days
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b',
       'validate', CASE WHEN g % 2 = 0 THEN 'success' ELSE 'failure' END, 'api_key',
       now() - g * interval '53 minutes'
  FROM generate_series(1, 1086) AS g;
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method, created_at) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'rotate', 'success', 'edge',
     now() - interval '30 days' - interval '2 seconds'),
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'rotate', 'failure', 'edge',
     now() - interval '30 days' + interval '1 minute');

-- Raw log rows the summary reads (this transaction's table statistics of the log's partitions,
-- which count the rows read by the functions the view calls as well).
CREATE FUNCTION pg_temp.raw_rows_read() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    before bigint;
    after bigint;
BEGIN
    SELECT coalesce(sum(s.seq_tup_read + coalesce(s.idx_tup_fetch, 0)), 0) INTO before
      FROM pg_stat_xact_user_tables s JOIN pg_partition_tree('mcp.token_audit_log') t ON t.relid = s.relid;
    PERFORM * FROM mcp.token_audit_summary;
    SELECT coalesce(sum(s.seq_tup_read + coalesce(s.idx_tup_fetch, 0)), 0) INTO after
      FROM pg_stat_xact_user_tables s JOIN pg_partition_tree('mcp.token_audit_log') t ON t.relid = s.relid;
    RETURN after - before;
END
$$;

-- 1. nothing rolled up yet (every past day is "dirty"): raw rows only
SELECT count(*) > 0 AS has_dirty_days FROM token_audit_dirty_days;
SELECT * FROM pg_temp.compare();
SELECT pg_temp.raw_rows_read() >= (SELECT total FROM pg_temp.compare()) AS reads_every_row,
       mcp_internal.audit_window_valid() AS window_table_used;

-- 2. rolled up: the closed days of the window now come from the rollup
SELECT mcp_internal.refresh_audit_rollup() AS days_rolled_up;
-- (today may be marked too: rows of its past hours arrived after those hours were over)
SELECT (SELECT count(*) FROM token_audit_dirty_days WHERE day < (now() AT TIME ZONE 'UTC')::date) AS dirty_days,
       (SELECT watermark = (now() AT TIME ZONE 'UTC')::date FROM token_audit_rollup_state) AS watermark_is_today,
       (SELECT count(DISTINCT day) FROM token_audit_daily) AS rolled_days;
SELECT * FROM pg_temp.compare();
-- now only the boundary day and today are read raw: at most ~2 days (66 rows a day) of 1986
SELECT pg_temp.raw_rows_read() BETWEEN 1 AND 250 AS reads_two_days_at_most, mcp_internal.audit_window_valid() AS window_table_used,
       (SELECT count(*) FROM token_audit_window) AS window_rows;
-- the window table covers all but the first maintenance interval and five minutes of the
-- window (an hour and five minutes at the default interval) and its last ten seconds (more
-- only while a transaction older than that is running)
SELECT window_lo - (now() - interval '30 days') BETWEEN interval '0' AND interval '2 hours' AS starts_within_two_hours,
       now() - window_hi < interval '5 minutes' AS ends_within_five_minutes
  FROM token_audit_rollup_state;
-- the edge rows: the one inside the window counts, the one just outside does not
SELECT total_operations, success_count, failure_count FROM token_audit_summary WHERE method = 'edge';

-- 3. a late row in a rolled-up day, and a deleted one: those days become dirty and are read raw
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method, created_at) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'refresh', 'success', 'late',
     now() - interval '10 days');
DELETE FROM token_audit_log WHERE audit_id = (SELECT min(audit_id) FROM token_audit_log
                                                WHERE created_at < now() - interval '15 days'
                                                  AND created_at > now() - interval '16 days');
SELECT count(*) AS dirty_days, mcp_internal.audit_window_valid() AS window_table_used FROM token_audit_dirty_days
 WHERE day < (now() AT TIME ZONE 'UTC')::date;
SELECT * FROM pg_temp.compare();
SELECT mcp_internal.refresh_audit_rollup() AS days_recomputed;
SELECT count(*) AS dirty_days, mcp_internal.audit_window_valid() AS window_table_used FROM token_audit_dirty_days
 WHERE day < (now() AT TIME ZONE 'UTC')::date;
SELECT * FROM pg_temp.compare();

-- 4. retention does not change it: dropping days older than 31 days leaves the window alone
SELECT * FROM pg_temp.compare() \gset before_
SELECT mcp.cleanup_old_token_audit_logs('31 days') > 0 AS removed_some;
SELECT mcp_internal.audit_window_valid() AS window_table_used;
SELECT * FROM pg_temp.compare();
SELECT total = :before_total AS same_total_after_retention FROM pg_temp.compare();
-- and after a maintenance run
SELECT (mcp.run_maintenance()->>'skipped')::boolean AS skipped;
SELECT * FROM pg_temp.compare();

-- 5. a retention shorter than the window: the summary still equals the aggregate over what is left
SELECT mcp.cleanup_old_token_audit_logs('20 days') > 0 AS removed_some;
SELECT mcp_internal.audit_window_valid() AS window_table_used;
SELECT * FROM pg_temp.compare();
SELECT mcp_internal.refresh_audit_rollup() >= 0 AS refreshed;
SELECT mcp_internal.audit_window_valid() AS window_table_used;
SELECT * FROM pg_temp.compare();

-- 5b. rows of a transaction's own time (created_at = now(), as mcp.log_token_operation writes
-- them) leave no dirty mark however late in the transaction they are written (one that
-- straddles an hour or a day does not spoil the window table); a row dated before the start
-- of its transaction marks its day and the window table is not used until the next rebuild
SELECT coalesce(sum(gen), 0) AS marks_before FROM token_audit_dirty_days \gset
BEGIN;
SELECT pg_sleep(0.1);
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'refresh', 'success', 'own time');
COMMIT;
SELECT (SELECT coalesce(sum(gen), 0) FROM token_audit_dirty_days) = :marks_before AS no_new_mark,
       mcp_internal.audit_window_valid() AS window_table_used;
SELECT * FROM pg_temp.compare();
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method, created_at) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'refresh', 'success', 'earlier',
     now() - interval '1 second');
SELECT coalesce(sum(gen), 0) <> :marks_before AS marked, mcp_internal.audit_window_valid() AS window_table_used
  FROM token_audit_dirty_days;
SELECT * FROM pg_temp.compare();
SELECT mcp_internal.refresh_audit_rollup() >= 0 AS refreshed;
SELECT mcp_internal.audit_window_valid() AS window_table_used;
SELECT * FROM pg_temp.compare();
-- an empty method and a NULL one are different groups, in the window table and in the raw
-- rows merged into it
INSERT INTO token_audit_log (instance_id, user_id, operation, status, method) VALUES
    ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', 'validate', 'success', ''),
    ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', 'validate', 'failure', NULL);
SELECT mcp_internal.audit_window_valid() AS window_table_used;
SELECT * FROM pg_temp.compare();
SELECT method IS NULL AS method_null, method = '' AS method_empty, total_operations > 1 AS in_window_too
  FROM token_audit_summary
 WHERE instance_id = '00000000-0000-0000-0000-0000000000a2' AND operation = 'validate'
   AND (method IS NULL OR method = '') ORDER BY 1;

-- 6. the tenant sees only its rows, and they equal the plain aggregate under RLS
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', true) IS NOT NULL AS tenant_set;
SET LOCAL ROLE mcp_app;
SELECT DISTINCT user_id FROM token_audit_summary;
SELECT (SELECT count(*) FROM (SELECT * FROM token_audit_summary EXCEPT ALL
            SELECT l.instance_id, l.user_id, l.operation, l.method, count(*), count(*) FILTER (WHERE l.status = 'success'),
                   count(*) FILTER (WHERE l.status = 'failure'),
                   round(100.0 * count(*) FILTER (WHERE l.status = 'success') / count(*), 2), min(l.created_at), max(l.created_at)
              FROM token_audit_log l WHERE l.created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4) x) AS differences,
       (SELECT sum(total_operations) FROM token_audit_summary) > 0 AS has_rows;
ROLLBACK;
BEGIN;
SET LOCAL ROLE mcp_app;
SELECT count(*) AS rows_without_tenant FROM token_audit_summary;
ROLLBACK;

-- clean up for the following tests
\i test/include/reset_audit_log.sql
DELETE FROM users;
