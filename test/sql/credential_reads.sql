-- mcp.get_credentials reads the tenant's instance, its service and its credentials row below
-- the executor on one node, and through a statement when Citus is loaded (its planner routes
-- the statement to the tenant's shards). Both paths must give the same rows and the same
-- errors: each case below runs both, the statement path by setting the Citus setting's
-- placeholder (src/pg/credentials_api.cpp, CitusLoaded).
SET mcp_platform.tenant_scope = session;
\set VERBOSITY terse
SET client_min_messages = warning;

INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('f5000000-0000-0000-0000-000000000001', 'reads_key', 'Key', 7901, 'api_key'),
    ('f5000000-0000-0000-0000-000000000002', 'reads_oauth', 'OAuth', 7902, 'oauth'),
    ('f5000000-0000-0000-0000-000000000003', 'reads_off', 'Off', 7903, 'api_key');
INSERT INTO mcp.users (id, email) VALUES
    ('f0000000-0000-0000-0000-0000000000a1', 'a@reads.example'),
    ('f0000000-0000-0000-0000-0000000000b1', 'b@reads.example');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id IN ('f0000000-0000-0000-0000-0000000000a1', 'f0000000-0000-0000-0000-0000000000b1');
-- a1 key, a2 oauth, a3 no credentials, a4 inactive, a5 past expires_at, a6 inactive service,
-- a7 key (its ciphertext replaced below by a1's), b1 another tenant's key
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, expires_at) VALUES
    ('f1000000-0000-0000-0000-0000000000a1', 'f0000000-0000-0000-0000-0000000000a1', 'f5000000-0000-0000-0000-000000000001', NULL),
    ('f1000000-0000-0000-0000-0000000000a2', 'f0000000-0000-0000-0000-0000000000a1', 'f5000000-0000-0000-0000-000000000002', NULL),
    ('f1000000-0000-0000-0000-0000000000a3', 'f0000000-0000-0000-0000-0000000000a1', 'f5000000-0000-0000-0000-000000000001', NULL),
    ('f1000000-0000-0000-0000-0000000000a4', 'f0000000-0000-0000-0000-0000000000a1', 'f5000000-0000-0000-0000-000000000001', NULL),
    ('f1000000-0000-0000-0000-0000000000a5', 'f0000000-0000-0000-0000-0000000000a1', 'f5000000-0000-0000-0000-000000000001', now() + interval '1 hour'),
    ('f1000000-0000-0000-0000-0000000000a6', 'f0000000-0000-0000-0000-0000000000a1', 'f5000000-0000-0000-0000-000000000003', NULL),
    ('f1000000-0000-0000-0000-0000000000a7', 'f0000000-0000-0000-0000-0000000000a1', 'f5000000-0000-0000-0000-000000000001', NULL),
    ('f1000000-0000-0000-0000-0000000000b1', 'f0000000-0000-0000-0000-0000000000b1', 'f5000000-0000-0000-0000-000000000001', NULL);

-- Each case through both paths: the row as text, "no row", or the error's SQLSTATE and message.
CREATE FUNCTION pg_temp.read_both(inst uuid) RETURNS TABLE (path text, outcome text)
    LANGUAGE plpgsql AS $$
DECLARE
    p text;
    r record;
    n integer;
BEGIN
    FOREACH p IN ARRAY ARRAY['direct', 'statement'] LOOP
        PERFORM pg_catalog.set_config('citus.propagate_set_commands',
                                      CASE p WHEN 'statement' THEN 'local' ELSE '' END, false);
        path := p;
        BEGIN
            n := 0;
            FOR r IN SELECT * FROM mcp.get_credentials(inst) LOOP
                n := n + 1;
                outcome := r::text;
                RETURN NEXT;
            END LOOP;
            IF n = 0 THEN
                outcome := 'no row';
                RETURN NEXT;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            outcome := SQLSTATE || ' ' || SQLERRM;
            RETURN NEXT;
        END;
    END LOOP;
    PERFORM pg_catalog.set_config('citus.propagate_set_commands', '', false);
END
$$;

SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'f0000000-0000-0000-0000-0000000000a1', false) IS NOT NULL AS tenant_a;
SELECT mcp.set_api_key('f1000000-0000-0000-0000-0000000000a1', 'sk-reads-a1');
SELECT mcp.set_api_key('f1000000-0000-0000-0000-0000000000a7', 'sk-reads-a7');
SELECT mcp.set_api_key('f1000000-0000-0000-0000-0000000000a4', 'sk-reads-a4');
SELECT mcp.set_api_key('f1000000-0000-0000-0000-0000000000a5', 'sk-reads-a5');
SELECT mcp.set_api_key('f1000000-0000-0000-0000-0000000000a6', 'sk-reads-a6');
SELECT mcp.set_oauth_client('f1000000-0000-0000-0000-0000000000a2', 'client-a2', 'secret-a2');
SELECT mcp.store_oauth_tokens('f1000000-0000-0000-0000-0000000000a2', 'access-a2', 'refresh-a2',
                              '2030-01-01 00:00:00+00', 'read write');
