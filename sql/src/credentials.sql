-- ===========================================================================================
-- The tenant-checked credential API (mcp_app). Each function is SECURITY DEFINER, starts with
-- mcp_internal.credential_instance() (the instance must be the current tenant's, 42501
-- otherwise), seals secrets in C before any row holds them, and writes an audit row (never
-- the secret). mcp_app never reads or writes a ciphertext column itself.
-- ===========================================================================================
-- Refuses a secret over its limit (22001) without quoting it.
CREATE OR REPLACE FUNCTION mcp_internal.check_secret_length(what text, secret text, max_chars integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.char_length(secret) > max_chars THEN
        RAISE EXCEPTION '% is longer than % characters', what, max_chars USING ERRCODE = '22001',
            DETAIL = format('field=%s max_chars=%s', what, max_chars);
    END IF;
END
$$;
COMMENT ON FUNCTION mcp_internal.check_secret_length(text, text, integer) IS
    'refuses a secret over its limit (22001) without quoting it';
REVOKE ALL ON FUNCTION mcp_internal.check_secret_length(text, text, integer) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.require_type(instance_id uuid, service_type text, wanted text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF service_type IS DISTINCT FROM wanted THEN
        RAISE EXCEPTION 'instance % belongs to a service of type %, not %', instance_id, service_type, wanted
            USING ERRCODE = 'MC202';
    END IF;
END
$$;
COMMENT ON FUNCTION mcp_internal.require_type(uuid, text, text) IS
    'refuses a credential of the wrong type for the service (MC202)';
REVOKE ALL ON FUNCTION mcp_internal.require_type(uuid, text, text) FROM PUBLIC, mcp_app, mcp_admin;

-- C (src/pg/credentials_api.cpp), like get_credentials: the same checks, SQLSTATEs and audit
-- row as the PL/pgSQL of the other calls, at the cost of the plain writes. SECURITY DEFINER
-- without a SET clause: the C code pins its search_path itself, once, and qualifies every name.
CREATE OR REPLACE FUNCTION mcp.set_api_key(instance_id uuid, api_key text, tenant uuid DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_set_api_key'
    LANGUAGE C VOLATILE SECURITY DEFINER PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp.set_api_key(uuid, text, uuid) IS
    'stores the API key of one of the tenant''s instances, encrypted (at most 500 characters)';
REVOKE ALL ON FUNCTION mcp.set_api_key(uuid, text, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.set_api_key(uuid, text, uuid) TO mcp_app;

CREATE OR REPLACE FUNCTION mcp.set_oauth_client(instance_id uuid, client_id text, client_secret text,
                                                tenant uuid DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp_internal.credential_instance(set_oauth_client.instance_id, set_oauth_client.tenant);
    sealed bytea;
BEGIN
    PERFORM mcp_internal.require_type(set_oauth_client.instance_id, inst.service_type, 'oauth');
    IF set_oauth_client.client_id IS NULL OR set_oauth_client.client_id = '' THEN
        RAISE EXCEPTION 'client_id must not be empty' USING ERRCODE = '22023';
    END IF;
    PERFORM mcp_internal.check_secret_length('client_id', set_oauth_client.client_id, 500);
    PERFORM mcp_internal.check_secret_length('client_secret', set_oauth_client.client_secret, 500);
    IF set_oauth_client.client_secret IS NOT NULL THEN
        sealed := mcp_internal.seal_field(inst.user_id, set_oauth_client.instance_id, 'client_secret',
                                  set_oauth_client.client_secret);
    END IF;
    INSERT INTO mcp.mcp_credentials AS c (user_id, instance_id, client_id, client_secret, key_version)
    VALUES (inst.user_id, set_oauth_client.instance_id, set_oauth_client.client_id, sealed,
            mcp_internal.envelope_key_version(sealed))
    ON CONFLICT ON CONSTRAINT mcp_credentials_instance_key DO UPDATE
       SET client_id = excluded.client_id,
           client_secret = excluded.client_secret,
           api_key = NULL,  -- an API key from before the service became an OAuth service
           key_version = mcp_internal.common_key_version(NULL, excluded.client_secret, c.access_token,
                                                 c.refresh_token, c.oauth_code_verifier);
    UPDATE mcp.mcp_service_table s SET credentials_updated_at = now()
     WHERE s.user_id = inst.user_id AND s.instance_id = set_oauth_client.instance_id;
    PERFORM mcp.log_token_operation(set_oauth_client.instance_id, 'set_oauth_client', 'success', 'oauth');
END
$$;
COMMENT ON FUNCTION mcp.set_oauth_client(uuid, text, text, uuid) IS
    'stores the OAuth client id and encrypted client secret of one of the tenant''s instances';
REVOKE ALL ON FUNCTION mcp.set_oauth_client(uuid, text, text, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.set_oauth_client(uuid, text, text, uuid) TO mcp_app;

CREATE OR REPLACE FUNCTION mcp.begin_oauth(instance_id uuid, authorization_url text,
                                           tenant uuid DEFAULT NULL)
    RETURNS TABLE (state text, code_challenge text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp_internal.credential_instance(begin_oauth.instance_id, begin_oauth.tenant);
    pkce record;
    sealed bytea;
    found_row boolean;
BEGIN
    PERFORM mcp_internal.require_type(begin_oauth.instance_id, inst.service_type, 'oauth');
    IF begin_oauth.authorization_url IS NULL OR begin_oauth.authorization_url = '' THEN
        RAISE EXCEPTION 'authorization_url must not be empty' USING ERRCODE = '22023';
    END IF;
    PERFORM mcp_internal.check_secret_length('authorization_url', begin_oauth.authorization_url, 4096);
    -- https only; http for a provider on this machine (development)
    IF begin_oauth.authorization_url !~* '^https://[^/?#[:space:]]+'
       AND begin_oauth.authorization_url !~* '^http://(localhost|127\.0\.0\.1|\[::1\])([:/?#]|$)' THEN
        RAISE EXCEPTION 'authorization_url must be an https URL' USING ERRCODE = '22023',
            DETAIL = 'http is accepted for localhost only.';
    END IF;
    pkce := mcp_internal.oauth_pkce();
    sealed := mcp_internal.seal_field(inst.user_id, begin_oauth.instance_id, 'code_verifier', pkce.code_verifier);
    UPDATE mcp.mcp_credentials c
       SET oauth_state = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pkce.state, 'UTF8')), 'hex'),
           oauth_state_expires_at = now() + mcp_internal.setting('mcp_platform.oauth_state_ttl')::interval,
           oauth_code_verifier = sealed,
           oauth_status = 'pending',
           oauth_authorization_url = begin_oauth.authorization_url,
           key_version = mcp_internal.common_key_version(NULL, c.client_secret, c.access_token, c.refresh_token, sealed)
     WHERE c.user_id = inst.user_id AND c.instance_id = begin_oauth.instance_id
       AND c.client_id IS NOT NULL;
    GET DIAGNOSTICS found_row = ROW_COUNT;
    IF NOT found_row THEN
        RAISE EXCEPTION 'instance % has no OAuth client', begin_oauth.instance_id USING ERRCODE = '55000',
            HINT = 'Call mcp.set_oauth_client first.';
    END IF;
    UPDATE mcp.mcp_service_table s SET oauth_status = 'pending'
     WHERE s.user_id = inst.user_id AND s.instance_id = begin_oauth.instance_id;
    -- the flow has begun: a success (its end is complete_oauth and store_tokens)
    PERFORM mcp.log_token_operation(begin_oauth.instance_id, 'begin_oauth', 'success', 'oauth');
    state := pkce.state;
    code_challenge := pkce.code_challenge;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION mcp.begin_oauth(uuid, text, uuid) IS
    'starts an OAuth flow: a single-use state (stored hashed) and a PKCE S256 challenge (verifier stored encrypted)';
REVOKE ALL ON FUNCTION mcp.begin_oauth(uuid, text, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.begin_oauth(uuid, text, uuid) TO mcp_app;

CREATE OR REPLACE FUNCTION mcp.complete_oauth(state text, tenant uuid DEFAULT NULL)
    RETURNS TABLE (instance_id uuid, code_verifier text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me uuid := mcp_internal.require_tenant(complete_oauth.tenant);
    cred record;
BEGIN
    SELECT c.user_id, c.instance_id, c.oauth_state_expires_at, c.oauth_code_verifier INTO cred
      FROM mcp.mcp_credentials c
     WHERE c.user_id = me
       AND c.oauth_state = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(coalesce(complete_oauth.state, ''), 'UTF8')), 'hex')
       FOR UPDATE;
    IF cred.instance_id IS NULL THEN
        RAISE EXCEPTION 'oauth state is invalid or already used' USING ERRCODE = 'MC201';
    END IF;
    IF cred.oauth_state_expires_at <= now() THEN
        RAISE EXCEPTION 'oauth state has expired' USING ERRCODE = 'MC201',
            HINT = 'Start the flow again with mcp.begin_oauth.';
    END IF;
    instance_id := cred.instance_id;
    code_verifier := mcp_internal.open_field(cred.user_id, cred.instance_id, 'code_verifier', cred.oauth_code_verifier);
    UPDATE mcp.mcp_credentials c
       SET oauth_state = NULL, oauth_state_expires_at = NULL, oauth_code_verifier = NULL,
           key_version = mcp_internal.common_key_version(NULL, c.client_secret, c.access_token, c.refresh_token, NULL)
     WHERE c.user_id = cred.user_id AND c.instance_id = cred.instance_id;
    PERFORM mcp.log_token_operation(cred.instance_id, 'complete_oauth', 'success', 'oauth');
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION mcp.complete_oauth(text, uuid) IS
    'consumes an OAuth state; returns the instance and the PKCE verifier for the code exchange (MC201 if unknown, used or expired)';
REVOKE ALL ON FUNCTION mcp.complete_oauth(text, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.complete_oauth(text, uuid) TO mcp_app;

-- Tokens from the tenant's own code exchange (or a refresh it did itself): stored encrypted,
-- and the refresh lifecycle starts over: state ok, failures forgotten, any outstanding lease
-- of a worker invalidated (its settle raises MC203), the next refresh scheduled. After
-- cooling or needs_reauth that is a recovery (an event).
CREATE OR REPLACE FUNCTION mcp.store_oauth_tokens(instance_id uuid, access_token text, refresh_token text,
                                       expires_at timestamptz, scope text,
                                       tenant uuid DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp_internal.credential_instance(store_oauth_tokens.instance_id, store_oauth_tokens.tenant);
    clock timestamptz := mcp_internal.refresh_clock();
    ts timestamptz := now();
    sealed_access bytea;
    sealed_refresh bytea;
    cred record;
    due timestamptz;
BEGIN
    IF inst.service_type IS DISTINCT FROM 'oauth' THEN
        PERFORM mcp_internal.require_type(store_oauth_tokens.instance_id, inst.service_type, 'oauth');
    END IF;
    IF store_oauth_tokens.access_token IS NULL OR store_oauth_tokens.access_token = '' THEN
        RAISE EXCEPTION 'access_token must not be empty' USING ERRCODE = '22023';
    END IF;
    -- the common case checked inline, the error raised by the one helper that words it
    IF pg_catalog.char_length(store_oauth_tokens.access_token) > 8192
       OR pg_catalog.char_length(store_oauth_tokens.refresh_token) > 8192
       OR pg_catalog.char_length(store_oauth_tokens.scope) > 4096 THEN
        PERFORM mcp_internal.check_secret_length('access_token', store_oauth_tokens.access_token, 8192);
        PERFORM mcp_internal.check_secret_length('refresh_token', store_oauth_tokens.refresh_token, 8192);
        PERFORM mcp_internal.check_secret_length('scope', store_oauth_tokens.scope, 4096);
    END IF;
    IF NOT pg_catalog.isfinite(store_oauth_tokens.expires_at) THEN
        RAISE EXCEPTION 'expires_at must be finite' USING ERRCODE = '22023';
    END IF;
    SELECT c.credential_id, c.refresh_state, c.refresh_token, c.client_secret, c.oauth_code_verifier INTO cred
      FROM mcp.mcp_credentials c
     WHERE c.user_id = inst.user_id AND c.instance_id = store_oauth_tokens.instance_id
       AND c.client_id IS NOT NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'instance % has no OAuth client', store_oauth_tokens.instance_id USING ERRCODE = '55000',
            HINT = 'Call mcp.set_oauth_client first.';
    END IF;
    sealed_access := mcp_internal.seal_field(inst.user_id, store_oauth_tokens.instance_id, 'access_token',
                                     store_oauth_tokens.access_token);
    IF store_oauth_tokens.refresh_token IS NOT NULL THEN
        sealed_refresh := mcp_internal.seal_field(inst.user_id, store_oauth_tokens.instance_id, 'refresh_token',
                                          store_oauth_tokens.refresh_token);
    ELSE
        sealed_refresh := cred.refresh_token;
    END IF;
    -- computed here: Citus refuses a non-immutable function inside CASE in an UPDATE
    IF sealed_refresh IS NOT NULL THEN
        due := mcp_internal.refresh_due_at(store_oauth_tokens.expires_at, clock);
    END IF;
    UPDATE mcp.mcp_credentials c
       SET access_token = sealed_access,
           refresh_token = sealed_refresh,
           token_expires_at = store_oauth_tokens.expires_at,
           token_scope = store_oauth_tokens.scope,
           oauth_status = 'completed',
           oauth_completed_at = coalesce(c.oauth_completed_at, ts),
           refresh_state = 'ok', refresh_lease = NULL, refresh_claimed_until = NULL,
           refresh_failures = 0, failure_days = 0, next_attempt_at = NULL,
           tokens_stored_at = clock,
           refresh_due_at = due,
           key_version = mcp_internal.common_key_version(NULL, cred.client_secret, sealed_access,
                                                         sealed_refresh, cred.oauth_code_verifier)
     WHERE c.user_id = inst.user_id AND c.credential_id = cred.credential_id;
    UPDATE mcp.mcp_service_table s SET oauth_status = 'completed', credentials_updated_at = ts
     WHERE s.user_id = inst.user_id AND s.instance_id = store_oauth_tokens.instance_id;
    -- the row mcp.log_token_operation would write (the instance is the tenant's: checked above)
    INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, metadata)
    VALUES (store_oauth_tokens.instance_id, inst.user_id, 'store_tokens', 'success', 'oauth',
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'refresh_token_replaced', store_oauth_tokens.refresh_token IS NOT NULL,
                'event', CASE WHEN cred.refresh_state IN ('cooling', 'needs_reauth') THEN 'recovered' END)));
    IF cred.refresh_state IN ('cooling', 'needs_reauth') THEN
        PERFORM mcp_internal.credential_event(inst.user_id, store_oauth_tokens.instance_id, 'recovered');
    END IF;
END
$$;
COMMENT ON FUNCTION mcp.store_oauth_tokens(uuid, text, text, timestamptz, text, uuid) IS
    'stores encrypted OAuth tokens after a code exchange; a NULL refresh_token keeps the stored one; restarts the refresh lifecycle (ends any worker''s lease)';
REVOKE ALL ON FUNCTION mcp.store_oauth_tokens(uuid, text, text, timestamptz, text, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.store_oauth_tokens(uuid, text, text, timestamptz, text, uuid) TO mcp_app;

-- A row of get_credentials. A named row type rather than RETURNS TABLE: the executor then
-- takes the row type from the type cache, instead of building it from the function's OUT
-- parameters every time a statement calling it starts (a tenth of the call, profiled).
DO $type$
BEGIN
    IF pg_catalog.to_regtype('mcp_internal.credentials_row') IS NULL THEN
        CREATE TYPE mcp_internal.credentials_row AS (
            auth_type text, api_key text, client_id text, client_secret text, access_token text,
            refresh_token text, token_expires_at timestamptz, token_scope text, oauth_status text);
    END IF;
END
$type$;

-- C (src/pg/credentials_api.cpp): the tenant check, then the instance, its service and its
-- credentials row read by unique index, and the fields opened in C. SECURITY DEFINER without a
-- SET clause: the index reads resolve no name through the search_path, and the statement form
-- it takes under Citus pins search_path itself (PinSearchPath) and is schema-qualified
-- throughout (test/sql/hostile_search_path.sql, credential_reads.sql).
CREATE OR REPLACE FUNCTION mcp.get_credentials(instance_id uuid, tenant uuid DEFAULT NULL)
    RETURNS SETOF mcp_internal.credentials_row
    AS 'MODULE_PATHNAME', 'mcp_get_credentials'
    LANGUAGE C VOLATILE SECURITY DEFINER PARALLEL UNSAFE ROWS 1;
COMMENT ON FUNCTION mcp.get_credentials(uuid, uuid) IS
    'the decrypted credentials of one of the tenant''s active instances (MC004 instance not active, MC003 service inactive)';
REVOKE ALL ON FUNCTION mcp.get_credentials(uuid, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.get_credentials(uuid, uuid) TO mcp_app;

-- Revokes the credentials of one of the tenant's instances: the API key or the tokens (and the
-- PKCE flow state) are wiped, the credential is marked revoked (never claimed; a new key or
-- OAuth flow ends it), any worker's lease ends (MC203), and the instance stays. The OAuth
-- client configuration stays too unless forget_client. Returns whether there was anything
-- to revoke (false: no credential, or revoked already); a revocation is an event.
CREATE OR REPLACE FUNCTION mcp.revoke_credentials(instance_id uuid, forget_client boolean DEFAULT false,
                                                   tenant uuid DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp_internal.credential_instance(revoke_credentials.instance_id, revoke_credentials.tenant);
    forget boolean := coalesce(revoke_credentials.forget_client, false);
    ts timestamptz := now();
    revoked boolean;
BEGIN
    UPDATE mcp.mcp_credentials c
       SET api_key = NULL, access_token = NULL, refresh_token = NULL, token_expires_at = NULL, token_scope = NULL,
           oauth_status = NULL, oauth_state = NULL, oauth_state_expires_at = NULL, oauth_code_verifier = NULL,
           oauth_authorization_url = NULL,
           client_id = CASE WHEN forget THEN NULL ELSE c.client_id END,
           client_secret = CASE WHEN forget THEN NULL ELSE c.client_secret END,
           key_version = CASE WHEN forget OR c.client_secret IS NULL THEN NULL
                              ELSE mcp_internal.envelope_key_version(c.client_secret) END,
           refresh_state = 'revoked', refresh_lease = NULL, refresh_claimed_until = NULL, refresh_due_at = NULL,
           tokens_stored_at = NULL, next_attempt_at = NULL
     WHERE c.user_id = inst.user_id AND c.instance_id = revoke_credentials.instance_id
       AND (c.refresh_state <> 'revoked' OR (forget AND c.client_id IS NOT NULL));
    GET DIAGNOSTICS revoked = ROW_COUNT;
    IF revoked THEN
        UPDATE mcp.mcp_service_table s SET oauth_status = NULL, credentials_updated_at = ts
         WHERE s.user_id = inst.user_id AND s.instance_id = revoke_credentials.instance_id;
        PERFORM mcp_internal.credential_event(inst.user_id, revoke_credentials.instance_id, 'revoked');
    END IF;
    PERFORM mcp.log_token_operation(revoke_credentials.instance_id, 'revoke', 'success', inst.service_type,
                                    metadata => pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                                        'had_credentials', revoked, 'forget_client', forget,
                                        'event', CASE WHEN revoked THEN 'revoked' END)));
    RETURN revoked;
END
$$;
COMMENT ON FUNCTION mcp.revoke_credentials(uuid, boolean, uuid) IS
    'revokes one of the tenant''s credentials (tokens or API key wiped, state revoked, instance kept; the OAuth client too unless forget_client); true when there was anything to revoke';
REVOKE ALL ON FUNCTION mcp.revoke_credentials(uuid, boolean, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.revoke_credentials(uuid, boolean, uuid) TO mcp_app;

-- The tenant's OAuth credentials with a refresh token that expire within `within`, each
-- leased to this caller for mcp_platform.token_refresh_lease (release 1.0's tenant-scoped
-- claim, on the same state as mcp.claim_refreshes: leased, needs_reauth, revoked and still
-- cooling credentials are skipped, rows another worker holds too: FOR UPDATE SKIP LOCKED).
-- mcp.store_oauth_tokens ends the lease.
CREATE OR REPLACE FUNCTION mcp.claim_token_refresh(within interval, max_rows integer,
                                                    tenant uuid DEFAULT NULL) RETURNS SETOF uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE ROWS 10
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me uuid := mcp_internal.require_tenant(claim_token_refresh.tenant);
    lease interval := mcp_internal.setting('mcp_platform.token_refresh_lease')::interval;
    clock timestamptz := mcp_internal.refresh_clock();
    claimed uuid[];
    due record;
    token uuid;
    inst uuid;
BEGIN
    IF within IS NULL OR max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'within must not be NULL and max_rows must be positive' USING ERRCODE = '22023';
    END IF;
    -- One row at a time, each with a lease token made here: Citus refuses a volatile function
    -- (gen_random_uuid) in an UPDATE of a distributed table. Every statement names the tenant
    -- (one shard), where Citus runs FOR UPDATE SKIP LOCKED.
    claimed := '{}';
    FOR due IN
        SELECT c.credential_id
          FROM mcp.mcp_credentials c
         WHERE c.user_id = me
           AND c.refresh_token IS NOT NULL
           AND c.token_expires_at <= clock + within
           AND (c.refresh_state = 'ok' OR (c.refresh_state = 'cooling' AND c.next_attempt_at <= clock))
           AND (c.refresh_lease IS NULL OR c.refresh_claimed_until <= clock)
         ORDER BY c.token_expires_at
         LIMIT max_rows
           FOR UPDATE SKIP LOCKED
    LOOP
        token := pg_catalog.gen_random_uuid();
        UPDATE mcp.mcp_credentials c
           SET refresh_lease = token, refresh_claimed_until = clock + lease,
               refresh_due_at = greatest(c.refresh_due_at, clock + lease)
         WHERE c.user_id = me AND c.credential_id = due.credential_id
        RETURNING c.instance_id INTO inst;
        claimed := claimed || inst;
    END LOOP;
    INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method)
    SELECT u.id, me, 'claim_refresh', 'success', 'oauth' FROM pg_catalog.unnest(claimed) AS u(id);
    RETURN QUERY SELECT u.id FROM pg_catalog.unnest(claimed) AS u(id);
END
$$;
COMMENT ON FUNCTION mcp.claim_token_refresh(interval, integer, uuid) IS
    'leases the tenant''s OAuth credentials that expire within the interval to this caller (release 1.0''s tenant-scoped claim; see mcp.claim_refreshes)';
REVOKE ALL ON FUNCTION mcp.claim_token_refresh(interval, integer, uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.claim_token_refresh(interval, integer, uuid) TO mcp_app;
