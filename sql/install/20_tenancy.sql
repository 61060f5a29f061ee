-- ===========================================================================================
-- Tenant isolation (SPEC §6): row-level security, enabled and forced, on every tenant table.
-- A row is visible and writable only when its user_id is the transaction's mcp.user_id;
-- with no tenant set, no rows. mcp_admin sees every tenant (catalog, plans, retention).
-- ===========================================================================================

-- Row-level security of one tenant table: enabled and forced, the tenant policy and the admin
-- policy. Every install part that creates a tenant table calls it.
CREATE FUNCTION mcp._make_tenant_table(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                   'USING (user_id = (SELECT mcp.current_user_id())) '
                   'WITH CHECK (user_id = (SELECT mcp.current_user_id()))', tbl);
    EXECUTE format('CREATE POLICY admin_all ON %s AS PERMISSIVE FOR ALL TO mcp_admin '
                   'USING (true) WITH CHECK (true)', tbl);
END
$$;
SELECT mcp._make_tenant_table(t)
  FROM unnest(ARRAY['mcp.user_plans', 'mcp.user_billing_details', 'mcp.mcp_service_table',
                    'mcp.mcp_credentials', 'mcp.token_audit_log']::regclass[]) AS t;

-- The transaction's tenant, or 42501 when none is set: every function that acts for a tenant
-- starts with it.
CREATE FUNCTION mcp._require_tenant() RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp.current_user_id();
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant set' USING ERRCODE = '42501',
            HINT = 'SELECT set_config(''mcp.user_id'', <user id>, true) first.';
    END IF;
    RETURN tenant;
END
$$;

-- ---- privileges --------------------------------------------------------------------------
-- Nothing for PUBLIC; mcp_app gets what a platform backend needs, mcp_admin runs the platform.
REVOKE ALL ON ALL TABLES IN SCHEMA mcp FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mcp FROM PUBLIC;
GRANT USAGE ON SCHEMA mcp TO mcp_app, mcp_admin;

-- Functions RLS policies and triggers call run with the caller's privileges.
GRANT EXECUTE ON FUNCTION mcp.current_user_id(), mcp._require_tenant() TO PUBLIC;

-- mcp_app: sign-up and login (global users table), the catalog read-only, its plan read-only,
-- its billing details and instances read-write (RLS scopes them; plan limits are enforced by
-- trigger), credentials without their ciphertext columns, the audit log read-only.
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.users TO mcp_app;
GRANT SELECT ON mcp.mcp_table TO mcp_app;
GRANT SELECT ON mcp.user_plans TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.user_billing_details TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.mcp_service_table TO mcp_app;
GRANT SELECT (credential_id, user_id, instance_id, client_id, token_expires_at, token_scope,
              oauth_status, oauth_completed_at, oauth_authorization_url, created_at, updated_at)
    ON mcp.mcp_credentials TO mcp_app;
GRANT DELETE ON mcp.mcp_credentials TO mcp_app;
GRANT SELECT ON mcp.token_audit_log TO mcp_app;

-- mcp_admin: everything on the platform's tables (its policy sees all tenants) except the
-- ciphertext columns, which only the extension's own functions read.
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.users, mcp.mcp_table, mcp.user_plans,
    mcp.user_billing_details, mcp.mcp_service_table, mcp.token_audit_log TO mcp_admin;
GRANT SELECT (credential_id, user_id, instance_id, client_id, token_expires_at, token_scope,
              oauth_status, oauth_completed_at, oauth_authorization_url, refresh_claimed_until,
              created_at, updated_at)
    ON mcp.mcp_credentials TO mcp_admin;
GRANT DELETE ON mcp.mcp_credentials TO mcp_admin;