SELECT set_config('mcp.user_id', 'f0000000-0000-0000-0000-0000000000b1', false) IS NOT NULL AS tenant_b;
SELECT mcp.set_api_key('f1000000-0000-0000-0000-0000000000b1', 'sk-reads-b1');
RESET ROLE;
-- a4 switched off, a5 past its expires_at (before any expiry job), a6's service switched off,
-- a7's ciphertext replaced by a1's (bound to another instance: it must not open)
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = 'f1000000-0000-0000-0000-0000000000a4';
UPDATE mcp.mcp_service_table SET expires_at = now() - interval '1 second' WHERE instance_id = 'f1000000-0000-0000-0000-0000000000a5';
UPDATE mcp.mcp_table SET is_active = false WHERE mcp_service_id = 'f5000000-0000-0000-0000-000000000003';
UPDATE mcp.mcp_credentials SET api_key = (SELECT api_key FROM mcp.mcp_credentials WHERE instance_id = 'f1000000-0000-0000-0000-0000000000a1')
 WHERE instance_id = 'f1000000-0000-0000-0000-0000000000a7';

SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'f0000000-0000-0000-0000-0000000000a1', false) IS NOT NULL AS tenant_a;
-- an API key
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a1');
-- an OAuth client with tokens
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a2');
-- no credentials yet
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a3');
-- MC004: inactive, and past expires_at
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a4');
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a5');
-- MC003: the service is inactive
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a6');
-- MC102: a ciphertext bound to another instance
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a7');
-- 42501: another tenant's instance, an instance that does not exist, NULL
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000b1');
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000ff');
SELECT * FROM pg_temp.read_both(NULL);
-- revoked: no row (and an OAuth credential revoked with its client kept: no row either)
BEGIN;
SELECT mcp.revoke_credentials('f1000000-0000-0000-0000-0000000000a1') AS revoked_key,
       mcp.revoke_credentials('f1000000-0000-0000-0000-0000000000a2') AS revoked_oauth;
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a1');
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a2');
ROLLBACK;
-- a change made earlier in the same transaction is seen
BEGIN;
SELECT mcp.set_api_key('f1000000-0000-0000-0000-0000000000a3', 'sk-reads-a3');
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a3');
ROLLBACK;
-- create_instance's statement form for Citus (service looked up first, then the row
-- inserted): the same outcomes as on one node
SELECT set_config('citus.propagate_set_commands', 'local', false) IS NOT NULL AS statement_path;
SELECT mcp.create_instance('reads_key', 'by service id') IS NOT NULL AS created;
SELECT mcp.create_instance('reads_nosuch');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.create_instance('reads_off');
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('citus.propagate_set_commands', '', false) IS NOT NULL AS direct_path;
SELECT count(*) AS created_rows FROM mcp.mcp_service_table WHERE custom_name = 'by service id';
-- MC301: no tenant
SELECT set_config('mcp.user_id', '', false) IS NOT NULL AS no_tenant;
SELECT * FROM pg_temp.read_both('f1000000-0000-0000-0000-0000000000a1');
RESET ROLE;
RESET mcp_platform.tenant_scope;
RESET mcp.user_id;

-- erasure takes the instances, credentials and audit rows with the users
SELECT count(mcp.erase_user(id)) AS erased FROM mcp.users WHERE email LIKE '%@reads.example';
DELETE FROM mcp.mcp_table WHERE mcp_service_id IN ('f5000000-0000-0000-0000-000000000001',
    'f5000000-0000-0000-0000-000000000002', 'f5000000-0000-0000-0000-000000000003');
