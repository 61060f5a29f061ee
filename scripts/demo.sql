-- The walkthrough run by scripts/demo.sh. Each step echoes what it does.
\set ECHO queries
\pset footer off
CREATE EXTENSION mcp_platform;

\echo '--- 1. the catalog (as mcp_admin)'
SET ROLE mcp_admin;
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type) VALUES
    ('github', 'GitHub', 7001, 'api_key'),
    ('gmail', 'Gmail', 7002, 'oauth');
RESET ROLE;

\echo '--- 2. a user signs up (as the backend role mcp_app); a free plan is assigned by trigger'
SET ROLE mcp_app;
SELECT mcp.sign_up('ada@example.com', 'Ada') AS ada \gset
SELECT mcp.sign_up('bob@example.com', 'Bob') AS bob \gset

\echo '--- 3. the backend sets the tenant for its transaction; RLS shows only that tenant'
BEGIN;
SELECT set_config('mcp.user_id', :'ada', true) IS NOT NULL AS tenant_is_ada;
SELECT plan_type, max_instances FROM mcp.user_plans;
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id, custom_name)
SELECT :'ada', mcp_service_id, 'my github' FROM mcp.mcp_table WHERE mcp_service_name = 'github'
RETURNING instance_id AS ada_instance \gset
SELECT instance_id, custom_name, status FROM mcp.mcp_service_table;
SELECT mcp.log_token_operation(:'ada_instance', 'validate', 'success', 'api_key') AS audit_id;
COMMIT;

BEGIN;
SELECT set_config('mcp.user_id', :'bob', true) IS NOT NULL AS tenant_is_bob;
SELECT count(*) AS instances_bob_can_see FROM mcp.mcp_service_table;
COMMIT;
SELECT count(*) AS instances_visible_without_a_tenant FROM mcp.mcp_service_table;

\echo '--- 4. the audit trail (30-day summary, current tenant only)'
BEGIN;
SELECT set_config('mcp.user_id', :'ada', true) IS NOT NULL AS tenant_is_ada;
SELECT operation, method, total_operations, success_rate FROM mcp.token_audit_summary;
COMMIT;
RESET ROLE;

\echo '--- credentials: sealed in C (AES-256-GCM) before the row is written; only ciphertext at rest'
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', :'ada', true) IS NOT NULL AS tenant_is_ada;
SELECT mcp.set_api_key(:'ada_instance', 'ghp_demo0123456789abcdefghijklmnopqrstuv');
SELECT auth_type, api_key FROM mcp.get_credentials(:'ada_instance');
COMMIT;
RESET ROLE;
-- what is stored (read as the superuser running the demo): format byte, key version, length
SELECT get_byte(api_key, 0) AS format, mcp_internal.envelope_key_version(api_key) AS key_version,
       length(api_key) AS stored_bytes,
       position(convert_to('ghp_demo', 'UTF8') IN api_key) AS plaintext_found_at
  FROM mcp.mcp_credentials WHERE instance_id = :'ada_instance';
SELECT key_version, is_active, fingerprint, stored_values FROM mcp.key_status();
-- Bob cannot read Ada's credentials: 42501
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', :'bob', true) IS NOT NULL AS tenant_is_bob;
\set ON_ERROR_STOP off
SELECT * FROM mcp.get_credentials(:'ada_instance');
\set ON_ERROR_STOP on
ROLLBACK;
RESET ROLE;

\echo '--- plan limits: ada is on the free plan (one active instance); a second one is refused'
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', :'ada', true) IS NOT NULL AS tenant_is_ada;
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
SELECT mcp.create_instance('gmail', 'second instance');
\set SHOW_CONTEXT errors
\set ON_ERROR_STOP 1
\echo 'SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK;
\echo '--- ... until mcp_admin upgrades her to pro (unlimited)'
SET ROLE mcp_admin;
SELECT mcp.set_plan(:'ada', 'pro', now() + interval '1 month');
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', :'ada', true) IS NOT NULL AS tenant_is_ada;
SELECT mcp.create_instance('gmail', 'second instance') IS NOT NULL AS created_on_pro;
SELECT plan_type, active_instances FROM mcp.user_plans;
COMMIT;
SELECT mcp_service_name, total_instances_created, active_instances_count FROM mcp.service_stats ORDER BY 1;
RESET ROLE;
