-- ===========================================================================================
-- The OAuth refresh lifecycle. A credential with a refresh token carries its refresh state
-- (mcp_credentials.refresh_state: ok, cooling, needs_reauth, revoked) and the moment it is
-- next claimable (refresh_due_at, NULL: never). Refresh workers (role mcp_worker, no tenant)
-- take due credentials with mcp.claim_refreshes, each under a lease with a token of its own,
-- and settle each with mcp.complete_refresh or mcp.fail_refresh; a settle whose lease is no
-- longer the credential's (taken over after it ran out, settled already, or the tenant
-- re-authorised or revoked meanwhile) changes nothing and raises MC203. The rules (due time,
-- backoff, failure days) are C++ (src/core/refresh_policy.cpp). Transitions to needs_reauth,
-- recoveries and revocations are audited and sent as NOTIFY mcp_credential_events.
-- ===========================================================================================

-- The lifecycle's clock: the transaction's start, shifted by mcp_platform.refresh_clock_offset
-- (tests only; superuser-only setting).
CREATE OR REPLACE FUNCTION mcp_internal.refresh_clock() RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'mcp_refresh_clock' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.refresh_clock() IS
    'now() as the refresh lifecycle sees it (shifted by mcp_platform.refresh_clock_offset in tests)';
REVOKE ALL ON FUNCTION mcp_internal.refresh_clock() FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.refresh_due_at(expires_at timestamptz, stored_at timestamptz) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'mcp_refresh_due_at' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.refresh_due_at(timestamptz, timestamptz) IS
    'when tokens stored at stored_at become due: refresh_margin before expiry (at most half their lifetime), at the latest refresh_idle_interval after storing';
REVOKE ALL ON FUNCTION mcp_internal.refresh_due_at(timestamptz, timestamptz) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.refresh_failure(failures integer, failure_days integer,
        last_failure_at timestamptz, at timestamptz, permanent boolean,
        OUT new_state text, OUT new_failures integer, OUT new_failure_days integer, OUT next_attempt_at timestamptz)
    AS 'MODULE_PATHNAME', 'mcp_refresh_failure' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.refresh_failure(integer, integer, timestamptz, timestamptz, boolean) IS
    'the state after a failed refresh: cooling with exponential backoff, or needs_reauth (permanent, or failures on more than refresh_max_failure_days days)';
REVOKE ALL ON FUNCTION mcp_internal.refresh_failure(integer, integer, timestamptz, timestamptz, boolean) FROM PUBLIC, mcp_app, mcp_admin;

-- An event about a credential, delivered at commit to the listeners of mcp_credential_events:
-- {"user_id", "instance_id", "event", "error_type"}; never a secret. Events: needs_reauth,
-- recovered, revoked. Called from the API's SECURITY DEFINER functions (pinned search_path).
CREATE OR REPLACE FUNCTION mcp_internal.credential_event(user_id uuid, instance_id uuid, event text,
                                                         error_type text DEFAULT NULL) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT pg_catalog.pg_notify('mcp_credential_events',
        pg_catalog.jsonb_build_object('user_id', credential_event.user_id, 'instance_id', credential_event.instance_id,
                                      'event', credential_event.event, 'error_type', credential_event.error_type)::text);
END;
COMMENT ON FUNCTION mcp_internal.credential_event(uuid, uuid, text, text) IS
    'NOTIFY mcp_credential_events with {user_id, instance_id, event, error_type} (delivered at commit)';
REVOKE ALL ON FUNCTION mcp_internal.credential_event(uuid, uuid, text, text) FROM PUBLIC, mcp_app, mcp_admin;

-- The lease lost: MC203, with the same words whatever the cause (the worker's answer is the
-- same: discard what it has).
CREATE OR REPLACE FUNCTION mcp_internal.lease_lost() RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'refresh lease lost' USING ERRCODE = 'MC203',
        DETAIL = 'The lease ran out and another worker took the credential over, or it was settled already, or the tenant re-authorised or revoked the credential.',
        HINT = 'Discard the result of this refresh; the credential is in other hands.';
END
$$;
COMMENT ON FUNCTION mcp_internal.lease_lost() IS 'raises MC203 (refresh lease lost)';
REVOKE ALL ON FUNCTION mcp_internal.lease_lost() FROM PUBLIC, mcp_app, mcp_admin;

-- ---- claim ---------------------------------------------------------------------------------

