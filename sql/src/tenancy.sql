-- ===========================================================================================
-- Tenancy: the transaction's tenant, the tenant checks every API function starts with, the
-- row-level security of a tenant table, and the row triggers every table shares.
-- ===========================================================================================

CREATE OR REPLACE FUNCTION mcp.current_user_id() RETURNS uuid
    AS 'MODULE_PATHNAME', 'mcp_current_user_id'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mcp.current_user_id() IS
    'the transaction''s tenant: the mcp.user_id setting as uuid, NULL when unset (row-level security then shows no rows); MC301 when it was set at session level or in an earlier transaction';
-- RLS policies call it with the privileges of whoever runs the query.
GRANT EXECUTE ON FUNCTION mcp.current_user_id() TO PUBLIC;

-- The tenant for the current transaction only (a local mcp.user_id, gone when the
-- transaction ends): what a backend on a pooled connection calls first in each transaction.
CREATE OR REPLACE FUNCTION mcp.set_tenant(user_id uuid) RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_set_tenant'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp.set_tenant(uuid) IS
    'sets the tenant (mcp.user_id) for the current transaction only';
REVOKE ALL ON FUNCTION mcp.set_tenant(uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.set_tenant(uuid) TO mcp_app, mcp_admin;

-- The current value of an mcp_platform.* setting as SHOW prints it. Calling it loads the
-- library, so the setting is defined (with its default) even in a backend that has not used
-- the extension yet; the key settings are refused.
CREATE OR REPLACE FUNCTION mcp_internal.setting(name text) RETURNS text
    AS 'MODULE_PATHNAME', 'mcp_setting'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.setting(text) IS 'current value of an mcp_platform.* setting (not the key settings)';
REVOKE ALL ON FUNCTION mcp_internal.setting(text) FROM PUBLIC, mcp_app, mcp_admin;

-- The transaction's tenant, or MC301 when none is set (an application bug, unlike 42501:
-- "not yours"); MC302 when the API function's tenant argument (when given) names another
-- tenant. C: it resolves no name, so it needs no SET clause (it is called only from the API's
-- SECURITY DEFINER functions, whose search_path is pinned).
CREATE OR REPLACE FUNCTION mcp_internal.require_tenant(tenant uuid) RETURNS uuid
    AS 'MODULE_PATHNAME', 'mcp_require_tenant'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.require_tenant(uuid) IS
    'the transaction''s tenant; MC301 when none is set, MC302 when the tenant argument (NULL: none given) names another';
REVOKE ALL ON FUNCTION mcp_internal.require_tenant(uuid) FROM PUBLIC, mcp_app, mcp_admin;

-- The calling tenant's instance: its user_id and service type, whether the instance is active
-- (status 'active' and not past expires_at) and whether its service is; MC301 when no tenant
-- is set, 42501 when the instance is not the tenant's (not told apart from "does not exist").
-- Every API function that takes an instance_id starts with it. Those are SECURITY DEFINER with
-- a pinned search_path, and only they can call it (no role has USAGE on mcp_internal): it runs
-- with their rights and their search_path, so it needs neither a SET clause nor SECURITY
-- DEFINER of its own (each would cost a GUC save and restore or a user switch per call).
CREATE OR REPLACE FUNCTION mcp_internal.credential_instance(instance_id uuid, tenant uuid,
                                                            OUT user_id uuid, OUT service_type text,
                                                            OUT instance_active boolean, OUT service_active boolean)
    LANGUAGE plpgsql STABLE PARALLEL UNSAFE
AS $$
DECLARE
    me uuid := mcp_internal.require_tenant(credential_instance.tenant);
    service uuid;
