-- Plan-limit enforcement: every path that makes an instance active is checked by
-- the C trigger, with MC001 naming the plan and the limit. Runs mostly as mcp_app with a
-- tenant set, as the platform backend does.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET search_path = mcp, public;

-- ---- fixtures (as superuser) ---------------------------------------------------------------
INSERT INTO users (id, email) VALUES
    ('00000000-0000-0000-0000-0000000000f1', 'free@example.com'),
    ('00000000-0000-0000-0000-0000000000f2', 'free2@example.com'),
    ('00000000-0000-0000-0000-0000000000a1', 'pro@example.com'),
    ('00000000-0000-0000-0000-0000000000a2', 'capped@example.com'),
    ('00000000-0000-0000-0000-0000000000a3', 'lapsed@example.com'),
    ('00000000-0000-0000-0000-0000000000a4', 'downgrade@example.com'),
    ('00000000-0000-0000-0000-0000000000b1', 'other@example.com');
INSERT INTO mcp_table (mcp_service_id, mcp_service_name, display_name, port, type, is_active) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'github', 'GitHub', 7001, 'api_key', true),
    ('00000000-0000-0000-0000-0000000000c2', 'gmail', 'Gmail', 7002, 'oauth', true),
    ('00000000-0000-0000-0000-0000000000c3', 'slack', 'Slack', 7003, 'api_key', false);
