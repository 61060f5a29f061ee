-- what Citus does not run (docs/citus.md, "Not supported"): each refused with a clear error,
-- nothing half-done
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\c - app - :coord
SELECT mcp.find_user('bob@example.com') AS bob \gset
-- an API function after the tenant's own write to the same shard in one transaction: Citus
-- refuses to use a placement that another user (the API functions' owner) modified, and the
-- other way round (25001); call them in transactions of their own
BEGIN;
SELECT mcp.set_tenant(:'bob');
UPDATE mcp.mcp_service_table SET custom_name = custom_name;
SELECT mcp.create_instance('github');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- a plain INSERT by mcp_app or mcp_admin into a table they may write only some columns of:
-- Citus sends every column to the shard (42501); use mcp.create_instance and mcp.set_plan
BEGIN;
SELECT mcp.set_tenant(:'bob');
\set VERBOSITY sqlstate
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id)
SELECT :'bob', mcp_service_id FROM mcp.mcp_table WHERE mcp_service_name = 'github';
\set VERBOSITY terse
ROLLBACK;
-- the upgrade of a distributed cluster's extension (ALTER EXTENSION … UPDATE): undistribute,
-- update, distribute again
