-- The 1.0 schema: constraints reject what they should (with their SQLSTATE), triggers fire,
-- pg_dump registrations exist. Runs as superuser (RLS bypassed) to set up data directly.
\set VERBOSITY terse
SET search_path = mcp, public;

-- ---- users --------------------------------------------------------------------------------
INSERT INTO users (id, email, name) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'Alice@Example.com', 'Alice'),
    ('00000000-0000-0000-0000-00000000000b', 'bob@example.com', NULL);
-- unique case-insensitively (23505)
INSERT INTO users (email) VALUES ('alice@example.COM');
\echo :LAST_ERROR_SQLSTATE
-- shape checked (23514)
INSERT INTO users (email) VALUES ('not-an-email');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO users (email) VALUES ('two@@example.com');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO users (email) VALUES (NULL);
\echo :LAST_ERROR_SQLSTATE

-- a free plan was created for each new user by trigger
SELECT u.email, p.plan_type, p.max_instances, p.expires_at, p.active_instances, p.features
  FROM users u JOIN user_plans p ON p.user_id = u.id ORDER BY u.email;

-- ---- updated_at trigger -------------------------------------------------------------------
UPDATE users SET updated_at = '2000-01-01', created_at = '2000-01-01' WHERE email = 'bob@example.com';
BEGIN;
UPDATE users SET name = 'Bob' WHERE email = 'bob@example.com';
SELECT updated_at = now() AS updated_at_is_now, created_at = '2000-01-01' AS created_at_kept
  FROM users WHERE email = 'bob@example.com';
COMMIT;
-- the trigger exists on every table with an updated_at column, and fires there
SELECT c.relname, t.tgname, t.tgfoid = 'mcp_internal.set_updated_at'::regproc AS uses_c_trigger, t.tgtype
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'mcp'
  LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname LIKE '%set_updated_at'
 WHERE a.attname = 'updated_at' AND c.relkind IN ('r', 'p')
 ORDER BY 1;
-- it refuses to be called other than as a BEFORE UPDATE row trigger (39P01)
CREATE TEMP TABLE t_wrong (updated_at timestamptz);
CREATE TRIGGER t_wrong_ins BEFORE INSERT ON t_wrong FOR EACH ROW EXECUTE FUNCTION mcp_internal.set_updated_at();
INSERT INTO t_wrong VALUES (now());
\echo :LAST_ERROR_SQLSTATE
DROP TABLE t_wrong;
SELECT mcp_internal.set_updated_at();
\echo :LAST_ERROR_SQLSTATE

-- ---- user_plans ---------------------------------------------------------------------------
-- one plan per user (23505)
INSERT INTO user_plans (user_id, plan_type, max_instances) VALUES ('00000000-0000-0000-0000-00000000000a', 'pro', NULL);
\echo :LAST_ERROR_SQLSTATE
-- max_instances tied to plan_type (23514)
UPDATE user_plans SET max_instances = 5 WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
UPDATE user_plans SET plan_type = 'pro' WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
UPDATE user_plans SET plan_type = 'gold', max_instances = NULL WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
UPDATE user_plans SET features = '[1]' WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
-- user_id is immutable on tenant rows (42501)
UPDATE user_plans SET user_id = '00000000-0000-0000-0000-00000000000b' WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
-- plan for a user that does not exist (23503)
INSERT INTO user_plans (user_id) VALUES ('00000000-0000-0000-0000-0000000000ff');
\echo :LAST_ERROR_SQLSTATE

-- ---- user_billing_details -----------------------------------------------------------------
INSERT INTO user_billing_details (user_id, razorpay_customer_id, payment_method_type, card_brand, card_last_four, billing_email)
VALUES ('00000000-0000-0000-0000-00000000000a', 'cust_1', 'card', 'visa', '4242', 'billing@example.com');
-- never a full card number (23514, 22001)
UPDATE user_billing_details SET card_last_four = '42x2' WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
UPDATE user_billing_details SET card_last_four = '4242424242424242' WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
UPDATE user_billing_details SET payment_method_type = 'cash' WHERE user_id = '00000000-0000-0000-0000-00000000000a';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_billing_details (user_id) VALUES ('00000000-0000-0000-0000-00000000000a');
\echo :LAST_ERROR_SQLSTATE

-- ---- mcp_table (catalog) ------------------------------------------------------------------
INSERT INTO mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'github', 'GitHub', 7001, 'api_key'),
    ('00000000-0000-0000-0000-0000000000c2', 'gmail', 'Gmail', 7002, 'oauth');
INSERT INTO mcp_table (mcp_service_name, display_name, port, type) VALUES ('github', 'Again', 7003, 'api_key');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_table (mcp_service_name, display_name, port, type) VALUES ('slack', 'Slack', 7001, 'api_key');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_table (mcp_service_name, display_name, port, type) VALUES ('slack', 'Slack', 7003, 'password');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_table (mcp_service_name, display_name, port, type) VALUES ('slack', 'Slack', 70000, 'api_key');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_table (mcp_service_name, display_name, port, type) VALUES ('Bad Name', 'Slack', 7003, 'api_key');
\echo :LAST_ERROR_SQLSTATE

