-- credentials: sealed on the worker that holds the shard (every node has the same keyring)
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - app - :coord
SELECT mcp.find_user('bob@example.com') AS bob \gset
SELECT mcp.find_user('alice@example.com') AS alice \gset
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT mcp.create_instance('github', 'keyed') AS keyed \gset
SELECT mcp.set_api_key(:'keyed', 'sk-live-0123456789');
SELECT auth_type, api_key FROM mcp.get_credentials(:'keyed');
COMMIT;
-- read back through each worker
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT api_key FROM mcp.get_credentials(:'keyed');
COMMIT;
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT api_key FROM mcp.get_credentials(:'keyed');
-- one round trip: the tenant named in the call's own autocommit statement
COMMIT;
SELECT c.api_key FROM mcp.set_tenant(:'bob'), mcp.get_credentials(:'keyed') c;
\c - app - :coord
SELECT c.api_key FROM mcp.set_tenant(:'bob'), mcp.get_credentials(:'keyed') c;
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'bob');
-- usage on the hot path
SELECT mcp.record_usage(:'keyed');
SELECT mcp.record_usage(:'keyed');
COMMIT;
-- another tenant's instance: 42501
BEGIN;
SELECT mcp.set_tenant(:'alice');
\set VERBOSITY sqlstate
SELECT api_key FROM mcp.get_credentials(:'keyed');
\set VERBOSITY terse
ROLLBACK;
-- only ciphertext in the shards
\c - postgres - :coord
SELECT count(*) AS plaintext_rows FROM mcp.mcp_credentials
 WHERE position('sk-live' IN encode(api_key, 'escape')) > 0;
SELECT usage_count FROM mcp.mcp_service_table WHERE instance_id = :'keyed';
-- the OAuth flow up to the code exchange
\c - app - :coord
BEGIN;
SELECT mcp.set_tenant(:'bob');
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = :'keyed';
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT mcp.create_instance('gmail', 'oauth') AS oauth \gset
SELECT mcp.set_oauth_client(:'oauth', 'client-1', 'client-secret-1');
SELECT state, length(code_challenge) AS challenge_length FROM mcp.begin_oauth(:'oauth', 'https://accounts.example.com/auth') \gset
SELECT :challenge_length;
COMMIT;
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT instance_id = :'oauth' AS same_instance, length(code_verifier) > 40 AS has_verifier
  FROM mcp.complete_oauth(:'state');
COMMIT;
-- rotation status
\c - admin - :coord
SELECT key_version, is_active, stored_values FROM mcp.key_status();
-- export of an account: every table's rows of the user (secrets named only)
SELECT mcp.find_user('bob@example.com') AS bob \gset
SELECT jsonb_array_length(e -> 'instances') AS instances, jsonb_array_length(e -> 'credentials') AS credentials,
       e -> 'plan' ->> 'plan_type' AS plan
  FROM mcp.export_user(:'bob') e;
