-- plan limits, counters, expiry and the service statistics on shards
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - app - :coord
SELECT mcp.find_user('alice@example.com') AS alice \gset
SELECT mcp.find_user('bob@example.com') AS bob \gset
SELECT mcp.find_user('carol@example.com') AS carol \gset
-- free plan: one active instance, through the coordinator
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT mcp.create_instance('github', 'first') IS NOT NULL AS created;
SELECT mcp.create_instance('gmail', 'second');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT mcp.create_instance('github', 'first') IS NOT NULL AS created;
COMMIT;
-- and through a worker, for the same tenant: refused
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT mcp.create_instance('gmail', 'second');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- a plain INSERT is enforced the same way (the trigger runs on the shard)
\c - postgres - :w2
SELECT mcp_service_id AS gmail FROM mcp.mcp_table WHERE mcp_service_name = 'gmail' \gset
BEGIN;
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id) VALUES (:'alice', :'gmail');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c - app - :w1
-- an inactive or unknown service
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT mcp.create_instance('nosuch');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- deactivating frees the slot (the counter goes down on the shard)
BEGIN;
SELECT mcp.set_tenant(:'alice');
UPDATE mcp.mcp_service_table SET status = 'inactive';
SELECT active_instances FROM mcp.user_plans;
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT mcp.create_instance('gmail', 'second') IS NOT NULL AS created;
COMMIT;
-- pro: more instances; a downgrade deletes nothing and refuses the next activation
\c - admin - :coord
SELECT mcp.set_plan(:'alice', 'pro');
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT mcp.create_instance('github', 'third') IS NOT NULL AS created;
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'alice');
UPDATE mcp.mcp_service_table SET status = 'active' WHERE custom_name = 'first';
SELECT active_instances FROM mcp.user_plans;
COMMIT;
\c - admin - :coord
SELECT mcp.set_plan(:'alice', 'free');
\c - app - :coord
BEGIN;
SELECT mcp.set_tenant(:'alice');
SELECT plan_type, effective_limit, active_instances, remaining FROM mcp.plan_status();
SELECT mcp.create_instance('github');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- expiry: an instance past expires_at never blocks a new one, and the sweep expires it
BEGIN;
SELECT mcp.set_tenant(:'carol');
SELECT mcp.create_instance('github', 'short', now() + interval '1 second') IS NOT NULL AS created;
COMMIT;
SELECT pg_sleep(1.2);
BEGIN;
SELECT mcp.set_tenant(:'carol');
SELECT mcp.create_instance('gmail', 'next') IS NOT NULL AS created;
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'carol');
SELECT custom_name, status FROM mcp.mcp_service_table ORDER BY 1;
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT mcp.create_instance('github', 'short', now() + interval '1 second') IS NOT NULL AS created;
COMMIT;
SELECT pg_sleep(1.2);
\c - admin - :coord
SELECT mcp.expire_instances();
-- deletes through a worker (the statement trigger no longer breaks them)
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'carol');
DELETE FROM mcp.mcp_service_table WHERE custom_name = 'short';
COMMIT;
-- the counters hold
\c - admin - :coord
SELECT * FROM mcp.verify_counters();
SELECT mcp_service_name, total_instances_created, active_instances_count FROM mcp.service_stats ORDER BY 1;
SELECT mcp.refresh_service_stats();
SELECT mcp_service_name, total_instances_created, active_instances_count FROM mcp.mcp_table ORDER BY 1;
-- maintenance runs on the coordinator, and does nothing on a worker
SELECT mcp.run_maintenance() - 'partitions_created';
\c - postgres - :w1
SELECT mcp.run_maintenance();