-- Up to max_rows due credentials of any tenant, oldest due first, each leased to this caller
-- for `lease`: the rows are locked FOR UPDATE SKIP LOCKED (concurrent workers take disjoint
-- sets without waiting on each other) and rescheduled to the lease's end, so no one else
-- claims them until it runs out or is settled. Each claim is audited (claim_refresh,
-- success). A value that rotation found damaged (key_version -1) is not handed out.
CREATE OR REPLACE FUNCTION mcp.claim_refreshes(max_rows integer, lease interval DEFAULT '60 seconds')
    RETURNS TABLE (lease_token uuid, user_id uuid, instance_id uuid, service_name text, client_id text,
                   client_secret text, refresh_token text, expires_at timestamptz, token_scope text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE ROWS 100
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    clock timestamptz := mcp_internal.refresh_clock();
    cand record;
    leased record;
    token uuid;
    n integer := 0;
BEGIN
    IF claim_refreshes.max_rows IS NULL OR claim_refreshes.max_rows < 1 OR claim_refreshes.max_rows > 10000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    IF claim_refreshes.lease IS NULL OR claim_refreshes.lease <= interval '0' OR claim_refreshes.lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease must be positive and at most 1 day' USING ERRCODE = '22023';
    END IF;
    IF mcp_internal.is_citus_table('mcp.mcp_credentials') THEN
        -- Citus runs FOR UPDATE only within one shard, and no volatile function in an UPDATE:
        -- the due rows are read unlocked across the shards, then each is leased by a statement
        -- on its own shard that locks it (skipping it when another worker holds it) and checks
        -- again that it is due.
        FOR cand IN SELECT c.user_id, c.credential_id FROM mcp.mcp_credentials c
                     WHERE c.refresh_due_at <= clock AND c.key_version IS DISTINCT FROM -1
                     ORDER BY c.refresh_due_at LIMIT claim_refreshes.max_rows * 4 LOOP
            EXIT WHEN n >= claim_refreshes.max_rows;
            token := pg_catalog.gen_random_uuid();
            WITH due AS (
                SELECT c.user_id, c.credential_id FROM mcp.mcp_credentials c
                 WHERE c.user_id = cand.user_id AND c.credential_id = cand.credential_id
                   AND c.refresh_due_at <= clock AND c.key_version IS DISTINCT FROM -1
                   FOR UPDATE SKIP LOCKED)
            UPDATE mcp.mcp_credentials c
               SET refresh_lease = token, refresh_claimed_until = clock + claim_refreshes.lease,
                   refresh_due_at = clock + claim_refreshes.lease
              FROM due
             WHERE c.user_id = due.user_id AND c.credential_id = due.credential_id
            RETURNING c.instance_id, c.client_id, c.client_secret, c.refresh_token, c.token_expires_at, c.token_scope
              INTO leased;
            CONTINUE WHEN NOT FOUND;
            n := n + 1;
            INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method)
            VALUES (leased.instance_id, cand.user_id, 'claim_refresh', 'success', 'oauth');
            RETURN QUERY
            SELECT token, cand.user_id, leased.instance_id, t.mcp_service_name::text, leased.client_id::text,
                   CASE WHEN leased.client_secret IS NOT NULL
                        THEN mcp_internal.open_field(cand.user_id, leased.instance_id, 'client_secret', leased.client_secret) END,
                   mcp_internal.open_field(cand.user_id, leased.instance_id, 'refresh_token', leased.refresh_token),
                   leased.token_expires_at, leased.token_scope
              FROM mcp.mcp_service_table s JOIN mcp.mcp_table t ON t.mcp_service_id = s.mcp_service_id
             WHERE s.user_id = cand.user_id AND s.instance_id = leased.instance_id;
        END LOOP;
        RETURN;
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT c.user_id, c.credential_id, c.refresh_due_at
          FROM mcp.mcp_credentials c
         WHERE c.refresh_due_at <= clock
           AND c.key_version IS DISTINCT FROM -1
         ORDER BY c.refresh_due_at
         LIMIT claim_refreshes.max_rows
           FOR UPDATE OF c SKIP LOCKED
    ), leased AS (
        UPDATE mcp.mcp_credentials c
           SET refresh_lease = pg_catalog.gen_random_uuid(),
               refresh_claimed_until = clock + claim_refreshes.lease,
               refresh_due_at = clock + claim_refreshes.lease
          FROM due
         WHERE c.user_id = due.user_id AND c.credential_id = due.credential_id
        RETURNING c.user_id, c.instance_id, c.refresh_lease, c.client_id, c.client_secret, c.refresh_token,
                  c.token_expires_at, c.token_scope, due.refresh_due_at AS was_due
    ), logged AS (
        INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method)
        SELECT l.instance_id, l.user_id, 'claim_refresh', 'success', 'oauth' FROM leased l
    )
    SELECT l.refresh_lease, l.user_id, l.instance_id, t.mcp_service_name::text, l.client_id::text,
           CASE WHEN l.client_secret IS NOT NULL
                THEN mcp_internal.open_field(l.user_id, l.instance_id, 'client_secret', l.client_secret) END,
           mcp_internal.open_field(l.user_id, l.instance_id, 'refresh_token', l.refresh_token),
           l.token_expires_at, l.token_scope
      FROM leased l
      JOIN mcp.mcp_service_table s ON s.user_id = l.user_id AND s.instance_id = l.instance_id
      JOIN mcp.mcp_table t ON t.mcp_service_id = s.mcp_service_id
     ORDER BY l.was_due, l.user_id, l.instance_id;  -- oldest due first; ties in a fixed order