BEGIN
    IF pg_catalog.current_setting('citus.propagate_set_commands', true) IS NULL THEN
        SELECT s.user_id, t.type,
               s.status = 'active' AND (s.expires_at IS NULL OR s.expires_at > now()), t.is_active
          INTO user_id, service_type, instance_active, service_active
          FROM mcp.mcp_service_table s JOIN mcp.mcp_table t ON t.mcp_service_id = s.mcp_service_id
         WHERE s.user_id = me AND s.instance_id = credential_instance.instance_id;
    ELSE
        -- Citus loaded: the instance, then its service (inside a call Citus delegated to the
        -- tenant's worker, a statement may not join a tenant table with a reference table)
        SELECT s.user_id, s.mcp_service_id,
               s.status = 'active' AND (s.expires_at IS NULL OR s.expires_at > now())
          INTO user_id, service, instance_active
          FROM mcp.mcp_service_table s
         WHERE s.user_id = me AND s.instance_id = credential_instance.instance_id;
        SELECT t.type, t.is_active INTO service_type, service_active
          FROM mcp.mcp_table t WHERE t.mcp_service_id = service;
    END IF;
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'instance % does not belong to the current tenant', credential_instance.instance_id
            USING ERRCODE = '42501';
    END IF;
END
$$;
COMMENT ON FUNCTION mcp_internal.credential_instance(uuid, uuid) IS
    'the current tenant''s instance (user_id, service type, whether it and its service are active); 42501 when it is not the tenant''s';
REVOKE ALL ON FUNCTION mcp_internal.credential_instance(uuid, uuid) FROM PUBLIC, mcp_app, mcp_admin;

-- Row-level security of a tenant table: enabled and forced, the tenant policy (the row's
-- tenant column is the transaction's tenant) and the admin policy. Called right after each
-- tenant table is created (for users, the tenant column is id); idempotent. The policy calls
-- the tenant function through a sub-select (evaluated once per query), except on a Citus
-- table, where Citus refuses sub-selects in policies (citus.sql).
CREATE OR REPLACE FUNCTION mcp_internal.make_tenant_table(tbl regclass, tenant_column name DEFAULT 'user_id')
    RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    citus_table boolean := false;
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1)'
           INTO citus_table USING tbl;
    END IF;
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', tbl);
    IF citus_table THEN
        EXECUTE format('CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                       'USING (%2$I = mcp.current_user_id()) '
                       'WITH CHECK (%2$I = mcp.current_user_id())', tbl, tenant_column);
    ELSE
        EXECUTE format('CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                       'USING (%2$I = (SELECT mcp.current_user_id())) '
                       'WITH CHECK (%2$I = (SELECT mcp.current_user_id()))', tbl, tenant_column);
    END IF;
    EXECUTE format('DROP POLICY IF EXISTS admin_all ON %s', tbl);
    EXECUTE format('CREATE POLICY admin_all ON %s AS PERMISSIVE FOR ALL TO mcp_admin '
                   'USING (true) WITH CHECK (true)', tbl);
END
$$;
COMMENT ON FUNCTION mcp_internal.make_tenant_table(regclass, name) IS
    'enables and forces row-level security on a tenant table with the tenant and admin policies';
REVOKE ALL ON FUNCTION mcp_internal.make_tenant_table(regclass, name) FROM PUBLIC, mcp_app, mcp_admin;

-- BEFORE UPDATE trigger of every table with updated_at; its arguments name immutable columns.
CREATE OR REPLACE FUNCTION mcp_internal.set_updated_at() RETURNS trigger
    AS 'MODULE_PATHNAME', 'mcp_set_updated_at'
    LANGUAGE C;
COMMENT ON FUNCTION mcp_internal.set_updated_at() IS
    'BEFORE UPDATE row trigger: updated_at = now(); refuses changes to the columns named as arguments';
REVOKE ALL ON FUNCTION mcp_internal.set_updated_at() FROM PUBLIC, mcp_app, mcp_admin;

-- AFTER INSERT trigger of users: a free plan for every new user. On Citus, users is a
-- reference table and the trigger fires on its placement on every node: the node that holds
-- the user's shard of user_plans writes the plan there, the others do nothing (citus.sql).
CREATE OR REPLACE FUNCTION mcp_internal.assign_default_plan() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    shard regclass;
BEGIN
    IF TG_TABLE_NAME <> 'users' THEN
        shard := mcp_internal.local_shard('mcp.user_plans', NEW.id);
        IF shard IS NOT NULL THEN
            EXECUTE format('INSERT INTO %s (user_id, plan_type, max_instances) VALUES ($1, ''free'', 1) '
                           'ON CONFLICT (user_id) DO NOTHING', shard) USING NEW.id;
        END IF;
        RETURN NULL;
    END IF;
    INSERT INTO mcp.user_plans (user_id, plan_type, max_instances)
    VALUES (NEW.id, 'free', 1)
    ON CONFLICT (user_id) DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION mcp_internal.assign_default_plan() IS 'AFTER INSERT row trigger of users: a free plan for the new user';
REVOKE ALL ON FUNCTION mcp_internal.assign_default_plan() FROM PUBLIC, mcp_app, mcp_admin;
