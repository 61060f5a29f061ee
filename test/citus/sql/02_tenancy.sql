-- sign-up and the tenant contract through the coordinator and through a worker
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - app - :coord
SELECT mcp.sign_up('alice@example.com') IS NOT NULL AS signed_up;
SELECT mcp.sign_up('bob@example.com') IS NOT NULL AS signed_up;
\c - app - :w1
SELECT mcp.sign_up('carol@example.com') IS NOT NULL AS signed_up;
SELECT mcp.sign_up('Carol@Example.com');
\echo :LAST_ERROR_SQLSTATE
-- exactly one free plan each, whichever node signed them up
\c - postgres - :coord
SELECT u.email, count(p.plan_id) AS plans, min(p.plan_type) AS plan_type, min(p.active_instances) AS active
  FROM mcp.users u LEFT JOIN mcp.user_plans p ON p.user_id = u.id GROUP BY u.email ORDER BY 1;
\c - app - :coord
SELECT mcp.find_user('alice@example.com') AS alice \gset
SELECT mcp.find_user('bob@example.com') AS bob \gset
-- the tenant of one transaction, set with mcp.set_tenant, reaches the workers
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT email FROM mcp.users;
SELECT plan_type FROM mcp.user_plans;
COMMIT;
-- gone after the transaction
SELECT count(*) FROM mcp.user_plans;
-- the same through a worker
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT email FROM mcp.users;
SELECT plan_type FROM mcp.user_plans;
COMMIT;
-- set_config() is not sent to the workers: the shards see no tenant (no rows), never another's
\c - app - :coord
BEGIN;
SELECT set_config('mcp.user_id', :'alice', true) IS NOT NULL;
SELECT count(*) FROM mcp.user_plans;
COMMIT;
-- a tenant set at session level is refused (MC301) as on one node
SET mcp.user_id = :'alice';
SELECT mcp.create_instance('github');
\echo :LAST_ERROR_SQLSTATE
RESET mcp.user_id;
