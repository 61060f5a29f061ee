-- The API contract a backend can map to responses without parsing messages: MC301 when no
-- tenant is set (an application bug), 42501 only for "not yours / no such instance", MC002
-- unknown service, MC003 inactive service, MC004 an instance that is not active, 55000 a failed
-- precondition, 22001 naming the field, MC001 with "limit=N active=M" in its DETAIL; and
-- mcp.plan_status(), which answers what the application would otherwise recompute.
-- this file sets its tenants at session level (one connection, several transactions)
SET mcp_platform.tenant_scope = session;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type, is_active) VALUES
    ('c5000000-0000-0000-0000-000000000001', 'contract_key', 'Key', 7701, 'api_key', true),
    ('c5000000-0000-0000-0000-000000000002', 'contract_oauth', 'OAuth', 7702, 'oauth', true),
    ('c5000000-0000-0000-0000-000000000003', 'contract_off', 'Off', 7703, 'api_key', true);
INSERT INTO mcp.users (id, email) VALUES
    ('c0000000-0000-0000-0000-0000000000f1', 'free@contract.example'),
    ('c0000000-0000-0000-0000-0000000000f2', 'pro@contract.example'),
    ('c0000000-0000-0000-0000-0000000000f3', 'lapsed@contract.example');
SELECT mcp.set_plan('c0000000-0000-0000-0000-0000000000f2', 'pro');
SELECT mcp.set_plan('c0000000-0000-0000-0000-0000000000f3', 'pro', now() + interval '1 day');
\set key_inst 'c1000000-0000-0000-0000-000000000001'
\set oauth_inst 'c1000000-0000-0000-0000-000000000002'

SET ROLE mcp_app;
-- ---- no tenant: MC301 everywhere a tenant is needed ----------------------------------------
SELECT * FROM mcp.plan_status();
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.create_instance('contract_key');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.get_credentials(:'key_inst');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.record_usage(:'key_inst');
\echo :LAST_ERROR_SQLSTATE

-- ---- the free user ---------------------------------------------------------------------------
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-0000000000f1', false) IS NOT NULL AS tenant_free;
SELECT * FROM mcp.plan_status();
RESET ROLE;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, custom_name)
VALUES (:'key_inst', 'c0000000-0000-0000-0000-0000000000f1', 'c5000000-0000-0000-0000-000000000001', 'one');
SET ROLE mcp_app;
SELECT mcp.set_api_key(:'key_inst', 'sk-contract-1');
SELECT * FROM mcp.plan_status();
-- over the limit: MC001, DETAIL in its fixed form
SELECT mcp.create_instance('contract_key', 'two');
\echo :LAST_ERROR_SQLSTATE
-- services: unknown MC002, inactive MC003
SELECT mcp.create_instance('contract_nope');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
UPDATE mcp.mcp_table SET is_active = false WHERE mcp_service_id = 'c5000000-0000-0000-0000-000000000003';
SET ROLE mcp_app;
SELECT mcp.create_instance('contract_off');
\echo :LAST_ERROR_SQLSTATE
-- not yours / no such instance: 42501
SELECT * FROM mcp.get_credentials('c1000000-0000-0000-0000-0000000000ff');
\echo :LAST_ERROR_SQLSTATE
-- a secret too long: 22001 with the field in DETAIL
SELECT mcp.set_api_key(:'key_inst', repeat('k', 501));
\echo :LAST_ERROR_SQLSTATE
-- credentials of an active instance read back
SELECT api_key FROM mcp.get_credentials(:'key_inst');
-- an inactive instance hands out nothing: MC004
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = :'key_inst';
SELECT api_key FROM mcp.get_credentials(:'key_inst');
\echo :LAST_ERROR_SQLSTATE
-- nor an expired one (past expires_at, before any expiry job ran)
UPDATE mcp.mcp_service_table SET status = 'active', expires_at = now() + interval '1 hour' WHERE instance_id = :'key_inst';
RESET ROLE;
UPDATE mcp.mcp_service_table SET expires_at = now() - interval '1 second' WHERE instance_id = :'key_inst';
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:'key_inst');
\echo :LAST_ERROR_SQLSTATE
SELECT effective_limit, active_instances, remaining FROM mcp.plan_status();
-- renewed, it reads again; then its service is switched off: MC003
SELECT mcp.renew_instance(:'key_inst', now() + interval '1 day');
SELECT api_key FROM mcp.get_credentials(:'key_inst');
RESET ROLE;
UPDATE mcp.mcp_table SET is_active = false WHERE mcp_service_id = 'c5000000-0000-0000-0000-000000000001';
SET ROLE mcp_app;
SELECT api_key FROM mcp.get_credentials(:'key_inst');
\echo :LAST_ERROR_SQLSTATE

-- ---- the pro user: unlimited; a failed precondition is 55000 --------------------------------
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-0000000000f2', false) IS NOT NULL AS tenant_pro;
RESET ROLE;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, custom_name)
VALUES (:'oauth_inst', 'c0000000-0000-0000-0000-0000000000f2', 'c5000000-0000-0000-0000-000000000002', 'oauth');
SET ROLE mcp_app;
SELECT * FROM mcp.plan_status();
SELECT * FROM mcp.begin_oauth(:'oauth_inst', 'https://provider.example/auth');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:'oauth_inst', 'a', 'r', now() + interval '1 hour', NULL);
\echo :LAST_ERROR_SQLSTATE

-- ---- the lapsed user: three active instances, then the pro plan lapses ----------------------
SELECT set_config('mcp.user_id', 'c0000000-0000-0000-0000-0000000000f3', false) IS NOT NULL AS tenant_lapsed;
SELECT count(mcp.create_instance('contract_oauth', 'l' || g)) AS created FROM generate_series(1, 3) AS g;
RESET ROLE;
UPDATE mcp.user_plans SET expires_at = now() - interval '1 minute'
 WHERE user_id = 'c0000000-0000-0000-0000-0000000000f3';
SET ROLE mcp_app;
-- the instances stay; the plan counts as free; nothing more can be activated
SELECT plan_type, effective_plan, max_instances, effective_limit, active_instances, remaining, lapsed
  FROM mcp.plan_status();
SELECT mcp.create_instance('contract_oauth', 'l4');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- erasure takes the audit rows with the users
SELECT count(mcp.erase_user(id)) AS erased FROM mcp.users WHERE email LIKE '%@contract.example';
DELETE FROM mcp.mcp_table WHERE mcp_service_id IN ('c5000000-0000-0000-0000-000000000001',
    'c5000000-0000-0000-0000-000000000002', 'c5000000-0000-0000-0000-000000000003');
