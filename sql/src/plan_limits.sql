-- ===========================================================================================
-- Plan-limit enforcement: the C trigger mcp_internal.enforce_plan_limit() on
-- mcp_service_table keeps user_plans.active_instances (the per-user count of rows with
-- status = 'active') exact, and refuses an activation beyond the effective plan limit with
-- MC001 (src/pg/plan_limits.cpp has the concurrency argument). Then the per-service
-- statistics, counter verification, and the instance API.
-- ===========================================================================================
-- ---- per-service usage statistics without a hot row --------------------------------------
-- Nothing per service is written when an instance is created: mcp.service_stats counts the
-- rows (exact by construction; instance creations for one service never meet on a row).
-- Only deleted instances need remembering, for total_instances_created: a statement-level
-- trigger adds each statement's deletions per service to one of 64 shard rows (chosen by
-- backend), so concurrent deletions rarely meet either. Not a tenant table (no user data).
CREATE TABLE IF NOT EXISTS mcp.service_counters (
    mcp_service_id uuid     NOT NULL,
    shard          smallint NOT NULL,
    deleted        bigint   NOT NULL DEFAULT 0,
    CONSTRAINT service_counters_pkey PRIMARY KEY (mcp_service_id, shard),
    CONSTRAINT service_counters_service_fkey FOREIGN KEY (mcp_service_id)
        REFERENCES mcp.mcp_table (mcp_service_id) ON DELETE CASCADE
);
COMMENT ON TABLE mcp.service_counters IS 'instances deleted per service (64 shard rows each), for total_instances_created';
REVOKE ALL ON mcp.service_counters FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT ON mcp.service_counters TO mcp_app, mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp.service_counters', '');

CREATE OR REPLACE FUNCTION mcp_internal.count_deleted_instances() RETURNS trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME <> 'mcp_service_table' THEN
        -- a Citus shard: service_counters is a reference table, which a shard cannot write
        -- (docs/citus.md: total_instances_created counts the existing rows there)
        RETURN NULL;
    END IF;
    INSERT INTO mcp.service_counters AS c (mcp_service_id, shard, deleted)
    SELECT d.mcp_service_id, (pg_catalog.pg_backend_pid() % 64)::smallint, count(*)
      FROM deleted_rows d
      JOIN mcp.mcp_table t ON t.mcp_service_id = d.mcp_service_id
     GROUP BY d.mcp_service_id
    ON CONFLICT (mcp_service_id, shard) DO UPDATE SET deleted = c.deleted + excluded.deleted;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION mcp_internal.count_deleted_instances() IS
    'AFTER DELETE statement trigger of mcp_service_table: deleted instances per service';
REVOKE ALL ON FUNCTION mcp_internal.count_deleted_instances() FROM PUBLIC, mcp_app, mcp_admin;
CREATE OR REPLACE TRIGGER mcp_service_table_count_deleted
    AFTER DELETE ON mcp.mcp_service_table
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mcp_internal.count_deleted_instances();

-- ---- the enforcement trigger ---------------------------------------------------------------
CREATE OR REPLACE FUNCTION mcp_internal.enforce_plan_limit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'mcp_enforce_plan_limit'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.enforce_plan_limit() IS
    'row trigger of mcp_service_table: keeps the active-instance counter and refuses activations beyond the plan (MC001)';
REVOKE ALL ON FUNCTION mcp_internal.enforce_plan_limit() FROM PUBLIC, mcp_app, mcp_admin;

-- AFTER triggers fire after the row's foreign-key checks (RI_ConstraintTrigger_* sort first),
-- see the final row (after every BEFORE trigger), and may update the user's other rows
-- (the expiry sweep) without upsetting a multi-row UPDATE that is still running.
CREATE OR REPLACE TRIGGER mcp_service_table_plan_limit_insert
    AFTER INSERT ON mcp.mcp_service_table
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.enforce_plan_limit();
-- Only status and expires_at matter: record_usage and other column updates never fire it.
CREATE OR REPLACE TRIGGER mcp_service_table_plan_limit_update
    AFTER UPDATE OF status, expires_at ON mcp.mcp_service_table
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION mcp_internal.enforce_plan_limit();
CREATE OR REPLACE TRIGGER mcp_service_table_plan_limit_delete
    AFTER DELETE ON mcp.mcp_service_table
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.enforce_plan_limit();

