-- ===========================================================================================
-- token_audit_summary: the 30-day statistics per instance, operation and method, equal to the
-- plain aggregate of the log but read from the window table or the daily rollup plus a few
-- raw rows (audit.sql keeps those up to date).
-- ===========================================================================================

-- A row of token_audit_summary, as both of its branches return it.
DO $type$
BEGIN
    IF pg_catalog.to_regtype('mcp_internal.token_audit_summary_row') IS NULL THEN
        CREATE TYPE mcp_internal.token_audit_summary_row AS (
            instance_id uuid, user_id uuid, operation varchar, method varchar, total_operations bigint,
            success_count bigint, failure_count bigint, success_rate numeric,
            first_operation_at timestamptz, last_operation_at timestamptz);
    END IF;
END
$type$;

-- The rows of the summary while the window table is valid (C, src/pg/audit_summary.cpp): the
-- window table's rows, each merged with the group of the raw rows of [now() - 30 days,
-- window_lo) and [window_hi, ∞) that it has (one query over the log, its time ranges bound as
-- constants), plus the raw groups without a window row. SECURITY INVOKER: the caller's RLS
-- applies to both.
CREATE OR REPLACE FUNCTION mcp_internal.audit_summary_windowed() RETURNS SETOF mcp_internal.token_audit_summary_row
    AS 'MODULE_PATHNAME', 'mcp_audit_summary_windowed'
    LANGUAGE C STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION mcp_internal.audit_summary_windowed() IS
    'rows of token_audit_summary while the window table is valid';
REVOKE ALL ON FUNCTION mcp_internal.audit_summary_windowed() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp_internal.audit_summary_windowed() TO mcp_app, mcp_admin;

-- The raw-log parts of the summary when the window table is not valid (see the view below),
-- each aggregated per group. Each part is planned with its own time range as constants, so
-- only the one or two partitions it reads are planned (the view would otherwise plan every
-- partition of the log for every part). `wm` is the rollup watermark, `part` the raw aggregate
-- (mcp_internal.audit_aggregate_sql) with two %L placeholders for the range: both come from
-- the caller, audit_summary_from_rollup, whose body is bound at creation, so no reader needs
-- access to schema mcp_internal. SECURITY INVOKER: the log's RLS applies to the caller.
CREATE OR REPLACE FUNCTION mcp_internal.audit_summary_raw_parts(wm timestamptz, part text)
    RETURNS TABLE (instance_id uuid, user_id uuid, operation varchar, method varchar, total bigint,
                   success bigint, failure bigint, first_at timestamptz, last_at timestamptz)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := now() - interval '30 days';
    lo_day_end timestamptz := date_trunc('day', now() - interval '30 days', 'UTC') + interval '24 hours';
    d date;
