-- mcp.cleanup_old_token_audit_logs: expired day partitions are dropped whole, the
-- boundary day is trimmed, the exact number of removed rows is returned, nothing younger than
-- the retention is touched. Times are relative to now().
\set VERBOSITY terse
SET search_path = mcp, public;

CREATE FUNCTION pg_temp.day_partition(ts timestamptz) RETURNS regclass LANGUAGE sql AS $$
    SELECT to_regclass('mcp.token_audit_log_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDD'))
$$;
-- rows: n rows of one instance at one moment
CREATE FUNCTION pg_temp.add_rows(n int, at timestamptz, op text DEFAULT 'refresh') RETURNS void LANGUAGE sql AS $$
    INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, created_at)
    SELECT '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', op,
           CASE WHEN g % 3 = 0 THEN 'failure' ELSE 'success' END, 'oauth', at
      FROM generate_series(1, n) AS g
$$;

-- Day partitions from 100 days ago to 85 days ago, and today's.
SELECT mcp.ensure_audit_partitions(now() - interval '100 days', now() - interval '85 days') AS created;
SELECT mcp.ensure_audit_partitions(now(), now()) AS created_today;
SELECT pg_temp.add_rows(3, now() - interval '100 days');                       -- expired, own partition
SELECT pg_temp.add_rows(4, now() - interval '91 days');                        -- expired, own partition
SELECT pg_temp.add_rows(5, now() - interval '90 days' - interval '1 minute');  -- expired, at the boundary
SELECT pg_temp.add_rows(6, now() - interval '90 days' + interval '1 hour');    -- kept, at the boundary
SELECT pg_temp.add_rows(7, now() - interval '89 days');                        -- kept
SELECT pg_temp.add_rows(8, now());                                             -- kept, today
-- the DEFAULT partition: an expired row of a day without partition, and a young one
SELECT pg_temp.add_rows(2, now() - interval '120 days');
SELECT pg_temp.add_rows(1, now() - interval '20 days');
SELECT count(*) AS rows_in_default FROM ONLY token_audit_log_default;

SELECT count(*) AS total, count(*) FILTER (WHERE created_at < now() - interval '90 days') AS expired
  FROM token_audit_log;
SELECT count(*) AS expired_day_partitions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'mcp.token_audit_log'::regclass AND c.relname ~ '^token_audit_log_p'
   AND CASE WHEN c.relname ~ '^token_audit_log_p[0-9]{8}$'
            THEN to_date(substr(c.relname, 18), 'YYYYMMDD') < ((now() - interval '90 days') AT TIME ZONE 'UTC')::date END;

-- the exact count: 3 + 4 + 5 + 2
SELECT mcp.cleanup_old_token_audit_logs('90 days') AS removed;
SELECT count(*) AS total, count(*) FILTER (WHERE created_at < now() - interval '90 days') AS expired,
       count(*) FILTER (WHERE created_at >= now() - interval '90 days' + interval '30 minutes'
                          AND created_at < now() - interval '88 days') AS boundary_and_next_kept
  FROM token_audit_log;
-- whole partitions are gone (dropped, not emptied); the younger ones are all still there
SELECT count(*) AS expired_day_partitions_left FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'mcp.token_audit_log'::regclass AND c.relname ~ '^token_audit_log_p'
   AND CASE WHEN c.relname ~ '^token_audit_log_p[0-9]{8}$'
            THEN to_date(substr(c.relname, 18), 'YYYYMMDD') < ((now() - interval '90 days') AT TIME ZONE 'UTC')::date END;
SELECT pg_temp.day_partition(now() - interval '100 days') IS NULL AS dropped_100,
       pg_temp.day_partition(now() - interval '91 days') IS NULL AS dropped_91,
       pg_temp.day_partition(now() - interval '89 days') IS NOT NULL AS kept_89,
       pg_temp.day_partition(now() - interval '85 days') IS NOT NULL AS kept_85,
       pg_temp.day_partition(now()) IS NOT NULL AS kept_today;
SELECT count(*) AS rows_in_default FROM ONLY token_audit_log_default;
-- a second run finds nothing
SELECT mcp.cleanup_old_token_audit_logs('90 days') AS removed_again;

-- ---- the default retention comes from mcp_platform.audit_retention --------------------------
SHOW mcp_platform.audit_retention;
SELECT pg_temp.add_rows(9, now() - interval '95 days');   -- into the DEFAULT partition (its day was dropped)
SET mcp_platform.audit_retention = '100 days';
SELECT mcp.cleanup_old_token_audit_logs() AS removed_with_100_days;
SET mcp_platform.audit_retention = '94 days';
SELECT mcp.cleanup_old_token_audit_logs() AS removed_with_94_days;
SELECT mcp.cleanup_old_token_audit_logs(NULL) AS removed_with_null;
RESET mcp_platform.audit_retention;

-- ---- invalid retention ----------------------------------------------------------------------
SELECT mcp.cleanup_old_token_audit_logs('0 days');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.cleanup_old_token_audit_logs('-1 day');
\echo :LAST_ERROR_SQLSTATE
SET mcp_platform.audit_retention = 'ninety days';
SELECT mcp.cleanup_old_token_audit_logs();
\echo :LAST_ERROR_SQLSTATE
RESET mcp_platform.audit_retention;

