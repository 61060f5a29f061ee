-- ===========================================================================================
-- Maintenance: one call does instance expiry, the service counters, the audit rollup and
-- window table, partition upkeep and retention. The background worker (src/pg/
-- maintenance_worker.cpp) calls it every mcp_platform.maintenance_interval; without the
-- worker, call it from cron or pg_cron.
-- ===========================================================================================
-- One maintenance pass: instance expiry (mcp.expire_instances()), the legacy service counters
-- of mcp_table (mcp.refresh_service_stats()), rollup upkeep, partition upkeep (rows of the DEFAULT partition moved into
-- their days, mcp_platform.audit_partitions_ahead days made ahead) and retention. Safe to run
-- concurrently with itself: a second caller returns at once with "skipped": true.
-- Maintenance never makes an application transaction wait for long, nor closes a deadlock cycle
-- with one: a lock it cannot get within lock_timeout fails this run (the worker logs it and
-- tries again at its next interval) before the deadlock detector would pick a victim.
CREATE OR REPLACE FUNCTION mcp.run_maintenance() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    SET lock_timeout = '500ms'
AS $$
DECLARE
    ahead integer := mcp_internal.setting('mcp_platform.audit_partitions_ahead')::integer;
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
    rolled integer;
    expired bigint;
    services bigint;
    removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1835233392, 1) THEN
        RETURN jsonb_build_object('skipped', true);
    END IF;
    expired := mcp.expire_instances();
    services := mcp.refresh_service_stats();
    rolled := mcp_internal.refresh_audit_rollup();
    -- Creating a partition locks the DEFAULT partition until commit, and cleanup locks the
    -- whole log until commit: both come last, so they are held only for a moment.
    SELECT min(l.created_at), max(l.created_at) INTO lo, hi FROM mcp.token_audit_log_default l;
    IF lo IS NOT NULL THEN
        created := created + mcp.ensure_audit_partitions(lo, hi);
    END IF;
    created := created + mcp.ensure_audit_partitions(now(), now() + make_interval(days => ahead));
    removed := mcp.cleanup_old_token_audit_logs(NULL,
        mcp_internal.setting('mcp_platform.audit_retention_trim')::boolean);
    RETURN jsonb_build_object('skipped', false, 'partitions_created', created, 'rollup_days', rolled,
                              'expired_instances', expired, 'services_refreshed', services,
                              'removed_audit_rows', removed);
END
$$;
COMMENT ON FUNCTION mcp.run_maintenance() IS
    'one maintenance pass (expiry, service counters, audit rollup, partitions, retention); returns what it did as jsonb';
REVOKE ALL ON FUNCTION mcp.run_maintenance() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.run_maintenance() TO mcp_admin;
