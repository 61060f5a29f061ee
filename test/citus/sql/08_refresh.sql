-- the OAuth token lifecycle and the refresh worker on shards
\set VERBOSITY terse
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - app - :coord
SELECT mcp.sign_up('dave@example.com') AS dave \gset
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT mcp.create_instance('gmail', 'mail') AS mail \gset
SELECT mcp.set_oauth_client(:'mail', 'client-2', 'client-secret-2');
SELECT state FROM mcp.begin_oauth(:'mail', 'https://accounts.example.com/auth') \gset
COMMIT;
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT instance_id = :'mail' AS same_instance FROM mcp.complete_oauth(:'state');
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT mcp.store_oauth_tokens(:'mail', 'access-1', 'refresh-1', now() + interval '1 hour', 'mail.read');
COMMIT;
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT access_token, refresh_token, token_scope, oauth_status FROM mcp.get_credentials(:'mail');
SELECT refresh_state FROM mcp.refresh_status;
COMMIT;
-- the 1.0 claim, scoped to the tenant
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT count(*) AS claimed FROM mcp.claim_token_refresh(interval '2 hours', 10);
COMMIT;
-- the refresh worker: every tenant's due credentials, each leased to one caller
\c - postgres - :coord
UPDATE mcp.mcp_credentials SET refresh_due_at = now() - interval '1 minute', refresh_lease = NULL
 WHERE user_id = :'dave';
\c - worker - :w1
SELECT lease_token, client_secret, refresh_token FROM mcp.claim_refreshes(10) \gset
SELECT :'client_secret' AS client_secret, :'refresh_token' AS refresh_token;
-- a second worker gets nothing while the lease runs
SELECT count(*) AS second_claim FROM mcp.claim_refreshes(10);
SELECT mcp.complete_refresh(:'lease_token', 'access-2', 'refresh-2', now() + interval '1 hour');
-- settled once: the lease is gone
SELECT mcp.complete_refresh(:'lease_token', 'access-3', NULL, now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
\c - postgres - :coord
UPDATE mcp.mcp_credentials SET refresh_due_at = now() - interval '1 minute' WHERE user_id = :'dave';
\c - worker - :w2
SELECT lease_token FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lease_token', 'http_503', 'unavailable');
\c - app - :coord
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT access_token, refresh_token FROM mcp.get_credentials(:'mail');
SELECT refresh_state, failure_days FROM mcp.refresh_status;
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT mcp.revoke_credentials(:'mail');
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'dave');
SELECT refresh_state FROM mcp.refresh_status;
COMMIT;
-- the account goes, so that the files after this one see the data they expect
\c - admin - :coord
SELECT mcp.erase_user(:'dave') ->> 'users' AS erased;