-- ---- service statistics --------------------------------------------------------------------
-- Exact per-service counts: total_instances_created (every instance ever inserted: the rows
-- plus the deleted ones) and active_instances_count (status 'active' and not past
-- expires_at). Counted from the rows with the rights of the function's owner (aggregates
-- across tenants; no tenant row is shown): one index scan per service.
CREATE OR REPLACE FUNCTION mcp_internal.service_stats_rows()
    RETURNS TABLE (mcp_service_id uuid, mcp_service_name varchar, is_active boolean,
                   total_instances_created bigint, active_instances_count bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF mcp_internal.is_citus_table('mcp.mcp_service_table') THEN
        -- Citus: one aggregate over the shards (it runs no correlated sub-select per service)
        RETURN QUERY
        SELECT t.mcp_service_id, t.mcp_service_name, t.is_active,
               coalesce(s.total, 0) + coalesce(c.deleted, 0)::bigint, coalesce(s.active, 0)
          FROM mcp.mcp_table t
          LEFT JOIN (SELECT x.mcp_service_id, count(*) AS total,
                            count(*) FILTER (WHERE x.status = 'active'
                                               AND (x.expires_at IS NULL OR x.expires_at > pg_catalog.now())) AS active
                       FROM mcp.mcp_service_table x GROUP BY x.mcp_service_id) s
            ON s.mcp_service_id = t.mcp_service_id
          LEFT JOIN (SELECT y.mcp_service_id, sum(y.deleted) AS deleted
                       FROM mcp.service_counters y GROUP BY y.mcp_service_id) c
            ON c.mcp_service_id = t.mcp_service_id;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT t.mcp_service_id, t.mcp_service_name, t.is_active,
           (SELECT count(*) FROM mcp.mcp_service_table s WHERE s.mcp_service_id = t.mcp_service_id)
             + (SELECT coalesce(sum(c.deleted), 0) FROM mcp.service_counters c
                 WHERE c.mcp_service_id = t.mcp_service_id)::bigint,
           (SELECT count(*) FROM mcp.mcp_service_table s
             WHERE s.mcp_service_id = t.mcp_service_id AND s.status = 'active'
               AND (s.expires_at IS NULL OR s.expires_at > pg_catalog.now()))
      FROM mcp.mcp_table t;
END
$$;
COMMENT ON FUNCTION mcp_internal.service_stats_rows() IS
    'the rows of mcp.service_stats';
REVOKE ALL ON FUNCTION mcp_internal.service_stats_rows() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp_internal.service_stats_rows() TO mcp_app, mcp_admin;
CREATE OR REPLACE VIEW mcp.service_stats WITH (security_invoker = true) AS
SELECT * FROM mcp_internal.service_stats_rows();
COMMENT ON VIEW mcp.service_stats IS
    'exact per-service counts: total_instances_created (ever inserted) and active_instances_count (active now)';
REVOKE ALL ON mcp.service_stats FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT ON mcp.service_stats TO mcp_app, mcp_admin;

-- Copies the exact statistics into the legacy mcp_table columns (for queries of the original
-- design that read them); returns how many services changed. Cheap: one row per service.
CREATE OR REPLACE FUNCTION mcp.refresh_service_stats() RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    changed bigint := 0;
BEGIN
    -- one UPDATE per changed service (the statistics are read first: on Citus an UPDATE of the
    -- reference table mcp_table runs on its placements, which cannot read the shards; and
    -- Citus writes a reference table only after reads over one connection per node)
    IF current_setting('citus.multi_shard_modify_mode', true) IS NOT NULL THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
        PERFORM set_config('citus.max_adaptive_executor_pool_size', '1', true);
    END IF;
    FOR s IN SELECT * FROM mcp.service_stats LOOP
        UPDATE mcp.mcp_table AS t
           SET total_instances_created = s.total_instances_created::integer,
               active_instances_count = s.active_instances_count::integer
         WHERE t.mcp_service_id = s.mcp_service_id
           AND (t.total_instances_created, t.active_instances_count)
               IS DISTINCT FROM (s.total_instances_created::integer, s.active_instances_count::integer);
        IF FOUND THEN
            changed := changed + 1;
        END IF;
    END LOOP;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION mcp.refresh_service_stats() IS
    'copies the exact service statistics into the mcp_table counter columns; returns how many services changed';
REVOKE ALL ON FUNCTION mcp.refresh_service_stats() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.refresh_service_stats() TO mcp_admin;

-- ---- counter verification --------------------------------------------------------------------
-- Rows whose stored count differs from the truth; empty when the counters are exact.
--  * user_active:    user_plans.active_instances vs the user's rows with status 'active'
--                    (stored is NULL for a user with active rows but no plan row)
-- Per-service counts are computed from the rows (mcp.service_stats), so they cannot drift;
-- the legacy mcp_table columns are a snapshot refreshed by mcp.refresh_service_stats().
CREATE OR REPLACE FUNCTION mcp.verify_counters()
    RETURNS TABLE (counter text, id uuid, stored bigint, actual bigint)
    LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH truth AS (
        SELECT s.user_id, count(*) AS n
          FROM mcp.mcp_service_table s WHERE s.status = 'active' GROUP BY s.user_id),
    plans AS (
        SELECT coalesce(p.user_id, t.user_id) AS user_id, p.active_instances::bigint AS stored,
               coalesce(t.n, 0) AS actual
          FROM mcp.user_plans p FULL JOIN truth t ON t.user_id = p.user_id)
    SELECT 'user_active', user_id, stored, actual FROM plans
     WHERE stored IS DISTINCT FROM actual
    ORDER BY 1, 2;
$$;
COMMENT ON FUNCTION mcp.verify_counters() IS
    'rows whose stored active-instance count differs from the truth; empty when the counters are exact';
REVOKE ALL ON FUNCTION mcp.verify_counters() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.verify_counters() TO mcp_admin;

-- Recomputes every user's counter from the rows (after a TRUNCATE, a data load with triggers
-- disabled, or anything else verify_counters reports); returns how many plans changed.
-- Instance writes wait while it runs (SHARE ROW EXCLUSIVE on mcp_service_table), so the
-- counts it writes are the truth at one moment.
CREATE OR REPLACE FUNCTION mcp.repair_counters() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed bigint;
BEGIN
    LOCK TABLE mcp.mcp_service_table IN SHARE ROW EXCLUSIVE MODE;
    WITH truth AS (
        SELECT p.user_id,
               (SELECT count(*) FROM mcp.mcp_service_table s
                 WHERE s.user_id = p.user_id AND s.status = 'active') AS n
          FROM mcp.user_plans p),
    fixed AS (
        UPDATE mcp.user_plans AS p SET active_instances = t.n
          FROM truth t
         WHERE t.user_id = p.user_id AND p.active_instances <> t.n
        RETURNING 1)
    SELECT count(*) INTO changed FROM fixed;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION mcp.repair_counters() IS
    'recomputes every user''s active-instance counter from the rows; returns how many plans changed';
