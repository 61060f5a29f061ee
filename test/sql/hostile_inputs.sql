-- What a backend (or a buggy one) can send and must not get away with: constraint errors that
-- would quote a credential row, unbounded or unsafe text stored through the API, and writes to
-- the columns that follow the credentials and the usage.
-- this file sets its tenants at session level (one connection, several transactions)
SET mcp_platform.tenant_scope = session;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('a5000000-0000-0000-0000-000000000001', 'inputs_svc', 'Inputs', 7501, 'api_key');
INSERT INTO mcp.users (id, email) VALUES ('a0000000-0000-0000-0000-0000000000aa', 'inputs@example.com');
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
VALUES ('a1000000-0000-0000-0000-0000000000aa', 'a0000000-0000-0000-0000-0000000000aa',
        'a5000000-0000-0000-0000-000000000001');
\set I '''a1000000-0000-0000-0000-0000000000aa'''
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'a0000000-0000-0000-0000-0000000000aa', false) IS NOT NULL AS tenant;
SELECT mcp.set_api_key(:I, 'sk-inputs-canary-1234');
RESET ROLE;

-- ---- an admin turns the service into an OAuth service after the key was stored -------------
UPDATE mcp.mcp_table SET type = 'oauth' WHERE mcp_service_id = 'a5000000-0000-0000-0000-000000000001';
SET ROLE mcp_app;
-- no OAuth client yet: a clean error, not a constraint violation quoting the row
SELECT * FROM mcp.begin_oauth(:I, 'https://provider.example/auth');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:I, 'access', 'refresh', now() + interval '1 hour', 'scope');
\echo :LAST_ERROR_SQLSTATE
-- storing the OAuth client replaces the old API key
SELECT mcp.set_oauth_client(:I, 'client-1', 'client-secret-1');
SELECT auth_type, api_key, client_id, client_secret FROM mcp.get_credentials(:I);
RESET ROLE;
-- and back: an API key replaces the OAuth configuration
UPDATE mcp.mcp_table SET type = 'api_key' WHERE mcp_service_id = 'a5000000-0000-0000-0000-000000000001';
SET ROLE mcp_app;
SELECT mcp.set_api_key(:I, 'sk-inputs-canary-5678');
SELECT auth_type, api_key, client_id, client_secret FROM mcp.get_credentials(:I);
RESET ROLE;
UPDATE mcp.mcp_table SET type = 'oauth' WHERE mcp_service_id = 'a5000000-0000-0000-0000-000000000001';
SET ROLE mcp_app;
SELECT mcp.set_oauth_client(:I, 'client-2', NULL);

-- ---- the authorization URL: https (http for localhost only), bounded ------------------------
SELECT * FROM mcp.begin_oauth(:I, 'javascript:alert(document.cookie)');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.begin_oauth(:I, 'http://provider.example/auth');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.begin_oauth(:I, 'https://');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.begin_oauth(:I, 'http://localhost.evil.example/auth');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.begin_oauth(:I, 'https://provider.example/auth?q=' || repeat('x', 5000));
\echo :LAST_ERROR_SQLSTATE
SELECT length(state) > 0 AS started FROM mcp.begin_oauth(:I, 'http://localhost:8080/auth');
SELECT length(state) > 0 AS started FROM mcp.begin_oauth(:I, 'HTTPS://Provider.Example/auth?scope=a%20b');
-- the scope is bounded too
SELECT mcp.store_oauth_tokens(:I, 'access', 'refresh', now() + interval '1 hour', repeat('s', 5000));
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:I, 'access', 'refresh', now() + interval '1 hour', 'mail.read');

-- ---- columns the backend does not write -----------------------------------------------------
UPDATE mcp.mcp_service_table SET usage_count = 0 WHERE instance_id = :I;
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp.mcp_service_table SET oauth_status = NULL WHERE instance_id = :I;
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp.mcp_service_table SET renewed_count = 99 WHERE instance_id = :I;
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp.mcp_service_table SET credentials_updated_at = NULL WHERE instance_id = :I;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id, oauth_status, usage_count)
VALUES ('a0000000-0000-0000-0000-0000000000aa', 'a5000000-0000-0000-0000-000000000001', 'completed', 1000);
\echo :LAST_ERROR_SQLSTATE
DELETE FROM mcp.mcp_credentials WHERE instance_id = :I;
\echo :LAST_ERROR_SQLSTATE
-- what it owns, it writes
UPDATE mcp.mcp_service_table SET custom_name = 'renamed', status = 'inactive' WHERE instance_id = :I;
SELECT mcp.record_usage(:I);
SELECT custom_name, status, usage_count FROM mcp.mcp_service_table WHERE instance_id = :I;
RESET ROLE;

-- nothing of the canaries reached an audit row
SELECT count(*) AS audit_rows_quoting_a_secret FROM mcp.token_audit_log
 WHERE error_message LIKE '%canary%' OR metadata::text LIKE '%canary%';

DELETE FROM mcp.users WHERE id = 'a0000000-0000-0000-0000-0000000000aa';
DELETE FROM mcp.mcp_table WHERE mcp_service_id = 'a5000000-0000-0000-0000-000000000001';
