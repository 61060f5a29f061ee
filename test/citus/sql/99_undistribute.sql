-- the drop path: mcp.undistribute() brings every row back and leaves no shard; then DROP EXTENSION
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - postgres - :coord
CREATE TABLE public.citus_before AS
SELECT 'users' AS tbl, count(*) AS n FROM mcp.users UNION ALL SELECT 'user_plans', count(*) FROM mcp.user_plans
UNION ALL SELECT 'mcp_service_table', count(*) FROM mcp.mcp_service_table
UNION ALL SELECT 'mcp_credentials', count(*) FROM mcp.mcp_credentials
UNION ALL SELECT 'token_audit_log', count(*) FROM mcp.token_audit_log;
\c - admin - :coord
SELECT key, value FROM jsonb_each(mcp.undistribute()) ORDER BY 1;
-- idempotent
SELECT mcp.undistribute();
\c - postgres - :coord
SELECT count(*) AS citus_tables FROM pg_dist_partition WHERE logicalrelid::regclass::text ~ '^mcp';
SELECT b.tbl, b.n = a.n AS same_rows FROM public.citus_before b JOIN (
    SELECT 'users' AS tbl, count(*) AS n FROM mcp.users UNION ALL SELECT 'user_plans', count(*) FROM mcp.user_plans
    UNION ALL SELECT 'mcp_service_table', count(*) FROM mcp.mcp_service_table
    UNION ALL SELECT 'mcp_credentials', count(*) FROM mcp.mcp_credentials
    UNION ALL SELECT 'token_audit_log', count(*) FROM mcp.token_audit_log) a USING (tbl) ORDER BY 1;
DROP TABLE public.citus_before;
SELECT * FROM mcp.verify_counters();
-- the single-node forms are back
SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
 WHERE polrelid = 'mcp.mcp_credentials'::regclass AND polname = 'tenant_isolation';
SELECT has_schema_privilege('mcp_app', 'mcp_internal', 'USAGE') AS app_usage;
-- the local tables work as on one node: the secret still decrypts
\c - app - :coord
SELECT mcp.find_user('bob@example.com') AS bob \gset
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT c.client_id, c.client_secret FROM mcp.mcp_service_table s, mcp.get_credentials(s.instance_id) c
 WHERE s.custom_name = 'oauth';
ROLLBACK;
\c - postgres - :coord
DROP EXTENSION mcp_platform;
-- no shard, table or row of the extension is left on any node
\c - postgres - :w1
SET citus.override_table_visibility = off;
SELECT count(*) AS relations FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('mcp', 'mcp_internal');
\c - postgres - :w2
SET citus.override_table_visibility = off;
SELECT count(*) AS relations FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('mcp', 'mcp_internal');
