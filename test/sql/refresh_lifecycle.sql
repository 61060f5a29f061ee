-- The OAuth refresh lifecycle: the worker role's privileges, the due rule (margin, half the
-- lifetime, idle interval, cooldown), leases fenced by their token (MC203 in each of its
-- causes), the states and their transitions, failure days counted once per UTC day, the
-- tenant's own flow and revocation, the audit rows. Time passes through the test-only
-- setting mcp_platform.refresh_clock_offset (the lifecycle's clock), never by sleeping.
-- NOTIFY payloads are tested in the isolation spec refresh_events (it names sessions, not
-- PIDs).
SET mcp_platform.tenant_scope = session;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('rf_gmail', 'Gmail', 7401, 'oauth'), ('rf_github', 'GitHub', 7402, 'api_key');
INSERT INTO mcp.users (id, email) VALUES
    ('e0000000-0000-0000-0000-00000000000a', 'refresh-a@example.com'),
    ('e0000000-0000-0000-0000-00000000000b', 'refresh-b@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b');
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
SELECT i.id::uuid, i.u::uuid, t.mcp_service_id
  FROM (VALUES ('e1000000-0000-0000-0000-0000000000a1', 'e0000000-0000-0000-0000-00000000000a', 'rf_gmail'),
               ('e1000000-0000-0000-0000-0000000000a2', 'e0000000-0000-0000-0000-00000000000a', 'rf_gmail'),
               ('e1000000-0000-0000-0000-0000000000a3', 'e0000000-0000-0000-0000-00000000000a', 'rf_gmail'),
               ('e1000000-0000-0000-0000-0000000000a4', 'e0000000-0000-0000-0000-00000000000a', 'rf_gmail'),
               ('e1000000-0000-0000-0000-0000000000a5', 'e0000000-0000-0000-0000-00000000000a', 'rf_gmail'),
               ('e1000000-0000-0000-0000-0000000000a6', 'e0000000-0000-0000-0000-00000000000a', 'rf_gmail'),
               ('e1000000-0000-0000-0000-0000000000a7', 'e0000000-0000-0000-0000-00000000000a', 'rf_github'),
               ('e1000000-0000-0000-0000-0000000000b1', 'e0000000-0000-0000-0000-00000000000b', 'rf_gmail'))
       AS i(id, u, svc)
  JOIN mcp.mcp_table t ON t.mcp_service_name = i.svc;
-- credentials of earlier tests are not part of this queue
UPDATE mcp.mcp_credentials SET refresh_due_at = NULL
 WHERE user_id NOT IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b');

\set A1 '''e1000000-0000-0000-0000-0000000000a1'''
\set A2 '''e1000000-0000-0000-0000-0000000000a2'''
\set A3 '''e1000000-0000-0000-0000-0000000000a3'''
\set A4 '''e1000000-0000-0000-0000-0000000000a4'''
\set A5 '''e1000000-0000-0000-0000-0000000000a5'''
\set A6 '''e1000000-0000-0000-0000-0000000000a6'''
\set A7 '''e1000000-0000-0000-0000-0000000000a7'''
\set B1 '''e1000000-0000-0000-0000-0000000000b1'''

-- What a worker sees of a claim: the instance (last two characters), no timestamps.
CREATE FUNCTION pg_temp.claim(n integer, lease interval DEFAULT '60 seconds')
    RETURNS TABLE (inst text, service_name text, client_id text, client_secret text, refresh_token text,
                   token_scope text)
    LANGUAGE sql AS $$
    SELECT right(c.instance_id::text, 2), c.service_name, c.client_id, c.client_secret, c.refresh_token, c.token_scope
      FROM mcp.claim_refreshes(n, lease) c $$;
-- The state of the test's credentials, times relative to the lifecycle's clock.
CREATE FUNCTION pg_temp.state()
    RETURNS TABLE (inst text, refresh_state text, failure_days integer, leased boolean,
                   due_in interval, next_attempt_in interval, last_error_type text)
    LANGUAGE sql AS $$
    SELECT right(c.instance_id::text, 2), c.refresh_state, c.failure_days, c.refresh_lease IS NOT NULL,
           date_trunc('second', c.refresh_due_at - mcp_internal.refresh_clock() + interval '0.5 second'),
           date_trunc('second', c.next_attempt_at - mcp_internal.refresh_clock() + interval '0.5 second'),
           c.last_error_type
      FROM mcp.mcp_credentials c
     WHERE c.user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b')
     ORDER BY 1 $$;
GRANT EXECUTE ON FUNCTION pg_temp.claim(integer, interval) TO mcp_worker;
-- Test scaffolding: ends every lease of the test's credentials and puts them back on their
-- natural schedule (as if each lease had been settled without a change).
CREATE FUNCTION pg_temp.release() RETURNS void
    LANGUAGE sql AS $$
    UPDATE mcp.mcp_credentials c
       SET refresh_lease = NULL, refresh_claimed_until = NULL,
           refresh_due_at = CASE WHEN c.refresh_token IS NOT NULL AND c.refresh_state IN ('ok', 'cooling')
                                 THEN mcp_internal.refresh_due_at(c.token_expires_at, c.tokens_stored_at) END
     WHERE c.user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b') $$;
-- Moves the lifecycle's clock: `offset` from now (the setting is in seconds).
CREATE FUNCTION pg_temp.at(clock_offset interval) RETURNS interval
    LANGUAGE sql AS $$
    SELECT set_config('mcp_platform.refresh_clock_offset', extract(epoch FROM clock_offset)::bigint::text, false);
    SELECT clock_offset $$;

-- ---- the tenant's OAuth flow -----------------------------------------------------------------
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant_a;
SELECT count(mcp.set_oauth_client(i, 'client-' || right(i::text, 2), 'secret-' || right(i::text, 2)))
  FROM unnest(ARRAY[:A1, :A2, :A3, :A4, :A5, :A6]::uuid[]) i;
-- A1: a one-hour token; A2: ten minutes; A3: thirty days; A4: no refresh token
SELECT mcp.store_oauth_tokens(:A1, 'access-a1', 'refresh-a1', now() + interval '1 hour', 'mail.read');
SELECT mcp.store_oauth_tokens(:A2, 'access-a2', 'refresh-a2', now() + interval '10 minutes', 'mail.read');
SELECT mcp.store_oauth_tokens(:A3, 'access-a3', 'refresh-a3', now() + interval '30 days', NULL);
SELECT mcp.store_oauth_tokens(:A4, 'access-a4', NULL, now() + interval '5 minutes', NULL);
-- logged with their outcome
SELECT operation, status, count(*) FROM mcp.token_audit_log GROUP BY 1, 2 ORDER BY 1, 2;
-- the tenant's refresh state: its own credentials only, no secret column
SELECT right(instance_id::text, 2) AS inst, refresh_state, failure_days, last_success_at, last_failure_at,
       last_error_type, next_attempt_at, access_expires_at > now() AS access_valid
  FROM mcp.refresh_status ORDER BY 1;
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'mcp' AND table_name = 'refresh_status' ORDER BY ordinal_position;
-- the tenant cannot claim or settle for workers
SELECT * FROM mcp.claim_refreshes(10);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.complete_refresh(gen_random_uuid(), 'a', 'r', now());
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.fail_refresh(gen_random_uuid(), 'http_503');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---- the due rule ----------------------------------------------------------------------------
-- A1 is due 15 minutes before it expires (at 45 min); A2 half-way through its ten minutes (at
-- 5 min, not 15 min before: that would be before it was stored); A3 after a day without a
-- refresh (refresh_idle_interval); A4 never (no refresh token).
SELECT * FROM pg_temp.state();
SELECT pg_temp.at('4 min');
SELECT * FROM pg_temp.claim(10);
SELECT pg_temp.at('6 min');
SET ROLE mcp_worker;
-- a worker has no tenant and needs none; the client secret and refresh token come decrypted
SELECT * FROM pg_temp.claim(10);
RESET ROLE;
SELECT pg_temp.release();
SELECT pg_temp.at('44 min');
SELECT inst FROM pg_temp.claim(10);
SELECT pg_temp.release();
SELECT pg_temp.at('46 min');
SELECT inst FROM pg_temp.claim(10);
SELECT pg_temp.release();
SELECT pg_temp.at('23 hours');
SELECT inst FROM pg_temp.claim(10);
SELECT pg_temp.release();
SELECT pg_temp.at('25 hours');
-- oldest due first, max_rows respected
SELECT inst FROM pg_temp.claim(2);
SELECT * FROM pg_temp.state();
SELECT inst FROM pg_temp.claim(2);
-- leased rows stay leased until the lease ends: nothing is due
SELECT inst FROM pg_temp.claim(10);
-- after the lease (60 s) they are due again
SELECT pg_temp.at('25 hours 2 minutes');
SELECT inst FROM pg_temp.claim(10);
SELECT pg_temp.release();
-- input checks: 22023
SELECT * FROM mcp.claim_refreshes(0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.claim_refreshes(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.claim_refreshes(1, '0 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.claim_refreshes(1, '2 days');
\echo :LAST_ERROR_SQLSTATE
-- the margin setting applies to tokens stored from then on
SELECT pg_temp.at('0');
SET mcp_platform.refresh_margin = '20 min';
SET ROLE mcp_app;
SELECT mcp.store_oauth_tokens(:A1, 'access-a1-v2', NULL, now() + interval '1 hour', 'mail.read');
RESET ROLE;
SELECT inst, refresh_state, leased, due_in FROM pg_temp.state() WHERE inst = 'a1';
RESET mcp_platform.refresh_margin;
-- a worker cannot move the clock or the policy
SET ROLE mcp_worker;
SET mcp_platform.refresh_clock_offset = '10d';
\echo :LAST_ERROR_SQLSTATE
SET mcp_platform.refresh_backoff_base = 0;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---- settling: complete_refresh --------------------------------------------------------------
-- every credential of tenant A is settled so far or re-stored; start A5 and A6 afresh
SET ROLE mcp_app;
SELECT mcp.store_oauth_tokens(i, 'access-' || right(i::text, 2), 'refresh-' || right(i::text, 2),
                              now() + interval '10 minutes', 'mail.read')
  FROM unnest(ARRAY[:A2, :A3, :A5, :A6]::uuid[]) i;
RESET ROLE;
SELECT pg_temp.at('6 min');
SET ROLE mcp_worker;
SELECT max(lease_token::text) FILTER (WHERE instance_id = :A2) AS lease_a2,
       max(lease_token::text) FILTER (WHERE instance_id = :A3) AS lease_a3,
       max(lease_token::text) FILTER (WHERE instance_id = :A5) AS lease_a5,
       max(lease_token::text) FILTER (WHERE instance_id = :A6) AS lease_a6
  FROM mcp.claim_refreshes(10, '30 seconds') \gset
RESET ROLE;
SELECT inst, leased FROM pg_temp.state() WHERE leased;
SET ROLE mcp_worker;
-- bad input: 22023 / 22001, nothing changes (the lease still holds)
SELECT mcp.complete_refresh(:'lease_a2', '', 'r', now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.complete_refresh(:'lease_a2', 'a', '', now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.complete_refresh(:'lease_a2', repeat('a', 8193), NULL, now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.complete_refresh(:'lease_a2', 'a', NULL, 'infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.complete_refresh(NULL, 'a', NULL, now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- a NULL refresh token and scope keep the stored ones
SELECT mcp.complete_refresh(:'lease_a2', 'access-a2-refreshed', NULL, now() + interval '1 hour');
-- MC203 (1): settled already; nothing changes
SELECT mcp.complete_refresh(:'lease_a2', 'access-a2-stale', 'refresh-a2-stale', now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.fail_refresh(:'lease_a2', 'http_503');
\echo :LAST_ERROR_SQLSTATE
-- a lease that never was
SELECT mcp.complete_refresh(gen_random_uuid(), 'a', NULL, now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT inst, refresh_state, leased, due_in FROM pg_temp.state() WHERE inst = 'a2';
SET ROLE mcp_app;
SELECT access_token, refresh_token, token_scope FROM mcp.get_credentials(:A2);
-- MC203 (2): the tenant re-authorised during the lease (a fresh OAuth flow): its tokens win
SELECT mcp.store_oauth_tokens(:A6, 'access-a6-reauth', 'refresh-a6-reauth', now() + interval '10 minutes', 'mail.read');
RESET ROLE;
SET ROLE mcp_worker;
SELECT mcp.complete_refresh(:'lease_a6', 'access-a6-worker', 'refresh-a6-worker', now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE mcp_app;
SELECT access_token, refresh_token FROM mcp.get_credentials(:A6);
RESET ROLE;
-- a lease that ran out but was not taken over still settles (no one else has the credential)
SELECT pg_temp.at('7 min');
SET ROLE mcp_worker;
SELECT mcp.complete_refresh(:'lease_a5', 'access-a5-late', NULL, now() + interval '1 hour');
-- MC203 (3): the lease ran out and another worker took the credential over
SELECT instance_id = :A3 AS took_a3, lease_token AS lease_a3_new FROM mcp.claim_refreshes(10) \gset
\echo :took_a3
SELECT mcp.complete_refresh(:'lease_a3', 'access-a3-stale', 'refresh-a3-stale', now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.complete_refresh(:'lease_a3_new', 'access-a3-winner', 'refresh-a3-winner', now() + interval '1 hour');
RESET ROLE;
SET ROLE mcp_app;
SELECT right(instance_id::text, 2) AS inst, access_token, refresh_token
  FROM unnest(ARRAY[:A3, :A5]::uuid[]) i(instance_id), mcp.get_credentials(i.instance_id);
RESET ROLE;
-- MC203 (4): the tenant revoked the credential during the lease
SELECT pg_temp.at('12 min');
SET ROLE mcp_worker;
SELECT instance_id = :A6 AS took_a6, lease_token AS lease_a6 FROM mcp.claim_refreshes(10) \gset
\echo :took_a6
RESET ROLE;
SET ROLE mcp_app;
SELECT mcp.revoke_credentials(:A6) AS revoked;
RESET ROLE;
SET ROLE mcp_worker;
SELECT mcp.fail_refresh(:'lease_a6', 'invalid_grant', permanent => true);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT inst, refresh_state, leased, due_in FROM pg_temp.state() WHERE inst = 'a6';
SELECT inst FROM pg_temp.state() WHERE leased;

-- ---- failures: cooling, backoff, failure days, needs_reauth, recovery ----------------------------
-- B1: tenant B's credential, a ten-minute token; due at 5 minutes
SELECT pg_temp.at('0');
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000b', false) IS NOT NULL AS tenant_b;
SELECT mcp.set_oauth_client(:B1, 'client-b1', NULL);
SELECT mcp.store_oauth_tokens(:B1, 'access-b1', 'refresh-b1', now() + interval '10 minutes', NULL);
RESET ROLE;
UPDATE mcp.mcp_credentials SET refresh_due_at = NULL WHERE user_id = 'e0000000-0000-0000-0000-00000000000a';
-- Day 1 is the UTC day after the one the tokens were stored on; :d1 is the clock offset of its
-- 01:00 (so no step of this section can fall on the other side of a midnight by accident).
SELECT (date_trunc('day', tokens_stored_at, 'UTC') + interval '1 day 1 hour' - tokens_stored_at)::text AS d1
  FROM mcp.mcp_credentials WHERE instance_id = :B1 \gset
SELECT pg_temp.at(:'d1') IS NOT NULL AS day1;
SET ROLE mcp_worker;
SELECT inst, client_secret FROM pg_temp.claim(10);
RESET ROLE;
-- fail_refresh: input checks first (the lease holds)
SELECT refresh_lease AS lb FROM mcp.mcp_credentials WHERE instance_id = :B1 \gset
SET ROLE mcp_worker;
SELECT mcp.fail_refresh(:'lb', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.fail_refresh(:'lb', repeat('e', 101));
\echo :LAST_ERROR_SQLSTATE
-- a retryable failure: cooling for refresh_backoff_base (30 s)
SELECT mcp.fail_refresh(:'lb', 'http_503', 'Service Unavailable') AS state;
RESET ROLE;
SELECT * FROM pg_temp.state() WHERE inst = 'b1';
-- not claimable during the cooldown, claimable after it
SELECT pg_temp.at(:'d1'::interval + interval '29 s') IS NOT NULL AS plus_29s;
SELECT count(*) AS during_cooldown FROM mcp.claim_refreshes(10);
SELECT pg_temp.at(:'d1'::interval + interval '31 s') IS NOT NULL AS plus_31s;
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
-- the second failure doubles the wait (60 s); both count as one failure day
SELECT mcp.fail_refresh(:'lb', 'http_503') AS state;
SELECT * FROM pg_temp.state() WHERE inst = 'b1';
SELECT pg_temp.at(:'d1'::interval + interval '5 hours') IS NOT NULL AS day1_later;
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'timeout') AS state;
SELECT inst, refresh_state, failure_days, last_error_type FROM pg_temp.state() WHERE inst = 'b1';
-- the next UTC days: one failure day each, however many attempts
SELECT pg_temp.at(:'d1'::interval + interval '1 day') IS NOT NULL AS day2;
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'http_503') AS state;
SELECT pg_temp.at(:'d1'::interval + interval '1 day 3 hours') IS NOT NULL AS day2_later;
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'http_503') AS state;
SELECT pg_temp.at(:'d1'::interval + interval '2 days') IS NOT NULL AS day3;
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'http_503') AS state;
SELECT pg_temp.at(:'d1'::interval + interval '3 days') IS NOT NULL AS day4;
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'http_503') AS state;
-- four days is not more than refresh_max_failure_days (4): still cooling
SELECT inst, refresh_state, failure_days, next_attempt_in FROM pg_temp.state() WHERE inst = 'b1';
SELECT pg_temp.at(:'d1'::interval + interval '4 days') IS NOT NULL AS day5;
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
-- the fifth day exhausts it
SELECT mcp.fail_refresh(:'lb', 'http_503') AS state;
SELECT * FROM pg_temp.state() WHERE inst = 'b1';
-- needs_reauth is never claimed again, however long one waits
SELECT pg_temp.at('400 days');
SELECT count(*) AS claimed FROM mcp.claim_refreshes(10);
-- the worker sees every tenant's state, the tenant its own
SET ROLE mcp_worker;
SELECT right(instance_id::text, 2) AS inst, refresh_state, failure_days, last_error_type
  FROM mcp.refresh_status WHERE user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b')
 ORDER BY 1;
RESET ROLE;
SET ROLE mcp_app;
SELECT right(instance_id::text, 2) AS inst, refresh_state, failure_days, last_error_type FROM mcp.refresh_status;
-- a new OAuth flow takes it back to ok (a recovery)
RESET ROLE;
SELECT pg_temp.at('0');
SET ROLE mcp_app;
SELECT mcp.store_oauth_tokens(:B1, 'access-b1-new', 'refresh-b1-new', now() + interval '10 minutes', NULL);
SELECT right(instance_id::text, 2) AS inst, refresh_state, failure_days, last_error_type FROM mcp.refresh_status;
RESET ROLE;

-- a permanent failure (invalid_grant) needs re-authorisation at once
SELECT pg_temp.at('0');
SELECT pg_temp.at('6 min');
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'invalid_grant', 'Token has been expired or revoked.', permanent => true) AS state;
SELECT inst, refresh_state, failure_days, leased, due_in FROM pg_temp.state() WHERE inst = 'b1';

-- a cooling credential recovers with the next success
SELECT pg_temp.at('0');
SET ROLE mcp_app;
SELECT mcp.store_oauth_tokens(:B1, 'access-b1-v3', 'refresh-b1-v3', now() + interval '10 minutes', NULL);
RESET ROLE;
SELECT pg_temp.at('12 min');
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'http_502') AS state;
SELECT pg_temp.at('13 min');
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.complete_refresh(:'lb', 'access-b1-v4', 'refresh-b1-v4', now() + interval '1 hour', 'mail.send');
SELECT * FROM pg_temp.state() WHERE inst = 'b1';

-- ---- revocation ------------------------------------------------------------------------------
SELECT pg_temp.at('0');
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant_a;
-- an API key: wiped, the credential revoked, the instance kept
SELECT mcp.set_api_key(:A7, 'sk-revoke-me');
SELECT mcp.revoke_credentials(:A7) AS revoked;
SELECT mcp.revoke_credentials(:A7) AS revoked_again;
SELECT count(*) AS handed_out FROM mcp.get_credentials(:A7);
SELECT status FROM mcp.mcp_service_table WHERE instance_id = :A7;
-- a new key ends the revocation
SELECT mcp.set_api_key(:A7, 'sk-new');
SELECT api_key FROM mcp.get_credentials(:A7);
-- OAuth: tokens wiped, the client kept unless forget_client
SELECT mcp.revoke_credentials(:A4) AS revoked;
SELECT client_id, token_expires_at, oauth_status, refresh_state FROM mcp.mcp_credentials WHERE instance_id = :A4;
SELECT auth_type, access_token, refresh_token FROM mcp.get_credentials(:A4);
SELECT mcp.revoke_credentials(:A4, forget_client => true) AS client_forgotten;
SELECT client_id FROM mcp.mcp_credentials WHERE instance_id = :A4;
SELECT mcp.revoke_credentials(:A4, forget_client => true) AS nothing_left;
-- a revoked credential is never claimed; a new OAuth flow takes A6 back to ok (not a recovery)
SELECT right(instance_id::text, 2) AS inst, refresh_state FROM mcp.refresh_status WHERE refresh_state = 'revoked' ORDER BY 1;
SELECT mcp.store_oauth_tokens(:A6, 'access-a6-back', 'refresh-a6-back', now() + interval '10 minutes', NULL);
SELECT right(instance_id::text, 2) AS inst, refresh_state FROM mcp.refresh_status WHERE instance_id = :A6;
RESET ROLE;
SELECT pg_temp.release();
SELECT pg_temp.at('1 day');
SELECT inst FROM pg_temp.claim(10) ORDER BY 1;
SELECT pg_temp.release();

-- ---- release 1.0's tenant-scoped claim, on the same state ---------------------------------------
-- only B1 is in the queue now
UPDATE mcp.mcp_credentials SET refresh_due_at = NULL WHERE user_id = 'e0000000-0000-0000-0000-00000000000a';
SELECT pg_temp.at('0');
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000b', false) IS NOT NULL AS tenant_b;
-- the tenant claims B1 (it expires within 2 hours) for mcp_platform.token_refresh_lease (5 min)
SELECT right(i::text, 2) AS inst FROM mcp.claim_token_refresh('2 hours', 10) i;
RESET ROLE;
SELECT inst, leased FROM pg_temp.state() WHERE leased;
-- a worker does not get it during the tenant's lease, nor does the tenant again
SELECT pg_temp.at('2 min');
SELECT count(*) AS worker_got FROM mcp.claim_refreshes(10);
SET ROLE mcp_app;
SELECT count(*) AS tenant_again FROM mcp.claim_token_refresh('2 hours', 10);
RESET ROLE;
-- store_oauth_tokens ends the tenant's lease
SELECT pg_temp.at('0');
SET ROLE mcp_app;
SELECT mcp.store_oauth_tokens(:B1, 'access-b1-v5', NULL, now() + interval '2 hours', NULL);
RESET ROLE;
SELECT inst, refresh_state, leased, due_in FROM pg_temp.state() WHERE inst = 'b1';
-- needs_reauth is skipped by the tenant's claim too
SELECT pg_temp.at('2 hours');
SELECT lease_token AS lb FROM mcp.claim_refreshes(10) \gset
SELECT mcp.fail_refresh(:'lb', 'invalid_grant', permanent => true) AS state;
SET ROLE mcp_app;
SELECT count(*) AS tenant_claimed FROM mcp.claim_token_refresh('1 year', 10);
RESET ROLE;
SELECT pg_temp.at('0');

-- ---- the audit trail: outcomes, events, no secret ------------------------------------------------
SELECT right(instance_id::text, 2) AS inst, operation, status, error_type, metadata->>'event' AS event, count(*)
  FROM mcp.token_audit_log
 WHERE user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b')
 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5;
SELECT count(*) AS pending_rows FROM mcp.token_audit_log
 WHERE user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b')
   AND status = 'pending';
SELECT count(*) AS rows_with_a_secret FROM mcp.token_audit_log l
 WHERE l.user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b')
   AND (l::text ~ '(access|refresh|secret)-[ab][0-9]' OR l::text LIKE '%sk-%');

-- ---- the worker's privilege boundary ---------------------------------------------------------------
SET ROLE mcp_worker;
SELECT api_key FROM mcp.mcp_credentials LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT refresh_token FROM mcp.mcp_credentials LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp.mcp_credentials SET refresh_state = 'ok';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM mcp.mcp_credentials;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM mcp.users;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM mcp.user_plans;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM mcp.mcp_service_table;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM mcp.token_audit_log;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type) VALUES ('evil', 'Evil', 1, 'oauth');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.get_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.store_oauth_tokens(:A1, 'a', 'r', now(), NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.revoke_credentials(:A1);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.log_token_operation(:A1, 'refresh', 'success');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_plan('e0000000-0000-0000-0000-00000000000a', 'free');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.erase_user('e0000000-0000-0000-0000-00000000000a');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.sign_up('worker@example.com');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.claim_token_refresh('1 day', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_internal.refresh_clock();
\echo :LAST_ERROR_SQLSTATE
-- everything the role may do, from the catalog: the three worker functions, the state view,
-- the non-secret columns behind it
SELECT p.oid::regprocedure AS function FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('mcp', 'mcp_internal') AND has_function_privilege('mcp_worker', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1::text;
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('mcp', 'mcp_internal') AND c.relkind IN ('r', 'p', 'v', 'm')
   AND has_table_privilege('mcp_worker', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
 ORDER BY 1;
SELECT attname FROM pg_attribute
 WHERE attrelid = 'mcp.mcp_credentials'::regclass AND attnum > 0 AND NOT attisdropped
   AND has_column_privilege('mcp_worker', attrelid, attnum, 'SELECT')
 ORDER BY attnum;
RESET ROLE;

RESET mcp_platform.tenant_scope;
DELETE FROM mcp.users WHERE id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b');
DELETE FROM mcp.token_audit_log
 WHERE user_id IN ('e0000000-0000-0000-0000-00000000000a', 'e0000000-0000-0000-0000-00000000000b');
DELETE FROM mcp.mcp_table WHERE mcp_service_name IN ('rf_gmail', 'rf_github');
