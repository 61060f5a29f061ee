-- Tenant isolation: run as mcp_app, a tenant sees and changes only its own rows;
-- with no tenant set, no rows; the table owner does not bypass it (FORCE ROW LEVEL SECURITY).
-- this file sets its tenants at session level (one connection, several transactions)
SET mcp_platform.tenant_scope = session;
\set VERBOSITY terse
SET search_path = mcp, public;

-- Two tenants with one instance, credential, billing row and audit row each (as superuser).
INSERT INTO users (id, email) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'a@example.com'),
    ('00000000-0000-0000-0000-00000000000b', 'b@example.com');
INSERT INTO mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'github', 'GitHub', 7001, 'api_key');
INSERT INTO mcp_service_table (instance_id, user_id, mcp_service_id) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1'),
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c1');
INSERT INTO mcp_credentials (user_id, instance_id, api_key) VALUES
    ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', '\x01'),
    ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', '\x02');
INSERT INTO user_billing_details (user_id, razorpay_customer_id) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'cust_a'),
    ('00000000-0000-0000-0000-00000000000b', 'cust_b');
INSERT INTO token_audit_log (instance_id, user_id, operation, status) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'validate', 'success'),
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', 'validate', 'failure');

-- RLS is enabled and forced on every tenant table, and every table has the policies.
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       array_agg(p.polname ORDER BY p.polname) AS policies
  FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relnamespace = 'mcp'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname IN ('user_plans', 'user_billing_details', 'mcp_service_table', 'mcp_credentials', 'token_audit_log')
 GROUP BY 1, 2, 3 ORDER BY 1;
-- every policy column is indexed (user_id leads an index on each tenant table)
SELECT c.relname, bool_or(a.attname = 'user_id' AND i.indkey[0] = a.attnum) AS user_id_indexed
  FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'user_id'
 WHERE c.relnamespace = 'mcp'::regnamespace
   AND c.relname IN ('user_plans', 'user_billing_details', 'mcp_service_table', 'mcp_credentials', 'token_audit_log')
 GROUP BY 1 ORDER BY 1;

-- The tenant function: unset or empty means NULL; a malformed value is an error (22P02).
SELECT mcp.current_user_id() IS NULL AS unset_is_null;
SELECT set_config('mcp.user_id', '', false) AS empty, mcp.current_user_id() IS NULL AS empty_is_null;
SELECT set_config('mcp.user_id', 'not-a-uuid', false) IS NOT NULL AS set;
SELECT mcp.current_user_id();
\echo :LAST_ERROR_SQLSTATE
RESET mcp.user_id;

SET ROLE mcp_app;

-- ---- no tenant set: no rows anywhere, and no writes ---------------------------------------
SELECT (SELECT count(*) FROM user_plans) AS plans, (SELECT count(*) FROM user_billing_details) AS billing,
       (SELECT count(*) FROM mcp_service_table) AS instances,
       (SELECT count(*) FROM mcp_credentials) AS credentials,
       (SELECT count(*) FROM token_audit_log) AS audit,
       (SELECT count(*) FROM token_audit_summary) AS summary;
INSERT INTO mcp_service_table (user_id, mcp_service_id, status)
VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1', 'inactive');
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp_service_table SET custom_name = 'x';
DELETE FROM user_billing_details;

-- ---- tenant A: only A's rows ----------------------------------------------------------------
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000a', true) IS NOT NULL AS tenant_set;
SELECT user_id, plan_type FROM user_plans;
SELECT user_id, razorpay_customer_id FROM user_billing_details;
SELECT user_id, instance_id FROM mcp_service_table;
SELECT user_id, instance_id FROM mcp_credentials;
SELECT user_id, instance_id, operation FROM token_audit_log;
SELECT user_id, instance_id, operation, total_operations, success_rate FROM token_audit_summary;
-- B's rows by key: invisible
SELECT count(*) AS b_instance_visible FROM mcp_service_table WHERE instance_id = '00000000-0000-0000-0000-0000000000b1';
-- updating or deleting B's rows does nothing
UPDATE mcp_service_table SET custom_name = 'hijacked' WHERE instance_id = '00000000-0000-0000-0000-0000000000b1';
UPDATE user_billing_details SET razorpay_customer_id = 'hijacked' WHERE user_id = '00000000-0000-0000-0000-00000000000b';
DELETE FROM mcp_service_table WHERE user_id = '00000000-0000-0000-0000-00000000000b';
-- credentials are not deleted directly at all (mcp.revoke_credentials audits it): 42501
SAVEPOINT s;
DELETE FROM mcp_credentials WHERE user_id = '00000000-0000-0000-0000-00000000000b';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- inserting a row for B fails (42501)
SAVEPOINT s;
INSERT INTO mcp_service_table (user_id, mcp_service_id, status)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c1', 'inactive');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
INSERT INTO user_billing_details (user_id) VALUES ('00000000-0000-0000-0000-00000000000b');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- moving A's row to B fails too
UPDATE user_billing_details SET user_id = '00000000-0000-0000-0000-00000000000b';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- A's own rows are writable
UPDATE mcp_service_table SET custom_name = 'mine' WHERE instance_id = '00000000-0000-0000-0000-0000000000a1';
INSERT INTO mcp_service_table (instance_id, user_id, mcp_service_id, status)
VALUES ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1', 'inactive');
SELECT instance_id, custom_name, status FROM mcp_service_table ORDER BY instance_id;
-- no direct access to ciphertext columns, no direct writes of credentials or plans, no raw audit inserts
SELECT api_key FROM mcp_credentials;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT access_token, refresh_token, client_secret, oauth_code_verifier FROM mcp_credentials;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
UPDATE mcp_credentials SET api_key = '\x00';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
UPDATE user_plans SET plan_type = 'pro', max_instances = NULL;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
INSERT INTO token_audit_log (instance_id, user_id, operation, status)
VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'validate', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
UPDATE mcp_table SET is_active = false;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- the audit function derives the user from the instance and refuses B's instance
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000a1', 'validate', 'success') > 0 AS logged;
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000b1', 'validate', 'success');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;

-- tenant B still has everything it had
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', true) IS NOT NULL AS tenant_set;
SELECT user_id, instance_id, custom_name FROM mcp_service_table;
SELECT user_id, razorpay_customer_id FROM user_billing_details;
SELECT count(*) AS b_credentials FROM mcp_credentials;
SELECT user_id, operation, status FROM token_audit_log;
COMMIT;

-- the setting is transaction-local when set with is_local = true
SELECT count(*) AS rows_after_commit FROM mcp_service_table;
RESET ROLE;

-- ---- the table owner does not bypass RLS (only superusers and BYPASSRLS roles do) ----------
CREATE ROLE mcp_test_owner NOLOGIN;
BEGIN;
ALTER TABLE mcp.mcp_service_table OWNER TO mcp_test_owner;
GRANT USAGE ON SCHEMA mcp TO mcp_test_owner;
SET LOCAL ROLE mcp_test_owner;
SELECT count(*) AS owner_sees_without_tenant FROM mcp.mcp_service_table;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', true) IS NOT NULL AS tenant_set;
SELECT count(*) AS owner_sees_with_tenant_b FROM mcp.mcp_service_table;
ROLLBACK;
DROP ROLE mcp_test_owner;

-- ---- mcp_admin sees every tenant ------------------------------------------------------------
SET ROLE mcp_admin;
SELECT count(*) AS admin_sees_instances FROM mcp_service_table;
SELECT api_key FROM mcp_credentials;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- clean up for the following tests
DELETE FROM users;
DELETE FROM mcp_table;
TRUNCATE token_audit_log;