-- ---- mcp_service_table (instances) --------------------------------------------------------
INSERT INTO mcp_service_table (instance_id, user_id, mcp_service_id, custom_name) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1', 'a github'),
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c2', 'b gmail');
INSERT INTO mcp_service_table (user_id, mcp_service_id, status) VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1', 'paused');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_service_table (user_id, mcp_service_id, status) VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000ff', 'inactive');
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp_service_table SET user_id = '00000000-0000-0000-0000-00000000000b' WHERE instance_id = '00000000-0000-0000-0000-0000000000a1';
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp_service_table SET usage_count = -1 WHERE instance_id = '00000000-0000-0000-0000-0000000000a1';
\echo :LAST_ERROR_SQLSTATE
SELECT instance_id, status, usage_count, renewed_count FROM mcp_service_table ORDER BY instance_id;

-- ---- mcp_credentials ----------------------------------------------------------------------
-- (ciphertext columns are written by the credential API; raw bytes suffice for constraints)
INSERT INTO mcp_credentials (user_id, instance_id, api_key)
VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', '\x01'::bytea);
-- one credential row per instance (23505)
INSERT INTO mcp_credentials (user_id, instance_id, api_key)
VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', '\x01'::bytea);
\echo :LAST_ERROR_SQLSTATE
-- composite FK: instance a1 belongs to user a, not b (23503)
INSERT INTO mcp_credentials (user_id, instance_id, api_key)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000a1', '\x01'::bytea);
\echo :LAST_ERROR_SQLSTATE
-- API key xor OAuth (23514)
INSERT INTO mcp_credentials (user_id, instance_id, api_key, client_id)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', '\x01', 'client');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_credentials (user_id, instance_id)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1');
\echo :LAST_ERROR_SQLSTATE
-- token consistency: refresh token without access token, tokens without client (23514)
INSERT INTO mcp_credentials (user_id, instance_id, client_id, refresh_token)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'client', '\x01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_credentials (user_id, instance_id, client_id, token_expires_at)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'client', now());
\echo :LAST_ERROR_SQLSTATE
-- status consistency: completed needs a token and a completion time; API keys have no status
INSERT INTO mcp_credentials (user_id, instance_id, client_id, oauth_status)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'client', 'completed');
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp_credentials SET oauth_status = 'pending' WHERE instance_id = '00000000-0000-0000-0000-0000000000a1';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_credentials (user_id, instance_id, client_id, oauth_status)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'client', 'unknown');
\echo :LAST_ERROR_SQLSTATE
-- the OAuth state is stored only as a SHA-256 hex digest
INSERT INTO mcp_credentials (user_id, instance_id, client_id, oauth_state, oauth_state_expires_at)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'client', 'plain-state', now());
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp_credentials (user_id, instance_id, client_id, access_token, refresh_token, token_expires_at, oauth_status, oauth_completed_at)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'client', '\x01', '\x02', now(), 'completed', now());
UPDATE mcp_credentials SET instance_id = '00000000-0000-0000-0000-0000000000a1' WHERE user_id = '00000000-0000-0000-0000-00000000000b';
\echo :LAST_ERROR_SQLSTATE
SELECT user_id, instance_id, api_key IS NOT NULL AS has_api_key, client_id, oauth_status
  FROM mcp_credentials ORDER BY user_id;

-- ---- token_audit_log ----------------------------------------------------------------------
INSERT INTO token_audit_log (instance_id, user_id, operation, status) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'refresh', 'success');
INSERT INTO token_audit_log (instance_id, user_id, operation, status) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'explode', 'success');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO token_audit_log (instance_id, user_id, operation, status) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'refresh', 'maybe');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO token_audit_log (instance_id, user_id, operation, status, metadata) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'refresh', 'success', '"x"');
\echo :LAST_ERROR_SQLSTATE

-- ---- deleting: instances cascade to credentials; audit rows outlive their instance --------
DELETE FROM mcp_service_table WHERE instance_id = '00000000-0000-0000-0000-0000000000a1';
SELECT count(*) AS credentials_left_for_a1 FROM mcp_credentials WHERE instance_id = '00000000-0000-0000-0000-0000000000a1';
SELECT count(*) AS audit_rows_left_for_a1 FROM token_audit_log WHERE instance_id = '00000000-0000-0000-0000-0000000000a1';

-- ---- tenant shape: every tenant table's PK and unique constraints include user_id, and its
--      FKs to other tenant tables are composite on (user_id, ...)
SELECT c.conrelid::regclass AS tbl, c.conname, c.contype,
       'user_id' = ANY (SELECT a.attname FROM pg_attribute a
                         WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)) AS includes_user_id
  FROM pg_constraint c
 WHERE c.conrelid IN ('mcp.user_plans'::regclass, 'mcp.user_billing_details'::regclass,
                      'mcp.mcp_service_table'::regclass, 'mcp.mcp_credentials'::regclass,
                      'mcp.token_audit_log'::regclass)
   AND c.contype IN ('p', 'u', 'f')
 ORDER BY 1, 2;

-- ---- pg_dump keeps the data of every table and sequence -----------------------------------
SELECT unnest(extconfig)::regclass AS dumped FROM pg_extension WHERE extname = 'mcp_platform' ORDER BY 1;
SELECT c.oid::regclass AS not_dumped
  FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'mcp_platform'
 WHERE c.relkind IN ('r', 'p', 'S') AND c.oid <> ALL (e.extconfig);

-- clean up for the following tests
DELETE FROM users;
DELETE FROM mcp_table;
TRUNCATE token_audit_log;
