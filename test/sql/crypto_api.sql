-- The tenant-checked credential API: round trips, every SQLSTATE of the API
-- through real cases, ciphertext at rest, audit rows without secrets. The key source is the
-- one the test command configured (a keyring file, or a key command in the second run).
-- this file sets its tenants at session level (one connection, several transactions)
SET mcp_platform.tenant_scope = session;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('crypto_gh', 'GitHub', 7101, 'api_key'), ('crypto_gm', 'Gmail', 7102, 'oauth');
INSERT INTO mcp.users (id, email) VALUES
    ('c0000000-0000-0000-0000-00000000000a', 'crypto-a@example.com'),
    ('c0000000-0000-0000-0000-00000000000b', 'crypto-b@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id IN ('c0000000-0000-0000-0000-00000000000a', 'c0000000-0000-0000-0000-00000000000b');
-- instances: A1 api_key, A2 api_key, A3 oauth, A4 oauth, B1 api_key, B3 oauth
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
SELECT i.id::uuid, i.u::uuid, t.mcp_service_id
  FROM (VALUES ('a1000000-0000-0000-0000-000000000001', 'c0000000-0000-0000-0000-00000000000a', 'crypto_gh'),
               ('a2000000-0000-0000-0000-000000000002', 'c0000000-0000-0000-0000-00000000000a', 'crypto_gh'),
               ('a3000000-0000-0000-0000-000000000003', 'c0000000-0000-0000-0000-00000000000a', 'crypto_gm'),
               ('a4000000-0000-0000-0000-000000000004', 'c0000000-0000-0000-0000-00000000000a', 'crypto_gm'),
               ('b1000000-0000-0000-0000-000000000001', 'c0000000-0000-0000-0000-00000000000b', 'crypto_gh'),
               ('b3000000-0000-0000-0000-000000000003', 'c0000000-0000-0000-0000-00000000000b', 'crypto_gm'))
       AS i(id, u, svc)
  JOIN mcp.mcp_table t ON t.mcp_service_name = i.svc;

\set A1 '''a1000000-0000-0000-0000-000000000001'''
\set A2 '''a2000000-0000-0000-0000-000000000002'''
\set A3 '''a3000000-0000-0000-0000-000000000003'''
\set A4 '''a4000000-0000-0000-0000-000000000004'''
\set B1 '''b1000000-0000-0000-0000-000000000001'''
\set B3 '''b3000000-0000-0000-0000-000000000003'''

-- ---- the backend role, tenant A ------------------------------------------------------------
SET ROLE mcp_app;
-- no tenant set: MC301
SELECT mcp.set_api_key(:A1, 'sk-no-tenant');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.claim_token_refresh('1 hour', 10);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.complete_oauth('whatever');
\echo :LAST_ERROR_SQLSTATE

SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant_a;

-- API key round trip
SELECT mcp.set_api_key(:A1, 'sk-live-alpha-0123456789');
SELECT auth_type, api_key, client_id, client_secret, access_token, refresh_token, oauth_status
  FROM mcp.get_credentials(:A1);
-- replace it
SELECT mcp.set_api_key(:A1, 'sk-live-alpha-replaced');
SELECT api_key FROM mcp.get_credentials(:A1);
SELECT mcp.set_api_key(:A2, repeat('k', 500));  -- the limit itself is fine
SELECT length(api_key) FROM mcp.get_credentials(:A2);
-- an instance without credentials: no row
SELECT count(*) FROM mcp.get_credentials(:A4);

-- 22001: secrets over their limit, nothing stored
SELECT mcp.set_api_key(:A2, repeat('k', 501));
\echo :LAST_ERROR_SQLSTATE
SELECT length(api_key) FROM mcp.get_credentials(:A2);
SELECT mcp.set_oauth_client(:A3, repeat('c', 501), 'secret');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_oauth_client(:A3, 'client-a3', repeat('s', 501));
\echo :LAST_ERROR_SQLSTATE
-- 22023: empty or NULL secrets
SELECT mcp.set_api_key(:A2, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_api_key(:A2, '');
\echo :LAST_ERROR_SQLSTATE

-- MC202: credential type does not match the service
SELECT mcp.set_api_key(:A3, 'sk-wrong-type');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_oauth_client(:A1, 'client', 'secret');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.begin_oauth(:A1, 'https://auth.example.com/authorize');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:A1, 'at', 'rt', now() + interval '1 hour', 'repo');
\echo :LAST_ERROR_SQLSTATE

-- OAuth: client, flow (state + PKCE), tokens
SELECT * FROM mcp.begin_oauth(:A3, 'https://auth.example.com/authorize');  -- no client yet
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_oauth_client(:A3, 'client-a3', 'client-secret-a3');
SELECT * FROM mcp.begin_oauth(:A3, 'https://auth.example.com/authorize') \gset flow_
SELECT length(:'flow_state') AS state_length, length(:'flow_code_challenge') AS challenge_length,
       :'flow_state' ~ '^[A-Za-z0-9_-]{43}$' AS state_is_base64url;
RESET ROLE;  -- the state hash is not readable by mcp_app
SELECT oauth_status, oauth_state ~ '^[0-9a-f]{64}$' AS state_stored_as_hash,
       oauth_state <> :'flow_state' AS state_not_stored, oauth_authorization_url,
       oauth_code_verifier IS NOT NULL AS verifier_sealed
  FROM mcp.mcp_credentials WHERE instance_id = :A3;
SET ROLE mcp_app;
-- another tenant cannot consume the state
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-00000000000b', false) IS NOT NULL AS tenant_b;
SELECT * FROM mcp.complete_oauth(:'flow_state');
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant_a;
-- the verifier matches the challenge (S256: base64url(sha256(verifier)))
SELECT * FROM mcp.complete_oauth(:'flow_state') \gset done_
SELECT :'done_instance_id' = :A3 AS right_instance,
       rtrim(translate(encode(sha256(convert_to(:'done_code_verifier', 'UTF8')), 'base64'), '+/', '-_'), '=')
           = :'flow_code_challenge' AS pkce_s256_matches;
-- replayed state: MC201
SELECT * FROM mcp.complete_oauth(:'flow_state');
\echo :LAST_ERROR_SQLSTATE
-- unknown state: MC201
SELECT * FROM mcp.complete_oauth('not-a-state');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT oauth_state IS NULL AND oauth_code_verifier IS NULL AS state_and_verifier_cleared
  FROM mcp.mcp_credentials WHERE instance_id = :A3;
SET ROLE mcp_app;

-- tokens; limits
SELECT mcp.store_oauth_tokens(:A3, repeat('a', 8193), 'rt', now() + interval '1 hour', 'repo');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:A3, 'at', repeat('r', 8193), now() + interval '1 hour', 'repo');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:A3, repeat('a', 8192), 'refresh-token-a3', '2030-01-01 00:00+00', 'repo read:user');
SELECT auth_type, client_id, client_secret, length(access_token) AS access_len, refresh_token,
       token_expires_at, token_scope, oauth_status
  FROM mcp.get_credentials(:A3);
