-- The users table under row-level security: a tenant (mcp_app) sees and updates its own
-- account only, cannot delete accounts, cannot lock other users' rows, and cannot insert them
-- directly; sign-up and the login lookup go through mcp.sign_up and mcp.find_user, which work
-- without a tenant. Erasure and export are mcp_admin's. (On 1.0 any tenant read every email,
-- could take over another account by changing its email, delete every account, and lock other
-- users' rows so that their activations failed.)
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- ---- sign-up and login, as the backend, without a tenant --------------------------------------
SET ROLE mcp_app;
SELECT mcp.sign_up('Alice@Users.example', 'Alice') AS alice \gset
SELECT mcp.sign_up('bob@users.example') AS bob \gset
SELECT mcp.sign_up('alice@USERS.example', 'Mallory');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.sign_up('not-an-email');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.sign_up(repeat('a', 250) || '@users.example');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.find_user('ALICE@users.example') = :'alice' AS login_finds_alice,
       mcp.find_user('nobody@users.example') IS NULL AS unknown_is_null;
-- a direct insert is refused: sign-up is the function's
INSERT INTO mcp.users (email) VALUES ('carol@users.example');
\echo :LAST_ERROR_SQLSTATE
-- with no tenant, no account is visible
SELECT count(*) AS visible_without_tenant FROM mcp.users;

-- ---- Bob's session -----------------------------------------------------------------------------
BEGIN;
SELECT set_config('mcp.user_id', :'bob', true) IS NOT NULL AS tenant_bob;
SELECT email FROM mcp.users;
-- Alice's row: invisible, so neither changed nor locked
UPDATE mcp.users SET email = 'bob-owns-this@users.example' WHERE id = :'alice';
SELECT id FROM mcp.users WHERE id = :'alice' FOR UPDATE;
-- his own row he may update (email and name only)
UPDATE mcp.users SET name = 'Bob' WHERE id = :'bob';
UPDATE mcp.users SET created_at = now() WHERE id = :'bob';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT set_config('mcp.user_id', :'bob', true) IS NOT NULL AS tenant_bob;
DELETE FROM mcp.users;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;
SELECT email, name FROM mcp.users WHERE email LIKE '%@users.example' ORDER BY email;

-- ---- a row lock by one tenant cannot stall another's activation -----------------------------
-- (Bob cannot see, hence cannot lock, Alice's row; Alice's instances are created as usual)
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('b5000000-0000-0000-0000-000000000001', 'users_svc', 'Users', 7601, 'api_key');
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', :'alice', true) IS NOT NULL AS tenant_alice;
SELECT mcp.create_instance('users_svc', 'alice svc') AS alice_inst \gset
SELECT mcp.set_api_key(:'alice_inst', 'sk-alice-erase-me');
SELECT mcp.log_token_operation(:'alice_inst', 'validate', 'failure', 'api_key', 'provider_error', 'alice said no') > 0 AS logged;
COMMIT;
RESET ROLE;
-- and audit rows of earlier days, rolled up by maintenance
SELECT mcp.ensure_audit_partitions(now() - interval '3 days', now() - interval '2 days') >= 0 AS partitions;
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
SELECT :'alice_inst', :'alice', 'refresh', 'success', now() - g * interval '1 day'
  FROM generate_series(2, 3) AS g;
SELECT (mcp.run_maintenance()->>'skipped')::boolean AS skipped;
SELECT count(*) > 0 AS alice_rolled_up FROM mcp.token_audit_daily WHERE user_id = :'alice';

-- ---- an admin inserting directly still gives the user a free plan -----------------------------
SET ROLE mcp_admin;
INSERT INTO mcp.users (email) VALUES ('dave@users.example') RETURNING id AS dave \gset
SELECT plan_type, max_instances FROM mcp.user_plans WHERE user_id = :'dave';

-- ---- export and erasure (mcp_admin) ----------------------------------------------------------
SELECT array(SELECT jsonb_object_keys(x) ORDER BY 1) AS export_parts,
       x->'credentials'->0->'secrets_stored' AS secrets_named,
       x->'user'->>'email' AS email, jsonb_array_length(x->'instances') AS instances,
       jsonb_array_length(x->'audit') AS audit_rows,
       x::text LIKE '%sk-alice%' AS export_reveals_secret
  FROM mcp.export_user(:'alice') AS x;
SELECT mcp.erase_user(:'alice');
\set VERBOSITY sqlstate
SELECT mcp.erase_user(:'alice');
\set VERBOSITY default
RESET ROLE;
-- nothing of Alice remains, in any table, partition or rollup
SELECT (SELECT count(*) FROM mcp.users WHERE id = :'alice') AS users,
       (SELECT count(*) FROM mcp.user_plans WHERE user_id = :'alice') AS plans,
       (SELECT count(*) FROM mcp.mcp_service_table WHERE user_id = :'alice') AS instances,
       (SELECT count(*) FROM mcp.mcp_credentials WHERE user_id = :'alice') AS credentials,
       (SELECT count(*) FROM mcp.token_audit_log WHERE user_id = :'alice') AS audit_rows,
       (SELECT count(*) FROM mcp.token_audit_daily WHERE user_id = :'alice') AS rollup_rows,
       (SELECT count(*) FROM mcp.token_audit_window WHERE user_id = :'alice') AS window_rows,
       (SELECT count(*) FROM mcp.token_audit_summary WHERE user_id = :'alice') AS summary_rows;
-- the backend cannot erase or export
SET ROLE mcp_app;
SELECT mcp.erase_user(:'bob');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.export_user(:'bob');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

\i test/include/reset_audit_log.sql
DELETE FROM mcp.users WHERE email LIKE '%@users.example';
DELETE FROM mcp.mcp_table WHERE mcp_service_id = 'b5000000-0000-0000-0000-000000000001';
