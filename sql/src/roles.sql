-- ===========================================================================================
-- Schemas and roles. Schema mcp (made by CREATE EXTENSION) is the API: the tables, the views
-- and the functions the roles call. Schema mcp_internal holds everything else (trigger
-- functions, sealing, rollup and summary helpers); no application role has USAGE on it, so
-- its functions are reached only through the API's SECURITY DEFINER functions, triggers and
-- views.
-- ===========================================================================================
CREATE SCHEMA IF NOT EXISTS mcp_internal;
COMMENT ON SCHEMA mcp_internal IS 'mcp_platform internals: not an API, no privileges for application roles';
REVOKE ALL ON SCHEMA mcp_internal FROM PUBLIC;

-- Cluster-wide roles, created if missing; DROP EXTENSION leaves them (they may own grants in
-- other databases).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mcp_app') THEN
        CREATE ROLE mcp_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mcp_admin') THEN
        CREATE ROLE mcp_admin NOLOGIN;
    END IF;
    -- the refresh worker: claims and settles refreshes of every tenant, reads their refresh
    -- state, nothing else
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mcp_worker') THEN
        CREATE ROLE mcp_worker NOLOGIN;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA mcp TO mcp_app, mcp_admin, mcp_worker;