-- a NULL refresh token keeps the stored one
SELECT mcp.store_oauth_tokens(:A3, 'access-token-a3-v2', NULL, '2030-01-02 00:00+00', 'repo');
SELECT access_token, refresh_token, token_expires_at FROM mcp.get_credentials(:A3);
SELECT oauth_status FROM mcp.mcp_service_table WHERE instance_id = :A3;

-- expired state: MC201
SELECT mcp.set_oauth_client(:A4, 'client-a4', NULL);
RESET ROLE;
SET mcp_platform.oauth_state_ttl = '1s';
SET ROLE mcp_app;
SELECT * FROM mcp.begin_oauth(:A4, 'https://auth.example.com/authorize') \gset flow4_
SELECT pg_sleep(1.2);
SELECT * FROM mcp.complete_oauth(:'flow4_state');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET mcp_platform.oauth_state_ttl;
SET ROLE mcp_app;

-- 42501: another tenant's instance, and an instance that does not exist
SELECT mcp.set_api_key(:B1, 'sk-into-b');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.get_credentials(:B1);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.revoke_credentials(:B1);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:B3, 'at', 'rt', now(), 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.begin_oauth(:B3, 'https://auth.example.com/authorize');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_oauth_client(:B3, 'c', 's');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_api_key('00000000-0000-0000-0000-0000000000ff', 'sk-nowhere');
\echo :LAST_ERROR_SQLSTATE

