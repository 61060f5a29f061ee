-- The tenant counts only in the transaction that set it. A value set at session level (an
-- easy mistake: set_config(..., false), or SET), or left from an earlier transaction, makes
-- every tenant-dependent path fail with MC301 instead of serving the previous request's
-- tenant on a pooled connection. (On 1.0 the next request on the connection saw the first
-- user's instances and got that user's API key.) mcp.set_tenant sets it for one transaction;
-- mcp_platform.tenant_scope = session (superuser only) allows session scope.
\set VERBOSITY terse
SET client_min_messages = warning;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('d5000000-0000-0000-0000-000000000001', 'scope_svc', 'Scope', 7801, 'api_key');
INSERT INTO mcp.users (id, email) VALUES
    ('d0000000-0000-0000-0000-0000000000a1', 'one@scope.example'),
    ('d0000000-0000-0000-0000-0000000000a2', 'two@scope.example');
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id) VALUES
    ('d1000000-0000-0000-0000-0000000000a1', 'd0000000-0000-0000-0000-0000000000a1', 'd5000000-0000-0000-0000-000000000001');
SHOW mcp_platform.tenant_scope;

SET ROLE mcp_app;
-- ---- one request sets its tenant correctly, for its transaction ------------------------------
BEGIN;
SELECT set_config('mcp.user_id', 'd0000000-0000-0000-0000-0000000000a1', true) IS NOT NULL AS tenant_one;
SELECT mcp.set_api_key('d1000000-0000-0000-0000-0000000000a1', 'sk-scope-one');
SELECT count(*) AS one_sees FROM mcp.mcp_service_table;
COMMIT;
-- the next request on the same connection forgets the tenant: nothing, not user one's rows
SELECT count(*) AS next_request_sees FROM mcp.mcp_service_table;
SELECT api_key FROM mcp.get_credentials('d1000000-0000-0000-0000-0000000000a1');
\echo :LAST_ERROR_SQLSTATE

-- ---- the easy mistake: a session-level tenant ---------------------------------------------------
SELECT set_config('mcp.user_id', 'd0000000-0000-0000-0000-0000000000a1', false) IS NOT NULL AS session_level;
-- in the same statement's transaction and in every later one: MC301, never user one's data
SELECT count(*) FROM mcp.mcp_service_table;
\echo :LAST_ERROR_SQLSTATE
SELECT api_key FROM mcp.get_credentials('d1000000-0000-0000-0000-0000000000a1');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.record_usage('d1000000-0000-0000-0000-0000000000a1');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.current_user_id();
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET mcp.user_id = 'd0000000-0000-0000-0000-0000000000a2';
SELECT count(*) FROM mcp.mcp_service_table;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- a request that sets its own tenant properly works even on that connection
BEGIN;
SELECT mcp.set_tenant('d0000000-0000-0000-0000-0000000000a2');
SELECT mcp.current_user_id() AS tenant, count(*) AS two_sees FROM mcp.mcp_service_table;
COMMIT;
BEGIN;
SELECT mcp.set_tenant('d0000000-0000-0000-0000-0000000000a1');
SELECT api_key FROM mcp.get_credentials('d1000000-0000-0000-0000-0000000000a1');
SELECT mcp.set_tenant(NULL);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- and after it, MC301 again (the session-level value is still there)
SELECT mcp.current_user_id();
\echo :LAST_ERROR_SQLSTATE
RESET mcp.user_id;
SELECT mcp.current_user_id() IS NULL AS no_tenant;
-- the backend cannot widen the scope: superuser only
SET mcp_platform.tenant_scope = session;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---- one round trip: the tenant named in the call's own autocommit statement -----------------
-- mcp.set_tenant in FROM runs before the select list, and its setting ends with the
-- statement's transaction: nothing carries over to the next statement on the connection.
SET ROLE mcp_app;
SELECT mcp.record_usage('d1000000-0000-0000-0000-0000000000a1') FROM mcp.set_tenant('d0000000-0000-0000-0000-0000000000a1');
SELECT (c).api_key FROM (SELECT mcp.get_credentials('d1000000-0000-0000-0000-0000000000a1') AS c
                           FROM mcp.set_tenant('d0000000-0000-0000-0000-0000000000a1') OFFSET 0) AS s;
SELECT (p).effective_limit, (p).active_instances
  FROM (SELECT mcp.plan_status() AS p FROM mcp.set_tenant('d0000000-0000-0000-0000-0000000000a1') OFFSET 0) AS s;
-- the next statement has no tenant
SELECT mcp.current_user_id() IS NULL AS no_tenant_after;
SELECT api_key FROM mcp.get_credentials('d1000000-0000-0000-0000-0000000000a1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT usage_count FROM mcp.mcp_service_table WHERE instance_id = 'd1000000-0000-0000-0000-0000000000a1';

-- ---- session scope, for tools that hold one connection per tenant ---------------------------
SET mcp_platform.tenant_scope = session;
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'd0000000-0000-0000-0000-0000000000a1', false) IS NOT NULL AS session_level;
SELECT count(*) AS one_sees_in_session_scope FROM mcp.mcp_service_table;
SELECT api_key FROM mcp.get_credentials('d1000000-0000-0000-0000-0000000000a1');
RESET ROLE;
RESET mcp_platform.tenant_scope;
RESET mcp.user_id;

SELECT count(mcp.erase_user(id)) AS erased FROM mcp.users WHERE email LIKE '%@scope.example';
DELETE FROM mcp.mcp_table WHERE mcp_service_id = 'd5000000-0000-0000-0000-000000000001';
