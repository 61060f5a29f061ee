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
-- ... and the tenant's read of a placement the API wrote (25001) ...
SELECT mcp.sign_up('mixed@example.com') AS mixed \gset
BEGIN;
SELECT mcp.set_tenant(:'mixed');
SELECT mcp.create_instance('github') AS key_instance \gset
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'mixed');
SELECT mcp.set_api_key(:'key_instance', 'key-in-one-transaction');
SELECT count(*) > 0 AS sees_own_rows FROM mcp.mcp_service_table;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- ... while a placement written by neither yet may be used by both: the tenant reads, then the
-- API writes; the API reads, then the tenant writes
BEGIN;
SELECT mcp.set_tenant(:'mixed');
SELECT count(*) > 0 AS sees_own_rows FROM mcp.mcp_service_table;
SELECT mcp.set_api_key(:'key_instance', 'key-in-one-transaction');
SELECT api_key FROM mcp.get_credentials(:'key_instance');
ROLLBACK;
BEGIN;
SELECT mcp.set_tenant(:'mixed');
SELECT count(*) AS credentials FROM mcp.get_credentials(:'key_instance');
UPDATE mcp.mcp_service_table SET custom_name = custom_name WHERE instance_id = :'key_instance';
ROLLBACK;
\c - admin - :coord
SELECT mcp.erase_user(:'mixed') IS NOT NULL AS erased;
\c - app - :coord
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