SET ROLE mcp_admin;
SELECT mcp.set_plan('00000000-0000-0000-0000-0000000000a1', 'pro');
-- a pro plan that has lapsed (set_plan refuses a past expiry; the plan's terms can be changed)
SELECT mcp.set_plan('00000000-0000-0000-0000-0000000000a3', 'pro', now() + interval '1 day');
UPDATE user_plans SET expires_at = now() - interval '1 day' WHERE user_id = '00000000-0000-0000-0000-0000000000a3';
SELECT mcp.set_plan('00000000-0000-0000-0000-0000000000a3', 'pro', now() - interval '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_plan('00000000-0000-0000-0000-0000000000a4', 'pro', now() + interval '30 days');
-- a capped pro plan: set_plan gives unlimited, the cap is a plain update of the plan's terms
SELECT mcp.set_plan('00000000-0000-0000-0000-0000000000a2', 'pro');
UPDATE user_plans SET max_instances = 3 WHERE user_id = '00000000-0000-0000-0000-0000000000a2';
-- the counter itself is not writable, not even by mcp_admin (42501)
UPDATE user_plans SET active_instances = 0 WHERE user_id = '00000000-0000-0000-0000-0000000000f1';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_plans (user_id, active_instances) VALUES ('00000000-0000-0000-0000-0000000000f1', 0);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT u.email, p.plan_type, p.max_instances, p.expires_at IS NOT NULL AS expires, p.active_instances
  FROM users u JOIN user_plans p ON p.user_id = u.id ORDER BY u.email;

-- Shows a user's instances and counter as the truth and the stored count (as superuser, so
-- the same from any role).
CREATE FUNCTION pg_temp.state(u uuid) RETURNS TABLE (active bigint, other bigint, counter integer)
    LANGUAGE sql SECURITY DEFINER AS $$
    SELECT count(*) FILTER (WHERE s.status = 'active'), count(*) FILTER (WHERE s.status <> 'active'),
           (SELECT p.active_instances FROM mcp.user_plans p WHERE p.user_id = u)
      FROM mcp.mcp_service_table s WHERE s.user_id = u $$;

SET ROLE mcp_app;

-- ---- free plan: exactly one active instance ------------------------------------------------
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f1', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('github', 'first') AS free_first \gset
-- the limit is exactly reached: the second activation is refused, by every path
SELECT mcp.create_instance('gmail', 'second');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f1', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('github', 'first') AS free_first \gset
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f1', true) IS NOT NULL AS tenant;
SAVEPOINT s;
-- plain INSERT (the backend's own SQL) is enforced the same way
INSERT INTO mcp_service_table (user_id, mcp_service_id)
VALUES ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000c2');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- an inactive instance is not counted and may be created ...
INSERT INTO mcp_service_table (instance_id, user_id, mcp_service_id, status)
VALUES ('00000000-0000-0000-0000-0000000001f1', '00000000-0000-0000-0000-0000000000f1',
        '00000000-0000-0000-0000-0000000000c2', 'inactive');
SAVEPOINT s2;
-- ... but not activated while the other one is active (UPDATE of status)
UPDATE mcp_service_table SET status = 'active' WHERE instance_id = '00000000-0000-0000-0000-0000000001f1';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s2;
-- nor can 'expired' be turned back into 'active' by hand
UPDATE mcp_service_table SET status = 'expired' WHERE instance_id = '00000000-0000-0000-0000-0000000001f1';
UPDATE mcp_service_table SET status = 'active' WHERE instance_id = '00000000-0000-0000-0000-0000000001f1';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s2;
-- a multi-row activation is refused as a whole
UPDATE mcp_service_table SET status = 'inactive' WHERE instance_id = :'free_first';
UPDATE mcp_service_table SET status = 'active';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s2;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
-- switching the active one off frees the slot for the other
UPDATE mcp_service_table SET status = 'inactive' WHERE instance_id = :'free_first';
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
UPDATE mcp_service_table SET status = 'active' WHERE instance_id = '00000000-0000-0000-0000-0000000001f1';
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
-- deleting the active one frees it as well
DELETE FROM mcp_service_table WHERE instance_id = '00000000-0000-0000-0000-0000000001f1';
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
UPDATE mcp_service_table SET status = 'active' WHERE instance_id = :'free_first';
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
COMMIT;

-- ---- pro: unlimited; capped pro: exactly max_instances ---------------------------------------
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000a1', true) IS NOT NULL AS tenant;
SELECT count(mcp.create_instance('github', 'n' || i)) AS created FROM generate_series(1, 12) i;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000a1');
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000a2', true) IS NOT NULL AS tenant;
SELECT count(mcp.create_instance('github', 'n' || i)) AS created FROM generate_series(1, 3) i;
SELECT mcp.create_instance('gmail', 'fourth');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- ---- pro plan past its expires_at counts as free ---------------------------------------------
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000a3', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('github') IS NOT NULL AS first_ok;
SAVEPOINT s;
SELECT mcp.create_instance('gmail');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000a3');

-- ---- an instance past expires_at, still status 'active', never blocks ----------------------
-- (the expiry job has not run: only the clock says it is over)
RESET ROLE;
UPDATE mcp_service_table SET expires_at = now() - interval '1 minute'
 WHERE user_id = '00000000-0000-0000-0000-0000000000f1';
SET ROLE mcp_app;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f1', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('gmail', 'replacement', now() + interval '1 hour') AS free_second \gset
-- the stale one was marked expired on the way, so the count stays exact
SELECT custom_name, status FROM mcp_service_table ORDER BY custom_name;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
-- renewing (re-activating) the expired one is an activation: refused at the limit
SAVEPOINT s;
SELECT mcp.renew_instance(:'free_first', now() + interval '1 day');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f1', true) IS NOT NULL AS tenant;
-- after switching the other one off it succeeds, and counts renewals
UPDATE mcp_service_table SET status = 'inactive' WHERE instance_id = :'free_second';
SELECT mcp.renew_instance(:'free_first', now() + interval '1 day');
SELECT custom_name, status, renewed_count, last_renewed_at = now() AS renewed_now,
       expires_at = now() + interval '1 day' AS new_expiry
  FROM mcp_service_table ORDER BY custom_name;
-- renewing an active instance again is fine (no new activation)
SELECT mcp.renew_instance(:'free_first', now() + interval '2 days');
-- renewing the inactive one extends it but leaves it inactive (its user switched it off)
SELECT mcp.renew_instance(:'free_second', now() + interval '2 days');
SELECT custom_name, status, renewed_count FROM mcp_service_table ORDER BY custom_name;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000f1');
COMMIT;
-- a counted instance past its expiry is renewed in place while the user is within the limit
RESET ROLE;
UPDATE mcp_service_table SET expires_at = now() - interval '1 minute' WHERE instance_id = :'free_first';
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f1', true) IS NOT NULL AS tenant;
SELECT mcp.renew_instance(:'free_first', now() + interval '3 days');
SELECT custom_name, status, renewed_count FROM mcp_service_table ORDER BY custom_name;
COMMIT;

-- ---- downgrade with 3 active: nothing deleted, no further activation -------------------------
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000a4', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('github', 'd1') AS d1 \gset
SELECT mcp.create_instance('github', 'd2') AS d2 \gset
SELECT mcp.create_instance('gmail', 'd3', now() + interval '1 hour') AS d3 \gset
INSERT INTO mcp_service_table (user_id, mcp_service_id, custom_name, status)
VALUES ('00000000-0000-0000-0000-0000000000a4', '00000000-0000-0000-0000-0000000000c2', 'd4', 'inactive');
COMMIT;
SET ROLE mcp_admin;
SELECT mcp.set_plan('00000000-0000-0000-0000-0000000000a4', 'free');
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000a4', true) IS NOT NULL AS tenant;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000a4');
SAVEPOINT s;
SELECT mcp.create_instance('github', 'd5');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
UPDATE mcp_service_table SET status = 'active' WHERE custom_name = 'd4';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- still over the limit after switching one off (2 > 1)
UPDATE mcp_service_table SET status = 'inactive' WHERE instance_id = :'d1';
UPDATE mcp_service_table SET status = 'active' WHERE custom_name = 'd4';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
-- reviving an active instance past its expiry is refused while over the limit
RESET ROLE;
UPDATE mcp_service_table SET expires_at = now() - interval '1 minute' WHERE instance_id = :'d3';
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000a4', true) IS NOT NULL AS tenant;
SAVEPOINT s;
SELECT mcp.renew_instance(:'d3', now() + interval '1 day');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- back under the limit (d1, d2 off; d3 stale): reactivation works again, and d3 gets expired
UPDATE mcp_service_table SET status = 'inactive' WHERE instance_id IN (:'d1', :'d2');
UPDATE mcp_service_table SET status = 'active' WHERE custom_name = 'd4';
SELECT custom_name, status FROM mcp_service_table ORDER BY custom_name;
SELECT * FROM pg_temp.state('00000000-0000-0000-0000-0000000000a4');
COMMIT;

-- ---- inactive or unknown service: MC002 ------------------------------------------------------
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f2', true) IS NOT NULL AS tenant;
SAVEPOINT s;
SELECT mcp.create_instance('slack');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.create_instance('no-such-service');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- plain INSERT, even of an inactive row
INSERT INTO mcp_service_table (user_id, mcp_service_id, status)
VALUES ('00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000c3', 'inactive');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- an instance whose service is switched off cannot be re-activated
SELECT mcp.create_instance('gmail') AS f2_gmail \gset
UPDATE mcp_service_table SET status = 'inactive';
COMMIT;
RESET ROLE;
UPDATE mcp_table SET is_active = false WHERE mcp_service_name = 'gmail';
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f2', true) IS NOT NULL AS tenant;
UPDATE mcp_service_table SET status = 'active';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;
UPDATE mcp_table SET is_active = true WHERE mcp_service_name = 'gmail';

-- ---- no tenant (MC301), another tenant's instance (42501) ----------------------------------
SET ROLE mcp_app;
SELECT mcp.create_instance('github');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.renew_instance(:'free_first', now() + interval '1 day');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000b1', true) IS NOT NULL AS tenant;
SAVEPOINT s;
-- (the message names the instance, a random id here: only the SQLSTATE is shown)
\set VERBOSITY sqlstate
SELECT mcp.renew_instance(:'free_first', now() + interval '1 day');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.record_usage(:'free_first');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
\set VERBOSITY default
-- a plain INSERT for another user is refused by RLS before the trigger runs
INSERT INTO mcp_service_table (user_id, mcp_service_id)
VALUES ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000c1');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
-- invalid arguments: 22023
SELECT mcp.create_instance('github', NULL, now() - interval '1 second');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000f1', true) IS NOT NULL AS tenant;
SAVEPOINT s;
SELECT mcp.renew_instance(:'free_first', NULL);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.renew_instance(:'free_first', now());
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
-- the instance is unchanged by all of that
RESET ROLE;
SELECT renewed_count, status FROM mcp_service_table WHERE instance_id = :'free_first';

-- ---- the trigger protects itself ---------------------------------------------------------------
SELECT tgname, tgtype, tgenabled FROM pg_trigger
 WHERE tgrelid = 'mcp.mcp_service_table'::regclass AND tgfoid = 'mcp_internal.enforce_plan_limit'::regproc
 ORDER BY 1;
SELECT mcp_internal.enforce_plan_limit();
\echo :LAST_ERROR_SQLSTATE
CREATE TEMP TABLE t_wrong (LIKE mcp.mcp_service_table);
CREATE TRIGGER t_wrong BEFORE INSERT ON t_wrong FOR EACH ROW EXECUTE FUNCTION mcp_internal.enforce_plan_limit();
INSERT INTO t_wrong (instance_id, user_id, mcp_service_id, status, usage_count, renewed_count, created_at, updated_at)
VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'active', 0, 0, now(), now());
\echo :LAST_ERROR_SQLSTATE
DROP TABLE t_wrong;
-- no application role may call the trigger function or write the counters directly
SET ROLE mcp_app;
UPDATE user_plans SET active_instances = 0;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO service_counters VALUES ('00000000-0000-0000-0000-0000000000c1', 0, 0);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- every counter is exact after all of the above
SELECT * FROM mcp.verify_counters();

-- clean up for the following tests
DELETE FROM users;
DELETE FROM mcp_table;