END
$$;
COMMENT ON FUNCTION mcp.claim_refreshes(integer, interval) IS
    'leases up to max_rows due OAuth credentials of any tenant to this caller (oldest due first; SKIP LOCKED); settle each with complete_refresh or fail_refresh';
REVOKE ALL ON FUNCTION mcp.claim_refreshes(integer, interval) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.claim_refreshes(integer, interval) TO mcp_worker;

-- ---- settle --------------------------------------------------------------------------------

-- The leased credential: its row locked, or MC203 when the lease is not its lease any more.
CREATE OR REPLACE FUNCTION mcp_internal.leased_credential(lease_token uuid,
        OUT user_id uuid, OUT credential_id uuid, OUT instance_id uuid, OUT refresh_state text,
        OUT refresh_failures integer, OUT failure_days integer, OUT last_failure_at timestamptz,
        OUT client_secret bytea, OUT refresh_token bytea, OUT oauth_code_verifier bytea,
        OUT token_expires_at timestamptz, OUT tokens_stored_at timestamptz)
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    found_user uuid;
    found_credential uuid;
BEGIN
    IF leased_credential.lease_token IS NULL THEN
        RAISE EXCEPTION 'lease_token must not be null' USING ERRCODE = '22023';
    END IF;
    -- the row first, unlocked (Citus runs FOR UPDATE only within one shard), then locked and
    -- checked again by its key
    SELECT c.user_id, c.credential_id INTO found_user, found_credential
      FROM mcp.mcp_credentials c WHERE c.refresh_lease = leased_credential.lease_token;
    SELECT c.user_id, c.credential_id, c.instance_id, c.refresh_state, c.refresh_failures, c.failure_days,
           c.last_failure_at, c.client_secret, c.refresh_token, c.oauth_code_verifier, c.token_expires_at,
           c.tokens_stored_at
      INTO user_id, credential_id, instance_id, refresh_state, refresh_failures, failure_days,
           last_failure_at, client_secret, refresh_token, oauth_code_verifier, token_expires_at,
           tokens_stored_at
      FROM mcp.mcp_credentials c
     WHERE c.refresh_lease = leased_credential.lease_token
       AND c.user_id = found_user AND c.credential_id = found_credential
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM mcp_internal.lease_lost();
    END IF;
END
$$;
COMMENT ON FUNCTION mcp_internal.leased_credential(uuid) IS
    'the credential a lease holds, locked; MC203 when the lease is lost';
REVOKE ALL ON FUNCTION mcp_internal.leased_credential(uuid) FROM PUBLIC, mcp_app, mcp_admin;

