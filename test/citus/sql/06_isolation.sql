-- row-level security isolates tenants on every shard, whichever node is asked
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - postgres - :coord
SELECT mcp.find_user('alice@example.com') AS alice \gset
SELECT mcp.find_user('bob@example.com') AS bob \gset
CREATE TEMP TABLE truth AS
SELECT 'mcp_service_table' AS tbl, user_id, count(*) AS n FROM mcp.mcp_service_table GROUP BY 1, 2
UNION ALL SELECT 'mcp_credentials', user_id, count(*) FROM mcp.mcp_credentials GROUP BY 1, 2
UNION ALL SELECT 'token_audit_log', user_id, count(*) FROM mcp.token_audit_log GROUP BY 1, 2;
SELECT tbl, user_id = :'alice' AS alice, n FROM truth WHERE user_id IN (:'alice', :'bob') ORDER BY 1, 2;
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT 'mcp_service_table' AS tbl, count(*) FILTER (WHERE user_id = :'alice') AS own,
       count(*) FILTER (WHERE user_id <> :'alice') AS others FROM mcp.mcp_service_table
UNION ALL SELECT 'mcp_credentials', count(*) FILTER (WHERE user_id = :'alice'),
       count(*) FILTER (WHERE user_id <> :'alice') FROM mcp.mcp_credentials
UNION ALL SELECT 'token_audit_log', count(*) FILTER (WHERE user_id = :'alice'),
       count(*) FILTER (WHERE user_id <> :'alice') FROM mcp.token_audit_log
UNION ALL SELECT 'users', count(*) FILTER (WHERE id = :'alice'), count(*) FILTER (WHERE id <> :'alice') FROM mcp.users;
-- another tenant's rows can be neither changed nor deleted
UPDATE mcp.mcp_service_table SET custom_name = 'mine' WHERE user_id = :'bob' RETURNING instance_id;
DELETE FROM mcp.mcp_service_table WHERE user_id = :'bob' RETURNING instance_id;
ROLLBACK;
