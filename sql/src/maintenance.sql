-- ===========================================================================================
-- Maintenance: one call does instance expiry, the service counters, the audit rollup and
-- window table, partition upkeep and retention. The background worker (src/pg/
-- maintenance_worker.cpp) calls it every mcp_platform.maintenance_interval; without the
-- worker, call it from cron or pg_cron.
-- ===========================================================================================

-- Maintenance jobs serialise on one row each of this table. No application role can take
-- these locks (no privilege on the table, no USAGE on its schema), unlike advisory locks,
-- which any login could hold to switch maintenance off.
CREATE TABLE IF NOT EXISTS mcp_internal.maintenance_lock (
    job text NOT NULL,
    CONSTRAINT maintenance_lock_pkey PRIMARY KEY (job)
);
COMMENT ON TABLE mcp_internal.maintenance_lock IS 'one row per maintenance job, locked while it runs';
INSERT INTO mcp_internal.maintenance_lock (job)
VALUES ('maintenance'), ('cleanup'), ('partitions'), ('rollup')
    ON CONFLICT (job) DO NOTHING;
REVOKE ALL ON mcp_internal.maintenance_lock FROM PUBLIC, mcp_app, mcp_admin;
-- registered for pg_dump like every extension table, with no rows: CREATE EXTENSION makes them
SELECT pg_catalog.pg_extension_config_dump('mcp_internal.maintenance_lock', 'WHERE false');

-- Locks a job's row until the end of the transaction: waits for it (wait = true), or returns
-- false at once when another session holds it.
CREATE OR REPLACE FUNCTION mcp_internal.lock_job(job text, wait boolean) RETURNS boolean
    LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF wait THEN
        PERFORM 1 FROM mcp_internal.maintenance_lock l WHERE l.job = lock_job.job FOR UPDATE;
    ELSE
        PERFORM 1 FROM mcp_internal.maintenance_lock l WHERE l.job = lock_job.job FOR UPDATE SKIP LOCKED;
    END IF;
    IF FOUND THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mcp_internal.maintenance_lock l WHERE l.job = lock_job.job) THEN
        RAISE EXCEPTION 'unknown maintenance job "%"', job USING ERRCODE = '22023';
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION mcp_internal.lock_job(text, boolean) IS
    'locks a maintenance job until the end of the transaction (false: another session holds it)';
REVOKE ALL ON FUNCTION mcp_internal.lock_job(text, boolean) FROM PUBLIC, mcp_app, mcp_admin;
-- One maintenance pass: instance expiry (mcp.expire_instances()), the legacy service counters
-- of mcp_table (mcp.refresh_service_stats()), rollup upkeep, partition upkeep (rows of the DEFAULT partition moved into
-- their days, mcp_platform.audit_partitions_ahead days made ahead) and retention. Safe to run
-- concurrently with itself: a second caller returns at once with "skipped": true. Each step
-- runs on its own (a subtransaction): a step that fails is logged as a WARNING and named in
-- "failed_steps" with its error, and the other steps still run.
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
    failed jsonb := '{}';
    step text;
BEGIN
    -- On Citus the coordinator maintains the whole cluster: a worker's run does nothing.
    IF mcp_internal.citus_worker() THEN
        RETURN jsonb_build_object('skipped', true, 'citus_worker', true);
    END IF;
    IF NOT mcp_internal.lock_job('maintenance', false) THEN
        RETURN jsonb_build_object('skipped', true);
    END IF;
    -- Creating a partition locks the DEFAULT partition until commit, and cleanup locks the
    -- whole log until commit: both come last, so they are held only for a moment.
    FOREACH step IN ARRAY ARRAY['expire_instances', 'service_stats', 'audit_rollup', 'audit_partitions',
                                'audit_retention'] LOOP
        BEGIN
            CASE step
            WHEN 'expire_instances' THEN
                expired := mcp.expire_instances();
            WHEN 'service_stats' THEN
                services := mcp.refresh_service_stats();
            WHEN 'audit_rollup' THEN
                rolled := mcp_internal.refresh_audit_rollup();
            WHEN 'audit_partitions' THEN
                SELECT min(l.created_at), max(l.created_at) INTO lo, hi FROM mcp.token_audit_log_default l;
                IF lo IS NOT NULL THEN
                    created := created + mcp.ensure_audit_partitions(lo, hi);
                END IF;
                created := created + mcp.ensure_audit_partitions(now(), now() + make_interval(days => ahead));
            WHEN 'audit_retention' THEN
                removed := mcp.cleanup_old_token_audit_logs(NULL,
                    mcp_internal.setting('mcp_platform.audit_retention_trim')::boolean);
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'mcp_platform maintenance step % failed: %', step, SQLERRM;
            failed := failed || jsonb_build_object(step, SQLERRM);
        END;
    END LOOP;
    RETURN jsonb_build_object('skipped', false, 'partitions_created', created, 'rollup_days', rolled,
                              'expired_instances', expired, 'services_refreshed', services,
                              'removed_audit_rows', removed, 'failed_steps', failed);
END
$$;
COMMENT ON FUNCTION mcp.run_maintenance() IS
    'one maintenance pass (expiry, service counters, audit rollup, partitions, retention); returns what it did as jsonb';
REVOKE ALL ON FUNCTION mcp.run_maintenance() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.run_maintenance() TO mcp_admin;