-- ---- a short retention trims today's own partition too, row by row, exactly -----------------
SELECT count(*) AS rows_before FROM token_audit_log;
SELECT mcp.cleanup_old_token_audit_logs('1 microsecond') AS removed_all_older_rows;
SELECT count(*) AS rows_after FROM token_audit_log;
-- a query that has the log open while cleanup wants to drop one of its partitions gets a
-- clean error (55006; the message names the partition, so only the code is shown), and the
-- session goes on
SELECT pg_temp.add_rows(1, now() - interval '100 days');
SELECT mcp.ensure_audit_partitions(now() - interval '100 days', now() - interval '100 days') AS created;
\set VERBOSITY sqlstate
SELECT mcp.cleanup_old_token_audit_logs('90 days') + count(*) FROM token_audit_log;
\set VERBOSITY terse
SELECT 1 AS session_still_works;

-- ---- it runs as the admin role, inside a transaction, and releases nothing early ------------
SELECT pg_temp.add_rows(2, now() - interval '200 days');
SELECT mcp.ensure_audit_partitions(now() - interval '200 days', now() - interval '200 days') AS created;
BEGIN;
SET LOCAL ROLE mcp_admin;
SELECT mcp.cleanup_old_token_audit_logs('90 days') AS removed_by_admin;
-- the log is locked until commit (that is why maintenance calls cleanup last)
SELECT mode FROM pg_locks WHERE relation = 'mcp.token_audit_log'::regclass AND pid = pg_backend_pid()
   AND mode = 'AccessExclusiveLock';
-- lock_timeout was set for the drop only
SHOW lock_timeout;
COMMIT;

-- ---- the row counts maintenance records ------------------------------------------------------
-- Maintenance records each day's row count (days of the last 31 from the rollup, older days by
-- a recount when they are marked dirty); cleanup uses a recorded count while its day has no
-- dirty mark, and counts the partition otherwise.
SELECT mcp.ensure_audit_partitions(now() - interval '150 days', now() - interval '147 days') AS created;
SELECT pg_temp.add_rows(5, now() - interval '150 days');
SELECT pg_temp.add_rows(6, now() - interval '149 days');
SELECT pg_temp.add_rows(7, now() - interval '148 days');
SELECT pg_temp.add_rows(8, now() - interval '147 days');
SELECT count(*) AS old_days_marked FROM token_audit_dirty_days WHERE day < (now() AT TIME ZONE 'UTC')::date - 140;
SELECT mcp_internal.refresh_audit_rollup() >= 0 AS refreshed;
SELECT count(*) AS old_days_marked FROM token_audit_dirty_days WHERE day < (now() AT TIME ZONE 'UTC')::date - 140;
SELECT (now() AT TIME ZONE 'UTC')::date - day AS days_ago, row_count FROM token_audit_day_rows
 WHERE day < (now() AT TIME ZONE 'UTC')::date - 140 ORDER BY day;
-- 150 days ago: a row written with triggers disabled leaves no mark, so the recorded count (5)
-- is what cleanup returns for that day, not the 6 rows now there (README: write audit rows
-- with triggers enabled)
SET session_replication_role = replica;
SELECT pg_temp.add_rows(1, now() - interval '150 days');
RESET session_replication_role;
-- 149 days ago: a late row marks the day, which is then counted: 7
SELECT pg_temp.add_rows(1, now() - interval '149 days');
-- 148 days ago: the partition truncated directly (no mark, but nothing left): 0
DO $$ BEGIN EXECUTE format('TRUNCATE %s', pg_temp.day_partition(now() - interval '148 days')); END $$;
-- 147 days ago: unchanged, the recorded 8
SELECT mcp.cleanup_old_token_audit_logs('146 days') AS removed_5_7_0_8;
SELECT count(*) AS day_counts_left FROM token_audit_day_rows WHERE day < (now() AT TIME ZONE 'UTC')::date - 140;

-- ---- whole days only: trim_boundary => false, mcp_platform.audit_retention_trim = off --------
SELECT mcp.ensure_audit_partitions(now() - interval '61 days', now() - interval '58 days') AS created;
SELECT pg_temp.add_rows(2, date_trunc('day', now() - interval '59 days', 'UTC') - interval '1 hour');  -- the day before the boundary day
SELECT pg_temp.add_rows(3, date_trunc('day', now() - interval '59 days', 'UTC'));                      -- the boundary day, expired
SELECT pg_temp.add_rows(4, now() - interval '58 days');                                                -- kept
SELECT mcp.cleanup_old_token_audit_logs('59 days', trim_boundary => false) AS removed_whole_days_only;
SELECT count(*) FILTER (WHERE created_at < now() - interval '59 days') AS expired_left_in_boundary_day,
       count(*) FILTER (WHERE created_at >= now() - interval '59 days' AND created_at < now() - interval '50 days') AS kept
  FROM token_audit_log;
SELECT mcp.cleanup_old_token_audit_logs('59 days') AS removed_by_trim;
-- maintenance follows mcp_platform.audit_retention_trim
SELECT mcp.ensure_audit_partitions(now() - interval '45 days', now() - interval '45 days') AS created;
SELECT pg_temp.add_rows(5, date_trunc('day', now() - interval '45 days', 'UTC'));
SET mcp_platform.audit_retention = '45 days';
SET mcp_platform.audit_retention_trim = off;
SELECT (mcp.run_maintenance()->>'removed_audit_rows')::bigint AS removed_by_maintenance_whole_days;
SET mcp_platform.audit_retention_trim = on;
SELECT (mcp.run_maintenance()->>'removed_audit_rows')::bigint AS removed_by_maintenance_trimmed;
RESET mcp_platform.audit_retention;
RESET mcp_platform.audit_retention_trim;

-- ---- not under REPEATABLE READ: its count could miss rows committed after the snapshot ------
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT mcp.cleanup_old_token_audit_logs('90 days');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- clean up for the following tests
\i test/include/reset_audit_log.sql