REVOKE ALL ON FUNCTION mcp.repair_counters() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.repair_counters() TO mcp_admin;

-- ---- the instance API ------------------------------------------------------------------------
-- The tenant is mcp.current_user_id(); each function acts on the tenant's own rows only (its
-- statements name the tenant), and the trigger enforces the plan exactly as for a plain
-- INSERT or UPDATE.

-- Creates an active instance of a service; MC002 when the service is unknown, MC003 inactive,
-- MC001 beyond the plan limit.
-- C (src/pg/instances.cpp): the service found and the row inserted in one cached statement.
-- SECURITY DEFINER without a SET clause: the C code pins its search_path itself.
CREATE OR REPLACE FUNCTION mcp.create_instance(service_name text, custom_name text DEFAULT NULL,
                                    expires_at timestamptz DEFAULT NULL,
                                    tenant uuid DEFAULT NULL) RETURNS uuid
    AS 'MODULE_PATHNAME', 'mcp_create_instance'
    LANGUAGE C VOLATILE SECURITY DEFINER PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp.create_instance(text, text, timestamptz, uuid) IS
    'creates an active instance of a service for the current tenant (MC002 unknown service, MC003 inactive service, MC001 beyond the plan limit)';
REVOKE ALL ON FUNCTION mcp.create_instance(text, text, timestamptz, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.create_instance(text, text, timestamptz, uuid) TO mcp_app, mcp_admin;

-- Sets a new expiry, bumps renewed_count and last_renewed_at. An 'expired' (or active) instance
-- becomes 'active' — within the plan limit (MC001 otherwise); an 'inactive' one, which its user
-- switched off, stays inactive.
CREATE OR REPLACE FUNCTION mcp.renew_instance(instance_id uuid, expires_at timestamptz,
                                               tenant uuid DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp_internal.credential_instance(renew_instance.instance_id, renew_instance.tenant);
BEGIN
    IF renew_instance.expires_at IS NULL OR renew_instance.expires_at <= now() THEN
        RAISE EXCEPTION 'expires_at must be in the future' USING ERRCODE = '22023';
    END IF;
    UPDATE mcp.mcp_service_table AS s
       SET expires_at = renew_instance.expires_at,
           status = CASE WHEN s.status = 'inactive' THEN s.status ELSE 'active' END,
           renewed_count = s.renewed_count + 1,
           last_renewed_at = now()
     WHERE s.user_id = inst.user_id AND s.instance_id = renew_instance.instance_id;
END
$$;
COMMENT ON FUNCTION mcp.renew_instance(uuid, timestamptz, uuid) IS
    'sets a new expiry; an expired or active instance becomes active within the plan limit, an inactive one stays inactive';
REVOKE ALL ON FUNCTION mcp.renew_instance(uuid, timestamptz, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.renew_instance(uuid, timestamptz, uuid) TO mcp_app, mcp_admin;

-- The hot path: usage_count + 1 and last_used_at = now() (C, one cached plan).
-- SECURITY DEFINER: the usage columns are not the backend's to write; its one statement
-- names the tenant and is schema-qualified throughout. No SET clause: the C code pins
-- search_path itself around the statement (PinSearchPath; test/sql/hostile_search_path.sql).
CREATE OR REPLACE FUNCTION mcp.record_usage(instance_id uuid, tenant uuid DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_record_usage'
    LANGUAGE C VOLATILE SECURITY DEFINER PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp.record_usage(uuid, uuid) IS
    'usage_count + 1 and last_used_at = now() for one of the tenant''s instances (the hot path)';
REVOKE ALL ON FUNCTION mcp.record_usage(uuid, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.record_usage(uuid, uuid) TO mcp_app, mcp_admin;

-- Marks every visible instance past its expires_at as 'expired'; returns how many. Called by
-- mcp.run_maintenance(); run by mcp_app it covers the current tenant only (RLS). Rows another
-- transaction has locked are left for the next run instead of waited for (that transaction
-- may hold the user's plan row, which expiring needs: waiting could deadlock).
CREATE OR REPLACE FUNCTION mcp.expire_instances() RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    citus_table boolean := false;
BEGIN
    -- (inline: the callers have no USAGE on mcp_internal)
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p '
                'WHERE p.logicalrelid = ''mcp.mcp_service_table''::pg_catalog.regclass)' INTO citus_table;
    END IF;
    IF citus_table THEN
        -- Citus runs no multi-shard row locking (FOR … SKIP LOCKED): one UPDATE, which each
        -- worker runs on its shards (the plan-limit trigger moves the counters there), over
        -- one connection per node (maintenance then writes the reference table mcp_table in
        -- the same transaction, which Citus refuses after a parallel write).
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
        UPDATE mcp.mcp_service_table AS s SET status = 'expired'
         WHERE s.status = 'active' AND s.expires_at <= now();
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END IF;
    WITH due AS (
        SELECT s.user_id, s.instance_id FROM mcp.mcp_service_table AS s
         WHERE s.status = 'active' AND s.expires_at <= now()
           FOR NO KEY UPDATE SKIP LOCKED),
    expired AS (
        UPDATE mcp.mcp_service_table AS s SET status = 'expired'
          FROM due
         WHERE s.user_id = due.user_id AND s.instance_id = due.instance_id
        RETURNING 1)
    SELECT count(*) INTO n FROM expired;
    RETURN n;
END
$$;
COMMENT ON FUNCTION mcp.expire_instances() IS
    'marks every visible active instance past its expires_at as expired; returns how many';
REVOKE ALL ON FUNCTION mcp.expire_instances() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.expire_instances() TO mcp_app, mcp_admin;

-- The effective limit of a plan row now (NULL: unlimited), by the trigger's own rule: free 1,
-- pro max_instances (NULL unlimited), a pro plan past its expires_at counts as free.
CREATE OR REPLACE FUNCTION mcp_internal.effective_limit(plan_type text, max_instances integer, expires_at timestamptz)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_effective_limit'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.effective_limit(text, integer, timestamptz) IS
    'the effective instance limit of a plan row now (NULL: unlimited)';
REVOKE ALL ON FUNCTION mcp_internal.effective_limit(text, integer, timestamptz) FROM PUBLIC, mcp_app, mcp_admin;

-- The current tenant's plan as the limit sees it: the stored terms, the effective plan and
-- limit (a lapsed pro plan counts as free), its active instances (status 'active' and not
-- past expires_at), and how many more it may activate now (0 when over the limit after a
-- downgrade or a lapse; NULL: unlimited). MC301 without a tenant.
CREATE OR REPLACE FUNCTION mcp.plan_status(
    tenant uuid DEFAULT NULL,
    OUT plan_type text, OUT effective_plan text, OUT max_instances integer, OUT effective_limit integer,
    OUT active_instances bigint, OUT remaining bigint, OUT expires_at timestamptz, OUT lapsed boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me uuid := mcp_internal.require_tenant(plan_status.tenant);
BEGIN
    SELECT p.plan_type, p.max_instances, p.expires_at,
           p.plan_type = 'pro' AND p.expires_at IS NOT NULL AND p.expires_at <= now(),
           mcp_internal.effective_limit(p.plan_type, p.max_instances, p.expires_at),
           (SELECT count(*) FROM mcp.mcp_service_table s
             WHERE s.user_id = me AND s.status = 'active'
               AND (s.expires_at IS NULL OR s.expires_at > now()))
      INTO plan_type, max_instances, expires_at, lapsed, effective_limit, active_instances
      FROM mcp.user_plans p WHERE p.user_id = me;
    IF NOT FOUND THEN
        RETURN;  -- no plan: every column NULL
    END IF;
    effective_plan := CASE WHEN lapsed THEN 'free' ELSE plan_type END;
    -- NULL when unlimited (greatest() would ignore the NULL limit)
    remaining := CASE WHEN effective_limit IS NOT NULL THEN greatest(effective_limit - active_instances, 0) END;
END
$$;
COMMENT ON FUNCTION mcp.plan_status(uuid) IS
    'the current tenant''s plan: stored and effective plan and limit, active instances, remaining slots, expiry, lapsed';
REVOKE ALL ON FUNCTION mcp.plan_status(uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.plan_status(uuid) TO mcp_app, mcp_admin;

-- Admin: sets a user's plan. free: max_instances 1, no expiry; pro: unlimited
-- (max_instances NULL; set a cap with UPDATE mcp.user_plans), optional expires_at after which
-- it counts as free. A downgrade deletes nothing: instances above the new limit stay active,
-- and no activation succeeds until the user is back under the limit. A missing plan row is
-- created with the true active count.
CREATE OR REPLACE FUNCTION mcp.set_plan(user_id uuid, plan_type text, expires_at timestamptz DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    active bigint;
BEGIN
    IF set_plan.plan_type IS NULL OR set_plan.plan_type NOT IN ('free', 'pro') THEN
        RAISE EXCEPTION 'plan_type must be ''free'' or ''pro''' USING ERRCODE = '22023';
    END IF;
    IF set_plan.plan_type = 'free' AND set_plan.expires_at IS NOT NULL THEN
        RAISE EXCEPTION 'a free plan does not expire' USING ERRCODE = '22023';
    END IF;
    IF set_plan.expires_at <= now() THEN
        RAISE EXCEPTION 'expires_at must be in the future' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mcp.users u WHERE u.id = set_plan.user_id) THEN
        RAISE EXCEPTION 'user % does not exist', set_plan.user_id USING ERRCODE = '22023';
    END IF;
    -- the count first: Citus refuses a sub-select inside INSERT … VALUES
    SELECT count(*) INTO active FROM mcp.mcp_service_table s
     WHERE s.user_id = set_plan.user_id AND s.status = 'active';
    INSERT INTO mcp.user_plans AS p (user_id, plan_type, max_instances, expires_at, active_instances)
    VALUES (set_plan.user_id, set_plan.plan_type,
            CASE WHEN set_plan.plan_type = 'free' THEN 1 END, set_plan.expires_at, active)
    ON CONFLICT ON CONSTRAINT user_plans_one_per_user DO UPDATE
       SET plan_type = excluded.plan_type,
           max_instances = excluded.max_instances,
           expires_at = excluded.expires_at;
END
$$;
COMMENT ON FUNCTION mcp.set_plan(uuid, text, timestamptz) IS
    'sets a user''s plan (free, or pro with an optional expiry); a downgrade deletes nothing';
REVOKE ALL ON FUNCTION mcp.set_plan(uuid, text, timestamptz) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.set_plan(uuid, text, timestamptz) TO mcp_admin;