-- mcp_app can neither read ciphertext nor call the low-level functions
SELECT api_key FROM mcp.mcp_credentials;
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_internal.open_field(:A1, :A1, 'api_key', '\x00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.key_status();
\echo :LAST_ERROR_SQLSTATE
-- but sees its non-secret columns
SELECT instance_id, client_id, oauth_status FROM mcp.mcp_credentials ORDER BY instance_id;

-- tenant B's own data
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-00000000000b', false) IS NOT NULL AS tenant_b;
SELECT mcp.set_api_key(:B1, 'sk-live-bravo-0123456789');
SELECT mcp.set_oauth_client(:B3, 'client-b3', 'client-secret-b3');
SELECT mcp.store_oauth_tokens(:B3, 'access-token-b3', 'refresh-token-b3', now() + interval '1 hour', 'repo');
SELECT api_key FROM mcp.get_credentials(:B1);
RESET ROLE;

-- ---- at rest: ciphertext only ---------------------------------------------------------------
SELECT instance_id, key_version,
       get_byte(api_key, 0) AS api_key_format, length(api_key) - length('sk-live-alpha-replaced') AS api_key_overhead,
       position(convert_to('sk-live', 'UTF8') IN coalesce(api_key, '')) AS plaintext_in_api_key,
       position(convert_to('secret', 'UTF8') IN coalesce(client_secret, '')) AS plaintext_in_client_secret,
       position(convert_to('token', 'UTF8') IN coalesce(refresh_token, '')) AS plaintext_in_refresh_token
  FROM mcp.mcp_credentials ORDER BY instance_id;
-- the same secret twice gives different ciphertexts (random nonce)
SELECT mcp.encrypt('same', '\x01') <> mcp.encrypt('same', '\x01') AS fresh_nonces;
-- a third party can open a credential with mcp.decrypt and the documented context
SELECT mcp.decrypt(api_key, mcp.credential_context(user_id, instance_id, 'api_key'))
  FROM mcp.mcp_credentials WHERE instance_id = :A1;
SELECT mcp.credential_context(:A1, :A2, 'api_key') AS documented_context;
SELECT mcp.credential_context(:A1, :A2, 'password');
\echo :LAST_ERROR_SQLSTATE

-- ---- tampering: every failure is refused with its SQLSTATE, never a wrong plaintext --------
CREATE TEMP TABLE saved AS SELECT * FROM mcp.mcp_credentials;
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant_a;
RESET ROLE;
-- swapped between two instances of one tenant (A1's key into A2): MC102
UPDATE mcp.mcp_credentials SET api_key = (SELECT api_key FROM saved WHERE instance_id = :A1) WHERE instance_id = :A2;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A2);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- swapped between tenants (B1's key into A1): MC102
UPDATE mcp.mcp_credentials SET api_key = (SELECT api_key FROM saved WHERE instance_id = :B1) WHERE instance_id = :A1;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- swapped between columns (A3's access token into its refresh token): MC102
UPDATE mcp.mcp_credentials SET refresh_token = access_token WHERE instance_id = :A3;
SET ROLE mcp_app;
SELECT refresh_token FROM mcp.get_credentials(:A3);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
UPDATE mcp.mcp_credentials c SET refresh_token = s.refresh_token FROM saved s WHERE s.instance_id = c.instance_id AND c.instance_id = :A3;
-- tampered ciphertext byte: MC102
UPDATE mcp.mcp_credentials SET api_key = set_byte(s.api_key, 20, get_byte(s.api_key, 20) # 1)
  FROM saved s WHERE s.instance_id = :A1 AND mcp.mcp_credentials.instance_id = :A1;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- tampered tag (last byte): MC102
UPDATE mcp.mcp_credentials SET api_key = set_byte(s.api_key, length(s.api_key) - 1, get_byte(s.api_key, length(s.api_key) - 1) # 128)
  FROM saved s WHERE s.instance_id = :A1 AND mcp.mcp_credentials.instance_id = :A1;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- truncated: MC103 (shorter than a header and tag) and MC102 (tag cut off a long value)
UPDATE mcp.mcp_credentials SET api_key = substring(s.api_key FROM 1 FOR 32)
  FROM saved s WHERE s.instance_id = :A1 AND mcp.mcp_credentials.instance_id = :A1;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
UPDATE mcp.mcp_credentials SET api_key = substring(s.api_key FROM 1 FOR length(s.api_key) - 1)
  FROM saved s WHERE s.instance_id = :A1 AND mcp.mcp_credentials.instance_id = :A1;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- unknown format byte: MC103
UPDATE mcp.mcp_credentials SET api_key = set_byte(s.api_key, 0, 2)
  FROM saved s WHERE s.instance_id = :A1 AND mcp.mcp_credentials.instance_id = :A1;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- unknown key version (header says 99): MC101
UPDATE mcp.mcp_credentials SET api_key = set_byte(s.api_key, 4, 99)
  FROM saved s WHERE s.instance_id = :A1 AND mcp.mcp_credentials.instance_id = :A1;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- restored, it opens again
UPDATE mcp.mcp_credentials c SET api_key = s.api_key FROM saved s WHERE s.instance_id = c.instance_id AND c.api_key IS NOT NULL;
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:A1);
SELECT length(api_key) FROM mcp.get_credentials(:A2);
RESET ROLE;

-- the low-level functions: mcp_admin may encrypt, only a superuser may decrypt (a backup and
-- an admin login must not reveal every secret)
SET ROLE mcp_admin;
SELECT length(mcp.encrypt('admin-secret', '\xaa')) AS admin_encrypts;
SELECT mcp.decrypt(mcp.encrypt('admin-secret', '\xaa'), '\xaa');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- context is authenticated
SELECT mcp.decrypt(mcp.encrypt('admin-secret', '\xaa'), '\xaa');
SELECT mcp.decrypt(mcp.encrypt('admin-secret', '\xaa'), '\xab');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.decrypt('\x01000000', '\xaa');
\echo :LAST_ERROR_SQLSTATE
-- one rule for empty secrets: never encrypted (22023)
SELECT mcp.encrypt('', '');
\echo :LAST_ERROR_SQLSTATE
SELECT length(mcp.decrypt(mcp.encrypt(repeat('x', 100000), '\x01'), '\x01')) AS long_round_trip;
SET ROLE mcp_admin;
-- ciphertext is never readable, not even by mcp_admin
SELECT api_key FROM mcp.mcp_credentials;
\echo :LAST_ERROR_SQLSTATE
-- nor can mcp_admin record a key fingerprint of its choosing
SELECT mcp_internal.key_check('{5}', '{0000000000000000}');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---- revoke and the audit trail --------------------------------------------------------------
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant_a;
SELECT mcp.revoke_credentials(:A2);
SELECT count(*) FROM mcp.get_credentials(:A2);
SELECT operation, status, method, count(*)
  FROM mcp.token_audit_log GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
RESET ROLE;
-- no audit row and no key_check row holds a secret
SELECT count(*) AS audit_rows_with_secrets FROM mcp.token_audit_log
 WHERE concat_ws(' ', error_message, metadata::text, method, error_type) ~ '(sk-live|secret-a3|token-a3|token-b3|kkkk)';
SELECT count(*) AS key_check_rows, bool_and(fingerprint ~ '^[0-9a-f]{16}$') AS fingerprints_only FROM mcp.key_check;

-- ---- leave the shared regression database as we found it -------------------------------------
DELETE FROM mcp.users WHERE id IN ('c0000000-0000-0000-0000-00000000000a', 'c0000000-0000-0000-0000-00000000000b');
DELETE FROM mcp.token_audit_log WHERE user_id IN ('c0000000-0000-0000-0000-00000000000a', 'c0000000-0000-0000-0000-00000000000b');
DELETE FROM mcp.mcp_table WHERE mcp_service_name IN ('crypto_gh', 'crypto_gm');
SELECT count(*) AS rows_left FROM mcp.mcp_credentials;
