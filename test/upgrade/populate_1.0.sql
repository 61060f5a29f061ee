-- Populates a database on release 1.0 through the 1.0 API: a catalog, users on both plans,
-- instances active, expired and inactive, API keys and OAuth tokens, audit rows over several
-- day partitions, and a rollup. Run as a superuser; ON_ERROR_STOP.
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type) VALUES
    ('github', 'GitHub', 7001, 'api_key'), ('gmail', 'Gmail', 7002, 'oauth');
INSERT INTO mcp.users (id, email, name) VALUES
    ('a0000000-0000-0000-0000-00000000000a', 'ada@example.com', 'Ada'),
    ('b0000000-0000-0000-0000-00000000000b', 'bob@example.com', NULL);
SELECT mcp.set_plan('b0000000-0000-0000-0000-00000000000b', 'pro', now() + interval '30 days');

SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', 'a0000000-0000-0000-0000-00000000000a', true) IS NOT NULL;
SELECT mcp.create_instance('github', 'ada github') AS ada_key \gset
SELECT mcp.set_api_key(:'ada_key', 'ghp_upgrade_canary_0123456789');
SELECT mcp.record_usage(:'ada_key');
SELECT mcp.log_token_operation(:'ada_key', 'validate', 'success', 'api_key');
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', 'b0000000-0000-0000-0000-00000000000b', true) IS NOT NULL;
SELECT mcp.create_instance('gmail', 'bob gmail') AS bob_oauth \gset
SELECT mcp.set_oauth_client(:'bob_oauth', 'client-123', 'client-secret-xyz');
SELECT state AS st FROM mcp.begin_oauth(:'bob_oauth', 'https://accounts.example.com/auth') \gset
SELECT instance_id IS NOT NULL FROM mcp.complete_oauth(:'st');
SELECT mcp.store_oauth_tokens(:'bob_oauth', 'access-token-abc', 'refresh-token-def',
                              now() + interval '1 hour', 'mail.read');
SELECT mcp.create_instance('github', 'bob soon expired', now() + interval '1 hour') AS bob_exp \gset
SELECT mcp.create_instance('github', 'bob off') AS bob_off \gset
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = :'bob_off';
COMMIT;
RESET ROLE;
-- an instance past its expiry, expired by maintenance below
UPDATE mcp.mcp_service_table SET expires_at = now() - interval '1 minute'
 WHERE custom_name = 'bob soon expired';

-- audit rows over ten days: some in day partitions, some left in the DEFAULT partition
SELECT mcp.ensure_audit_partitions(now() - interval '10 days', now() - interval '5 days');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT s.instance_id, s.user_id, (ARRAY['refresh', 'validate'])[1 + g % 2],
       (ARRAY['success', 'failure'])[1 + g % 3 / 2], 'oauth', now() - g * interval '5 hours'
  FROM mcp.mcp_service_table s, generate_series(1, 48) AS g;
SELECT mcp.run_maintenance() ->> 'skipped';