BEGIN
    -- edge: the boundary day from the window start on, below the watermark
    IF least(lo_day_end, wm) > lo THEN
        RETURN QUERY EXECUTE format(part, lo, least(lo_day_end, wm));
    END IF;
    -- dirty days inside the rolled-up range
    FOR d IN SELECT x.day FROM mcp.token_audit_dirty_days x
              WHERE x.day > (lo AT TIME ZONE 'UTC')::date AND x.day < (wm AT TIME ZONE 'UTC')::date
              ORDER BY x.day LOOP
        RETURN QUERY EXECUTE format(part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
    -- tail: from the watermark (or the window start) on
    RETURN QUERY EXECUTE format(part, greatest(lo, wm), 'infinity'::timestamptz);
END
$$;
COMMENT ON FUNCTION mcp_internal.audit_summary_raw_parts(timestamptz, text) IS
    'raw-log parts of the summary when the window table is not valid, per group';
REVOKE ALL ON FUNCTION mcp_internal.audit_summary_raw_parts(timestamptz, text) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp_internal.audit_summary_raw_parts(timestamptz, text) TO mcp_app, mcp_admin;

-- The rows of the summary when the window table is not valid: the daily rollup plus the raw
-- parts, summed per group. SECURITY INVOKER (RLS of the caller).
CREATE OR REPLACE FUNCTION mcp_internal.audit_summary_from_rollup() RETURNS SETOF mcp_internal.token_audit_summary_row
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
SELECT p.instance_id, p.user_id, p.operation, p.method, sum(p.total)::bigint,
       sum(p.success)::bigint, sum(p.failure)::bigint,
       round(100.0 * sum(p.success) / sum(p.total), 2), min(p.first_at), max(p.last_at)
  FROM (SELECT r.instance_id, r.user_id, r.operation, r.method, r.total, r.success, r.failure,
               r.first_at, r.last_at
          FROM mcp.token_audit_daily r
         WHERE r.day > ((now() - interval '30 days') AT TIME ZONE 'UTC')::date
           AND r.day < (mcp_internal.audit_rollup_watermark() AT TIME ZONE 'UTC')::date
           AND NOT EXISTS (SELECT 1 FROM mcp.token_audit_dirty_days x WHERE x.day = r.day)
        UNION ALL
        SELECT q.instance_id, q.user_id, q.operation, q.method, q.total, q.success, q.failure,
               q.first_at, q.last_at
          FROM mcp_internal.audit_summary_raw_parts(
                   mcp_internal.audit_rollup_watermark(),
                   mcp_internal.audit_aggregate_sql('l.created_at >= %L AND l.created_at < %L')) q) AS p
 GROUP BY p.instance_id, p.user_id, p.operation, p.method;
END;
COMMENT ON FUNCTION mcp_internal.audit_summary_from_rollup() IS
    'rows of token_audit_summary from the daily rollup and the raw parts';
REVOKE ALL ON FUNCTION mcp_internal.audit_summary_from_rollup() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp_internal.audit_summary_from_rollup() TO mcp_app, mcp_admin;

-- 30-day operation statistics (security_invoker: RLS shows the current tenant's rows only).
-- Equal to the plain aggregate
--     SELECT instance_id, user_id, operation, method, count(*), … FROM mcp.token_audit_log
--      WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4
-- and built from disjoint parts of the window [now() - 30 days, now()], in one of two ways
-- (only the branch whose condition holds runs):
-- When the window table is valid (mcp_internal.audit_window_valid()), mcp_internal.audit_summary_windowed():
--   window  one row per group for [window_lo, window_hi), from token_audit_window, merged with
--   raw     the groups of the raw rows of [now() - 30 days, window_lo) and from window_hi on
-- Otherwise, summed per group:
--   rollup  the whole days after the boundary day and before the watermark, not dirty, from
--           the daily rollup
--   edge    raw rows of the boundary day from now() - 30 days on (below the watermark)
--   dirty   raw rows of dirty days inside the rolled-up range
--   tail    raw rows from the watermark (or the window start) on
-- (the raw parts from mcp_internal.audit_summary_raw_parts()).
-- Both branches are functions, so the view costs next to nothing to plan, and only the branch
-- whose condition holds runs.
CREATE OR REPLACE VIEW mcp.token_audit_summary WITH (security_invoker = true) AS
SELECT s.instance_id, s.user_id, s.operation, s.method, s.total_operations, s.success_count,
       s.failure_count, s.success_rate, s.first_operation_at, s.last_operation_at
  FROM mcp_internal.audit_summary_windowed() s
 WHERE (SELECT mcp_internal.audit_window_valid())
UNION ALL
SELECT r.instance_id, r.user_id, r.operation, r.method, r.total_operations, r.success_count,
       r.failure_count, r.success_rate, r.first_operation_at, r.last_operation_at
  FROM mcp_internal.audit_summary_from_rollup() r
 WHERE NOT (SELECT mcp_internal.audit_window_valid());
COMMENT ON VIEW mcp.token_audit_summary IS
    'per instance, operation and method over the last 30 days: totals, successes, failures, success rate, first and last time (current tenant only)';
REVOKE ALL ON mcp.token_audit_summary FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT ON mcp.token_audit_summary TO mcp_app, mcp_admin;