-- A successful refresh: stores the new tokens (a NULL refresh_token keeps the stored one, a
-- NULL token_scope the stored scope), ends the lease, resets the failure state and schedules
-- the next refresh; audited (refresh, success). A recovery (the credential was cooling) is an
-- event. C (src/pg/refresh.cpp), like get_credentials: every worker runs it once per
-- credential. It reads the leased row by its lease without a lock (on Citus a FOR UPDATE must
-- stay within one shard, and the lease is not the distribution key; on one node by the lease
-- index below the executor), seals the new tokens, then updates the row by its key with the
-- lease checked again (MC203 when the update found no row: the lease was lost meanwhile) and
-- writes the audit row: on one node below the statement level (src/pg/audit_writer.cpp: the
-- log's routing, compiled constraints and trigger kept for the calling statement), under Citus
-- in the same statement as the update, on the tenant's shard. The instance's row is left
-- alone (a refresh renews the same grant). SECURITY DEFINER without a SET clause: the C code
-- pins its search_path itself, once, and qualifies every name.
CREATE OR REPLACE FUNCTION mcp.complete_refresh(lease_token uuid, access_token text, refresh_token text,
                                                expires_at timestamptz, token_scope text DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_complete_refresh'
    LANGUAGE C VOLATILE SECURITY DEFINER PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp.complete_refresh(uuid, text, text, timestamptz, text) IS
    'settles a lease with the refreshed tokens (NULL refresh_token or token_scope keeps the stored one); MC203 when the lease is lost';
REVOKE ALL ON FUNCTION mcp.complete_refresh(uuid, text, text, timestamptz, text) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.complete_refresh(uuid, text, text, timestamptz, text) TO mcp_worker;

-- A failed refresh: ends the lease and records the failure. permanent (the provider said the
-- grant is gone, e.g. invalid_grant) or failures on more than refresh_max_failure_days UTC
-- days make the credential needs_reauth (never claimed again until a new OAuth flow; an
-- event); otherwise it is cooling until the backoff has passed. Returns the new state.
CREATE OR REPLACE FUNCTION mcp.fail_refresh(lease_token uuid, error_type text, error_message text DEFAULT NULL,
                                            permanent boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    clock timestamptz := mcp_internal.refresh_clock();
    cred record;
    outcome record;
    due timestamptz;
BEGIN
    IF fail_refresh.error_type IS NULL OR fail_refresh.error_type = '' THEN
        RAISE EXCEPTION 'error_type must not be empty' USING ERRCODE = '22023',
            HINT = 'Pass the provider''s error code, e.g. invalid_grant or http_503.';
    END IF;
    PERFORM mcp_internal.check_secret_length('error_type', fail_refresh.error_type, 100);
    cred := mcp_internal.leased_credential(fail_refresh.lease_token);
    outcome := mcp_internal.refresh_failure(cred.refresh_failures, cred.failure_days, cred.last_failure_at, clock,
                                            coalesce(fail_refresh.permanent, false));
    -- computed here: Citus refuses a non-immutable function inside CASE in an UPDATE
    IF outcome.new_state <> 'needs_reauth' THEN
        due := greatest(outcome.next_attempt_at, mcp_internal.refresh_due_at(cred.token_expires_at, cred.tokens_stored_at));
    END IF;
    UPDATE mcp.mcp_credentials c
       SET refresh_state = outcome.new_state, refresh_lease = NULL, refresh_claimed_until = NULL,
           refresh_failures = outcome.new_failures, failure_days = outcome.new_failure_days,
           next_attempt_at = outcome.next_attempt_at, last_failure_at = clock,
           last_error_type = fail_refresh.error_type,
           refresh_due_at = due
     WHERE c.user_id = cred.user_id AND c.credential_id = cred.credential_id;
    INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, error_type, error_message, metadata)
    VALUES (cred.instance_id, cred.user_id, 'refresh', 'failure', 'oauth', fail_refresh.error_type,
            left(fail_refresh.error_message, 1000),
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'permanent', coalesce(fail_refresh.permanent, false),
                'failure_days', outcome.new_failure_days,
                'event', CASE WHEN outcome.new_state = 'needs_reauth' THEN 'needs_reauth' END)));
    IF outcome.new_state = 'needs_reauth' THEN
        PERFORM mcp_internal.credential_event(cred.user_id, cred.instance_id, 'needs_reauth', fail_refresh.error_type);
    END IF;
    RETURN outcome.new_state;
END
$$;
COMMENT ON FUNCTION mcp.fail_refresh(uuid, text, text, boolean) IS
    'settles a lease with a failed refresh: cooling (backoff) or needs_reauth; returns the new state; MC203 when the lease is lost';
REVOKE ALL ON FUNCTION mcp.fail_refresh(uuid, text, text, boolean) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.fail_refresh(uuid, text, text, boolean) TO mcp_worker;

-- ---- state ---------------------------------------------------------------------------------

-- The refresh state of OAuth credentials, no secret. security_invoker: row-level security
-- scopes it (mcp_app: the transaction's tenant; mcp_worker and mcp_admin: every tenant).
CREATE OR REPLACE VIEW mcp.refresh_status WITH (security_invoker = true) AS
SELECT c.instance_id, c.user_id, c.refresh_state::text AS refresh_state, c.failure_days,
       c.last_success_at, c.last_failure_at, c.last_error_type::text AS last_error_type,
       c.next_attempt_at, c.token_expires_at AS access_expires_at
  FROM mcp.mcp_credentials c
 WHERE c.client_id IS NOT NULL OR c.refresh_state <> 'ok';
COMMENT ON VIEW mcp.refresh_status IS
    'refresh state of OAuth (and revoked) credentials: ok, cooling, needs_reauth, revoked; no secret';
REVOKE ALL ON mcp.refresh_status FROM PUBLIC, mcp_app, mcp_admin, mcp_worker;
GRANT SELECT ON mcp.refresh_status TO mcp_app, mcp_admin, mcp_worker;
