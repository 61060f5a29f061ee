-- Key sources and rotation, in a database of its own (its
-- own mcp.key_check). Keyring files are written into the data directory by COPY (then made
-- mode 0600) and selected with ALTER SYSTEM + reload, the way a DBA would.
-- this file sets its tenants at session level (one connection, several transactions)
SET mcp_platform.tenant_scope = session;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS mcp_crypto_keys;
CREATE DATABASE mcp_crypto_keys;
\c mcp_crypto_keys
SET client_min_messages = warning;
SET mcp_platform.tenant_scope = session;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE EXTENSION mcp_platform;

-- test helpers (this database is dropped at the end)
CREATE FUNCTION write_keyring(name text, body text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT unnest(string_to_array(%L, E''\n''))) TO %L',
                   body, current_setting('data_directory') || '/' || name);
    -- COPY creates files world-readable (0644); a keyring must be 0600
    EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'cat >/dev/null; chmod 0600 ' || name);
END $$;
CREATE FUNCTION reload_keys() RETURNS void LANGUAGE sql AS $$
    SELECT pg_reload_conf();
    SELECT pg_sleep(0.5);
$$;
-- K1, K2, K3: test keys only
SELECT write_keyring('mcp_test_k1.keyring',
    '# test keyring' || E'\n' || '1 1111111111111111111111111111111111111111111111111111111111111111');
SELECT write_keyring('mcp_test_k12.keyring',
    '1 1111111111111111111111111111111111111111111111111111111111111111' || E'\n' ||
    '2 2222222222222222222222222222222222222222222222222222222222222222  # added for rotation');
SELECT write_keyring('mcp_test_k2.keyring',
    '2 2222222222222222222222222222222222222222222222222222222222222222');
SELECT write_keyring('mcp_test_wrong.keyring',
    '1 3333333333333333333333333333333333333333333333333333333333333333');
SELECT write_keyring('mcp_test_bad.keyring',
    '# comment' || E'\n' || '1 1111111111111111111111111111111111111111111111111111111111111111' || E'\n' ||
    '2 22222222');
SELECT write_keyring('mcp_test_dup.keyring',
    '1 1111111111111111111111111111111111111111111111111111111111111111' || E'\n' ||
    '1 3333333333333333333333333333333333333333333333333333333333333333');
SELECT write_keyring('mcp_test_perm.keyring',
    '1 1111111111111111111111111111111111111111111111111111111111111111');
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; chmod 0640 mcp_test_perm.keyring';

INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('keys_gh', 'GitHub', 7201, 'api_key'), ('keys_gm', 'Gmail', 7202, 'oauth');
INSERT INTO mcp.users (id, email) VALUES ('d0000000-0000-0000-0000-00000000000a', 'keys-a@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, status)
SELECT ('e0000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'd0000000-0000-0000-0000-00000000000a',
       t.mcp_service_id, 'active'
  FROM generate_series(1, 25) i JOIN mcp.mcp_table t ON t.mcp_service_name = 'keys_gh';
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, status)
SELECT 'e1000000-0000-0000-0000-000000000001', 'd0000000-0000-0000-0000-00000000000a', mcp_service_id, 'active'
  FROM mcp.mcp_table WHERE mcp_service_name = 'keys_gm';

-- ---- no key source: MC101 ------------------------------------------------------------------
ALTER SYSTEM SET mcp_platform.key_file = '';
ALTER SYSTEM SET mcp_platform.key_command = '';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE

-- ---- a keyring file ------------------------------------------------------------------------
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_k1.keyring';
SELECT reload_keys();
SHOW mcp_platform.key_file;
-- the first load records the key's fingerprint in mcp.key_check; a recording that rolls back
-- is redone in a later transaction
BEGIN;
SELECT length(mcp.encrypt('x', '\x00')) AS sealed_length;
ROLLBACK;
SELECT count(*) AS recorded_after_rollback FROM mcp.key_check;
SELECT length(mcp.encrypt('x', '\x00')) AS sealed_length;
SELECT count(*) AS recorded FROM mcp.key_check;
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'd0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant;
SELECT count(mcp.set_api_key(instance_id, 'sk-rot-' || right(instance_id::text, 2)))
  FROM mcp.mcp_service_table WHERE instance_id::text LIKE 'e0000000%';
SELECT mcp.set_oauth_client('e1000000-0000-0000-0000-000000000001', 'client', 'client-secret');
SELECT mcp.store_oauth_tokens('e1000000-0000-0000-0000-000000000001', 'access', 'refresh', '2030-01-01', 'repo');
SELECT api_key FROM mcp.get_credentials('e0000000-0000-0000-0000-000000000007');
-- the key settings are superuser-only: not readable, not settable
-- (PostgreSQL 16 reworded the error for reading a superuser-only setting; its SQLSTATE,
-- 42501, is the same on every version: that is what these lines show and check)
\set VERBOSITY sqlstate
SHOW mcp_platform.key_file;
\echo :LAST_ERROR_SQLSTATE
SELECT current_setting('mcp_platform.key_command');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SET mcp_platform.key_file = '/tmp/attacker.keyring';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM mcp.key_status();
SELECT key_version, fingerprint FROM mcp.key_check;

-- ---- a wrong key is refused up front: MC102, before any value is touched --------------------
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_wrong.keyring';
SELECT reload_keys();
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials('e0000000-0000-0000-0000-000000000007');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_api_key('e0000000-0000-0000-0000-000000000007', 'sk-would-be-lost');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE

-- ---- bad key files: MC101 with what to fix, never key material --------------------------------
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_perm.keyring';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_bad.keyring';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_dup.keyring';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_missing.keyring';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE

-- ---- a key command ---------------------------------------------------------------------------
ALTER SYSTEM SET mcp_platform.key_file = '';
ALTER SYSTEM SET mcp_platform.key_command = 'exit 3';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET mcp_platform.key_command = 'true';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET mcp_platform.key_command = 'echo 1 not-hex';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET mcp_platform.key_command = 'cat mcp_test_k1.keyring';
SELECT reload_keys();
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials('e0000000-0000-0000-0000-000000000007');
RESET ROLE;
-- both sources at once: MC101
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_k1.keyring';
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET mcp_platform.key_command = '';
SELECT reload_keys();

-- ---- rotation: add version 2, make it active, reload ----------------------------------------
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_k12.keyring';
SELECT reload_keys();
SELECT * FROM mcp.key_status();
-- new values use version 2 (byte 4 of the header), old ones still open
SELECT get_byte(mcp.encrypt('x', '\x00'), 4) AS new_value_version;
SET ROLE mcp_app;
SELECT mcp.set_api_key('e0000000-0000-0000-0000-000000000025', 'sk-rot-25-v2');
SELECT api_key FROM mcp.get_credentials('e0000000-0000-0000-0000-000000000007');
RESET ROLE;
-- mcp_platform.active_key_version picks another version, or refuses an absent one
ALTER SYSTEM SET mcp_platform.active_key_version = 1;
SELECT reload_keys();
SELECT get_byte(mcp.encrypt('x', '\x00'), 4) AS new_value_version;
ALTER SYSTEM SET mcp_platform.active_key_version = 7;
SELECT reload_keys();
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM RESET mcp_platform.active_key_version;
-- a value under version 2 with a keyring that lacks it: MC101 (unknown version)
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_k1.keyring';
SELECT reload_keys();
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials('e0000000-0000-0000-0000-000000000025');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_k12.keyring';
SELECT reload_keys();

-- one stored value damaged (its authentication tag flipped, as a bad disk or a tamperer
-- would): rotation must still finish, skipping and reporting it
UPDATE mcp.mcp_credentials
   SET api_key = set_byte(api_key, length(api_key) - 1, get_byte(api_key, length(api_key) - 1) # 255)
 WHERE instance_id = 'e0000000-0000-0000-0000-000000000003';

-- re-seal in batches until 0, as mcp_admin (rows and values per version on the way)
SET ROLE mcp_admin;
SELECT mcp.rotate_credentials(10) AS rotated;
RESET ROLE;
SELECT key_version, count(*) FROM mcp.mcp_credentials GROUP BY 1 ORDER BY 1;
SET ROLE mcp_admin;
SELECT mcp.rotate_credentials(10) AS rotated;
SELECT mcp.rotate_credentials(10) AS rotated;
SELECT mcp.rotate_credentials(10) AS rotated;
SELECT mcp.rotate_credentials(0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.key_status();
RESET ROLE;
-- the damaged row is marked, not retried; its tenant stores the key again, which repairs it
SELECT instance_id, key_version FROM mcp.mcp_credentials WHERE key_version = -1;
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'd0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant;
SELECT mcp.set_api_key('e0000000-0000-0000-0000-000000000003', 'sk-rot-03');
RESET ROLE;
SET ROLE mcp_admin;
SELECT mcp.rotate_credentials(10) AS rotated;
SELECT key_version, undecryptable_instances FROM mcp.key_status();
RESET ROLE;

-- remove version 1: everything still decrypts
ALTER SYSTEM SET mcp_platform.key_file = 'mcp_test_k2.keyring';
SELECT reload_keys();
SELECT * FROM mcp.key_status();
SET ROLE mcp_app;
SELECT count(*) AS instances, count(*) FILTER (WHERE c.api_key = 'sk-rot-' || right(s.instance_id::text, 2)) AS keys_ok,
       count(*) FILTER (WHERE c.api_key = 'sk-rot-25-v2') AS replaced_ok
  FROM mcp.mcp_service_table s, LATERAL mcp.get_credentials(s.instance_id) c
 WHERE s.instance_id::text LIKE 'e0000000%';
SELECT client_secret, access_token, refresh_token FROM mcp.get_credentials('e1000000-0000-0000-0000-000000000001');
RESET ROLE;

-- ---- restore the test command's key source ----------------------------------------------------
ALTER SYSTEM RESET mcp_platform.key_file;
ALTER SYSTEM RESET mcp_platform.key_command;
ALTER SYSTEM RESET mcp_platform.active_key_version;
SELECT reload_keys();
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -f mcp_test_k1.keyring mcp_test_k12.keyring mcp_test_k2.keyring mcp_test_wrong.keyring mcp_test_bad.keyring mcp_test_dup.keyring mcp_test_perm.keyring';
\c :regress_db
DROP DATABASE mcp_crypto_keys;
