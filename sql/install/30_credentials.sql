-- ===========================================================================================
-- Credential encryption (SPEC §4): the AES-256-GCM envelope functions, the key check, key
-- status and rotation, and the tenant-checked credential API. Secrets are sealed in C
-- (mcp._seal_field) with associated data binding them to (user_id, instance_id, field)
-- before any row holds them. The API functions are SECURITY DEFINER and check the tenant
-- themselves (42501), so mcp_app never touches a ciphertext column.
-- ===========================================================================================

-- The key version every non-NULL secret of a row uses (0 when they differ, NULL when the row
-- holds none): rotation finds rows to re-seal by it without decrypting anything.
ALTER TABLE mcp.mcp_credentials ADD COLUMN key_version integer;
-- Half-empty pages: re-sealing a row (rotation, token refresh) changes no indexed column, so
-- with room on the page the new version is a HOT update with no index insertions. Measured:
-- rotation 20k rows/s at fillfactor 100, 60k rows/s at 50 (README "Credentials"). The table
-- holds one small row per instance; ALTER TABLE ... SET (fillfactor = 100) trades that back.
ALTER TABLE mcp.mcp_credentials SET (fillfactor = 50);

-- One key-check value per key version: the key's fingerprint (first 8 bytes of
-- HMAC-SHA256(key, fixed label); it does not reveal the key). A backend compares its
-- keyring with it once per (re)load, so a wrong or changed key is refused up front (MC102).
CREATE TABLE mcp.key_check (
    key_version  integer     NOT NULL,
    fingerprint  text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT key_check_pkey PRIMARY KEY (key_version),
    CONSTRAINT key_check_version_positive CHECK (key_version > 0),
    CONSTRAINT key_check_fingerprint_shape CHECK (fingerprint ~ '^[0-9a-f]{16}$')
);
SELECT pg_catalog.pg_extension_config_dump('mcp.key_check', '');

-- Called by the C keyring loader (src/pg/keyring_source.cpp, directly through fmgr) with every version of the
-- keyring. Returns the first version whose recorded fingerprint differs (> 0); otherwise 0
-- when every version is recorded, -1 when it recorded new versions in this transaction (the
-- loader checks again in a later transaction, in case this one rolls back), -2 when versions
-- are missing but the transaction is read-only.
CREATE FUNCTION mcp._key_check(versions integer[], fingerprints text[]) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad integer;
    missing boolean;
BEGIN
    SELECT k.key_version INTO bad
      FROM ROWS FROM (pg_catalog.unnest(versions), pg_catalog.unnest(fingerprints)) AS r(v, f)
      JOIN mcp.key_check k ON k.key_version = r.v
     WHERE k.fingerprint <> r.f
     ORDER BY k.key_version LIMIT 1;
    IF bad IS NOT NULL THEN
        RETURN bad;
    END IF;
    SELECT EXISTS (SELECT 1 FROM pg_catalog.unnest(versions) AS r(v)
                    WHERE NOT EXISTS (SELECT 1 FROM mcp.key_check k WHERE k.key_version = r.v))
      INTO missing;
    IF NOT missing THEN
        RETURN 0;
    END IF;
    IF pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only') = 'on' THEN
        RETURN -2;
    END IF;
    INSERT INTO mcp.key_check (key_version, fingerprint)
    SELECT r.v, r.f FROM ROWS FROM (pg_catalog.unnest(versions), pg_catalog.unnest(fingerprints)) AS r(v, f)
    ON CONFLICT (key_version) DO NOTHING;
    -- a concurrent loader may have recorded a different key for the same version
    SELECT k.key_version INTO bad
      FROM ROWS FROM (pg_catalog.unnest(versions), pg_catalog.unnest(fingerprints)) AS r(v, f)
      JOIN mcp.key_check k ON k.key_version = r.v
     WHERE k.fingerprint <> r.f
     ORDER BY k.key_version LIMIT 1;
    RETURN coalesce(bad, -1);
END
$$;

-- ---- low level (C) ---------------------------------------------------------------------------
CREATE FUNCTION mcp.encrypt(plaintext text, context bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_encrypt' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION mcp.decrypt(ciphertext bytea, context bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'mcp_decrypt' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION mcp.credential_context(user_id uuid, instance_id uuid, field text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_credential_context' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mcp.encrypt(text, bytea) IS
    'AES-256-GCM envelope of plaintext under the active key; context is authenticated associated data';
COMMENT ON FUNCTION mcp.decrypt(bytea, bytea) IS
    'plaintext of an mcp.encrypt envelope; the context must be the one it was sealed with';
COMMENT ON FUNCTION mcp.credential_context(uuid, uuid, text) IS
    'associated data of a credential field (api_key, client_secret, access_token, refresh_token, code_verifier)';

CREATE FUNCTION mcp._seal_field(user_id uuid, instance_id uuid, field text, secret text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_seal_field' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION mcp._open_field(user_id uuid, instance_id uuid, field text, ciphertext bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'mcp_open_field' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION mcp._reseal_field(user_id uuid, instance_id uuid, field text, ciphertext bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_reseal_field' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION mcp._envelope_key_version(ciphertext bytea) RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_envelope_key_version' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION mcp._common_key_version(bytea, bytea, bytea, bytea, bytea) RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_common_key_version' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION mcp._active_key_version() RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_active_key_version' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._keyring_versions(OUT key_version integer, OUT is_active boolean, OUT fingerprint text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'mcp_keyring_versions' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._oauth_pkce(OUT state text, OUT code_verifier text, OUT code_challenge text)
    AS 'MODULE_PATHNAME', 'mcp_oauth_pkce' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- ---- key status and rotation (mcp_admin) -----------------------------------------------------

-- Every key version of the keyring or of the stored data: whether it is in the keyring and
-- active, its fingerprint (never the key), and how many stored secret values use it.
CREATE FUNCTION mcp.key_status()
    RETURNS TABLE (key_version integer, is_active boolean, in_keyring boolean,
                   fingerprint text, stored_values bigint)
    LANGUAGE sql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH ring AS (
        SELECT r.key_version, r.is_active, r.fingerprint FROM mcp._keyring_versions() r
    ), used AS (
        SELECT mcp._envelope_key_version(f.v) AS key_version, count(*) AS n
          FROM mcp.mcp_credentials c,
               LATERAL (VALUES (c.api_key), (c.client_secret), (c.access_token),
                               (c.refresh_token), (c.oauth_code_verifier)) AS f(v)
         WHERE f.v IS NOT NULL
         GROUP BY 1
    )
    SELECT coalesce(ring.key_version, used.key_version),
           coalesce(ring.is_active, false),
           ring.key_version IS NOT NULL,
           ring.fingerprint,
           coalesce(used.n, 0)
      FROM ring FULL JOIN used ON used.key_version = ring.key_version
     ORDER BY 1;
$$;

-- Re-seals up to batch_size credential rows that hold a value under a non-active key; returns
-- how many rows it re-sealed (call until 0). Rows locked by others are skipped, readers are
-- never blocked, and no plaintext leaves C.
CREATE FUNCTION mcp.rotate_credentials(batch_size integer DEFAULT 1000) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    active integer := mcp._active_key_version();
    done bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be a positive integer' USING ERRCODE = '22023';
    END IF;
    -- Lock a batch (skipping rows others hold), then rewrite exactly those tuples by ctid:
    -- the locks keep their ctids stable, and no join over the whole table is needed.
    UPDATE mcp.mcp_credentials c
       SET api_key = mcp._reseal_field(c.user_id, c.instance_id, 'api_key', c.api_key),
           client_secret = mcp._reseal_field(c.user_id, c.instance_id, 'client_secret', c.client_secret),
           access_token = mcp._reseal_field(c.user_id, c.instance_id, 'access_token', c.access_token),
           refresh_token = mcp._reseal_field(c.user_id, c.instance_id, 'refresh_token', c.refresh_token),
           oauth_code_verifier = mcp._reseal_field(c.user_id, c.instance_id, 'code_verifier', c.oauth_code_verifier),
           key_version = active
     WHERE c.ctid = ANY (ARRAY(
               SELECT b.ctid FROM mcp.mcp_credentials b
                WHERE b.key_version <> active
                LIMIT batch_size
                  FOR UPDATE SKIP LOCKED));
    GET DIAGNOSTICS done = ROW_COUNT;
    RETURN done;
END
$$;

-- ---- the tenant-checked credential API (mcp_app) ---------------------------------------------

-- The calling tenant's instance and its service type; 42501 when no tenant is set or the
-- instance is not the tenant's (the two cases are not told apart to other tenants).
CREATE FUNCTION mcp._credential_instance(instance_id uuid, OUT user_id uuid, OUT service_type text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp._require_tenant();
BEGIN
    SELECT s.user_id, t.type INTO user_id, service_type
      FROM mcp.mcp_service_table s JOIN mcp.mcp_table t ON t.mcp_service_id = s.mcp_service_id
     WHERE s.user_id = tenant AND s.instance_id = _credential_instance.instance_id;
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'instance % does not belong to the current tenant', _credential_instance.instance_id
            USING ERRCODE = '42501';
    END IF;
END
$$;

-- Refuses a secret over its limit (22001) without quoting it.
CREATE FUNCTION mcp._check_secret_length(what text, secret text, max_chars integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.char_length(secret) > max_chars THEN
        RAISE EXCEPTION '% is longer than % characters', what, max_chars USING ERRCODE = '22001';
    END IF;
END
$$;

CREATE FUNCTION mcp._require_type(instance_id uuid, service_type text, wanted text) RETURNS void
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

CREATE FUNCTION mcp.set_api_key(instance_id uuid, api_key text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp._credential_instance(set_api_key.instance_id);
    sealed bytea;
BEGIN
    PERFORM mcp._require_type(set_api_key.instance_id, inst.service_type, 'api_key');
    IF set_api_key.api_key IS NULL OR set_api_key.api_key = '' THEN
        RAISE EXCEPTION 'api_key must not be empty' USING ERRCODE = '22023';
    END IF;
    PERFORM mcp._check_secret_length('api_key', set_api_key.api_key, 500);
    sealed := mcp._seal_field(inst.user_id, set_api_key.instance_id, 'api_key', set_api_key.api_key);
    INSERT INTO mcp.mcp_credentials AS c (user_id, instance_id, api_key, key_version)
    VALUES (inst.user_id, set_api_key.instance_id, sealed, mcp._envelope_key_version(sealed))
    ON CONFLICT ON CONSTRAINT mcp_credentials_instance_key DO UPDATE
       SET api_key = excluded.api_key, key_version = excluded.key_version;
    UPDATE mcp.mcp_service_table s SET credentials_updated_at = now()
     WHERE s.user_id = inst.user_id AND s.instance_id = set_api_key.instance_id;
    PERFORM mcp.log_token_operation(set_api_key.instance_id, 'set_api_key', 'success', 'api_key');
END
$$;

CREATE FUNCTION mcp.set_oauth_client(instance_id uuid, client_id text, client_secret text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp._credential_instance(set_oauth_client.instance_id);
    sealed bytea;
BEGIN
    PERFORM mcp._require_type(set_oauth_client.instance_id, inst.service_type, 'oauth');
    IF set_oauth_client.client_id IS NULL OR set_oauth_client.client_id = '' THEN
        RAISE EXCEPTION 'client_id must not be empty' USING ERRCODE = '22023';
    END IF;
    PERFORM mcp._check_secret_length('client_id', set_oauth_client.client_id, 500);
    PERFORM mcp._check_secret_length('client_secret', set_oauth_client.client_secret, 500);
    IF set_oauth_client.client_secret IS NOT NULL THEN
        sealed := mcp._seal_field(inst.user_id, set_oauth_client.instance_id, 'client_secret',
                                  set_oauth_client.client_secret);
    END IF;
    INSERT INTO mcp.mcp_credentials AS c (user_id, instance_id, client_id, client_secret, key_version)
    VALUES (inst.user_id, set_oauth_client.instance_id, set_oauth_client.client_id, sealed,
            mcp._envelope_key_version(sealed))
    ON CONFLICT ON CONSTRAINT mcp_credentials_instance_key DO UPDATE
       SET client_id = excluded.client_id,
           client_secret = excluded.client_secret,
           key_version = mcp._common_key_version(NULL, excluded.client_secret, c.access_token,
                                                 c.refresh_token, c.oauth_code_verifier);
    UPDATE mcp.mcp_service_table s SET credentials_updated_at = now()
     WHERE s.user_id = inst.user_id AND s.instance_id = set_oauth_client.instance_id;
    PERFORM mcp.log_token_operation(set_oauth_client.instance_id, 'set_oauth_client', 'success', 'oauth');
END
$$;

CREATE FUNCTION mcp.begin_oauth(instance_id uuid, authorization_url text)
    RETURNS TABLE (state text, code_challenge text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp._credential_instance(begin_oauth.instance_id);
    pkce record;
    sealed bytea;
    found_row boolean;
BEGIN
    PERFORM mcp._require_type(begin_oauth.instance_id, inst.service_type, 'oauth');
    IF begin_oauth.authorization_url IS NULL OR begin_oauth.authorization_url = '' THEN
        RAISE EXCEPTION 'authorization_url must not be empty' USING ERRCODE = '22023';
    END IF;
    pkce := mcp._oauth_pkce();
    sealed := mcp._seal_field(inst.user_id, begin_oauth.instance_id, 'code_verifier', pkce.code_verifier);
    UPDATE mcp.mcp_credentials c
       SET oauth_state = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pkce.state, 'UTF8')), 'hex'),
           oauth_state_expires_at = now() + pg_catalog.current_setting('mcp_platform.oauth_state_ttl')::interval,
           oauth_code_verifier = sealed,
           oauth_status = 'pending',
           oauth_authorization_url = begin_oauth.authorization_url,
           key_version = mcp._common_key_version(NULL, c.client_secret, c.access_token, c.refresh_token, sealed)
     WHERE c.user_id = inst.user_id AND c.instance_id = begin_oauth.instance_id;
    GET DIAGNOSTICS found_row = ROW_COUNT;
    IF NOT found_row THEN
        RAISE EXCEPTION 'instance % has no OAuth client', begin_oauth.instance_id USING ERRCODE = '22023',
            HINT = 'Call mcp.set_oauth_client first.';
    END IF;
    UPDATE mcp.mcp_service_table s SET oauth_status = 'pending'
     WHERE s.user_id = inst.user_id AND s.instance_id = begin_oauth.instance_id;
    PERFORM mcp.log_token_operation(begin_oauth.instance_id, 'begin_oauth', 'pending', 'oauth');
    state := pkce.state;
    code_challenge := pkce.code_challenge;
    RETURN NEXT;
END
$$;

CREATE FUNCTION mcp.complete_oauth(state text) RETURNS TABLE (instance_id uuid, code_verifier text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp._require_tenant();
    cred record;
BEGIN
    SELECT c.user_id, c.instance_id, c.oauth_state_expires_at, c.oauth_code_verifier INTO cred
      FROM mcp.mcp_credentials c
     WHERE c.user_id = tenant
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
    code_verifier := mcp._open_field(cred.user_id, cred.instance_id, 'code_verifier', cred.oauth_code_verifier);
    UPDATE mcp.mcp_credentials c
       SET oauth_state = NULL, oauth_state_expires_at = NULL, oauth_code_verifier = NULL,
           key_version = mcp._common_key_version(NULL, c.client_secret, c.access_token, c.refresh_token, NULL)
     WHERE c.user_id = cred.user_id AND c.instance_id = cred.instance_id;
    PERFORM mcp.log_token_operation(cred.instance_id, 'complete_oauth', 'success', 'oauth');
    RETURN NEXT;
END
$$;

CREATE FUNCTION mcp.store_oauth_tokens(instance_id uuid, access_token text, refresh_token text,
                                       expires_at timestamptz, scope text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp._credential_instance(store_oauth_tokens.instance_id);
    sealed_access bytea;
    sealed_refresh bytea;
    found_row boolean;
BEGIN
    PERFORM mcp._require_type(store_oauth_tokens.instance_id, inst.service_type, 'oauth');
    IF store_oauth_tokens.access_token IS NULL OR store_oauth_tokens.access_token = '' THEN
        RAISE EXCEPTION 'access_token must not be empty' USING ERRCODE = '22023';
    END IF;
    PERFORM mcp._check_secret_length('access_token', store_oauth_tokens.access_token, 8192);
    PERFORM mcp._check_secret_length('refresh_token', store_oauth_tokens.refresh_token, 8192);
    sealed_access := mcp._seal_field(inst.user_id, store_oauth_tokens.instance_id, 'access_token',
                                     store_oauth_tokens.access_token);
    IF store_oauth_tokens.refresh_token IS NOT NULL THEN
        sealed_refresh := mcp._seal_field(inst.user_id, store_oauth_tokens.instance_id, 'refresh_token',
                                          store_oauth_tokens.refresh_token);
    END IF;
    UPDATE mcp.mcp_credentials c
       SET access_token = sealed_access,
           refresh_token = coalesce(sealed_refresh, c.refresh_token),
           token_expires_at = store_oauth_tokens.expires_at,
           token_scope = store_oauth_tokens.scope,
           oauth_status = 'completed',
           oauth_completed_at = coalesce(c.oauth_completed_at, now()),
           refresh_claimed_until = NULL,
           key_version = mcp._common_key_version(NULL, c.client_secret, sealed_access,
                                                 coalesce(sealed_refresh, c.refresh_token), c.oauth_code_verifier)
     WHERE c.user_id = inst.user_id AND c.instance_id = store_oauth_tokens.instance_id;
    GET DIAGNOSTICS found_row = ROW_COUNT;
    IF NOT found_row THEN
        RAISE EXCEPTION 'instance % has no OAuth client', store_oauth_tokens.instance_id USING ERRCODE = '22023',
            HINT = 'Call mcp.set_oauth_client first.';
    END IF;
    UPDATE mcp.mcp_service_table s SET oauth_status = 'completed', credentials_updated_at = now()
     WHERE s.user_id = inst.user_id AND s.instance_id = store_oauth_tokens.instance_id;
    PERFORM mcp.log_token_operation(store_oauth_tokens.instance_id, 'store_tokens', 'success', 'oauth',
                                    metadata => pg_catalog.jsonb_build_object(
                                        'refresh_token_replaced', store_oauth_tokens.refresh_token IS NOT NULL));
END
$$;

CREATE FUNCTION mcp.get_credentials(instance_id uuid)
    RETURNS TABLE (auth_type text, api_key text, client_id text, client_secret text, access_token text,
                   refresh_token text, token_expires_at timestamptz, token_scope text, oauth_status text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp._credential_instance(get_credentials.instance_id);
BEGIN
    RETURN QUERY
    SELECT inst.service_type,
           CASE WHEN c.api_key IS NOT NULL THEN mcp._open_field(c.user_id, c.instance_id, 'api_key', c.api_key) END,
           c.client_id::text,
           CASE WHEN c.client_secret IS NOT NULL THEN mcp._open_field(c.user_id, c.instance_id, 'client_secret', c.client_secret) END,
           CASE WHEN c.access_token IS NOT NULL THEN mcp._open_field(c.user_id, c.instance_id, 'access_token', c.access_token) END,
           CASE WHEN c.refresh_token IS NOT NULL THEN mcp._open_field(c.user_id, c.instance_id, 'refresh_token', c.refresh_token) END,
           c.token_expires_at, c.token_scope, c.oauth_status::text
      FROM mcp.mcp_credentials c
     WHERE c.user_id = inst.user_id AND c.instance_id = get_credentials.instance_id;
END
$$;

CREATE FUNCTION mcp.revoke_credentials(instance_id uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inst record := mcp._credential_instance(revoke_credentials.instance_id);
    removed boolean;
BEGIN
    DELETE FROM mcp.mcp_credentials c
     WHERE c.user_id = inst.user_id AND c.instance_id = revoke_credentials.instance_id;
    GET DIAGNOSTICS removed = ROW_COUNT;
    UPDATE mcp.mcp_service_table s SET oauth_status = NULL, credentials_updated_at = now()
     WHERE s.user_id = inst.user_id AND s.instance_id = revoke_credentials.instance_id;
    PERFORM mcp.log_token_operation(revoke_credentials.instance_id, 'revoke', 'success', inst.service_type,
                                    metadata => pg_catalog.jsonb_build_object('had_credentials', removed));
END
$$;

-- The tenant's OAuth credentials with a refresh token that expire within `within`, each
-- leased (refresh_claimed_until) to one caller for mcp_platform.token_refresh_lease: rows
-- another worker holds are skipped (FOR UPDATE SKIP LOCKED) or still leased, so two workers
-- never get the same instance. mcp.store_oauth_tokens ends the lease.
CREATE FUNCTION mcp.claim_token_refresh(within interval, max_rows integer) RETURNS SETOF uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE ROWS 10
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp._require_tenant();
    lease interval := pg_catalog.current_setting('mcp_platform.token_refresh_lease')::interval;
    claimed uuid;
BEGIN
    IF within IS NULL OR max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'within must not be NULL and max_rows must be positive' USING ERRCODE = '22023';
    END IF;
    FOR claimed IN
        WITH due AS (
            SELECT c.user_id, c.credential_id
              FROM mcp.mcp_credentials c
             WHERE c.user_id = tenant
               AND c.refresh_token IS NOT NULL
               AND c.token_expires_at <= now() + within
               AND (c.refresh_claimed_until IS NULL OR c.refresh_claimed_until <= now())
             ORDER BY c.token_expires_at
             LIMIT max_rows
               FOR UPDATE SKIP LOCKED
        )
        UPDATE mcp.mcp_credentials c SET refresh_claimed_until = now() + lease
          FROM due
         WHERE c.user_id = due.user_id AND c.credential_id = due.credential_id
        RETURNING c.instance_id
    LOOP
        PERFORM mcp.log_token_operation(claimed, 'claim_refresh', 'pending', 'oauth');
        RETURN NEXT claimed;
    END LOOP;
END
$$;

-- ---- privileges -----------------------------------------------------------------------------
REVOKE ALL ON mcp.key_check FROM PUBLIC;
GRANT SELECT ON mcp.key_check TO mcp_admin;
REVOKE ALL ON FUNCTION
    mcp._key_check(integer[], text[]), mcp.encrypt(text, bytea), mcp.decrypt(bytea, bytea),
    mcp.credential_context(uuid, uuid, text),
    mcp._seal_field(uuid, uuid, text, text), mcp._open_field(uuid, uuid, text, bytea),
    mcp._reseal_field(uuid, uuid, text, bytea), mcp._envelope_key_version(bytea),
    mcp._common_key_version(bytea, bytea, bytea, bytea, bytea), mcp._active_key_version(),
    mcp._keyring_versions(), mcp._oauth_pkce(), mcp.key_status(), mcp.rotate_credentials(integer),
    mcp._credential_instance(uuid), mcp._check_secret_length(text, text, integer),
    mcp._require_type(uuid, text, text),
    mcp.set_api_key(uuid, text), mcp.set_oauth_client(uuid, text, text), mcp.begin_oauth(uuid, text),
    mcp.complete_oauth(text), mcp.store_oauth_tokens(uuid, text, text, timestamptz, text),
    mcp.get_credentials(uuid), mcp.revoke_credentials(uuid), mcp.claim_token_refresh(interval, integer)
    FROM PUBLIC;
-- mcp_admin: the low-level envelope, key status and rotation. (mcp._key_check is called by
-- the C keyring loader through fmgr, which needs no grant: no role can record fingerprints.)
GRANT EXECUTE ON FUNCTION mcp.encrypt(text, bytea), mcp.decrypt(bytea, bytea),
    mcp.credential_context(uuid, uuid, text),
    mcp.key_status(), mcp.rotate_credentials(integer) TO mcp_admin;
-- mcp_app: the tenant-checked API only.
GRANT EXECUTE ON FUNCTION
    mcp.set_api_key(uuid, text), mcp.set_oauth_client(uuid, text, text), mcp.begin_oauth(uuid, text),
    mcp.complete_oauth(text), mcp.store_oauth_tokens(uuid, text, text, timestamptz, text),
    mcp.get_credentials(uuid), mcp.revoke_credentials(uuid), mcp.claim_token_refresh(interval, integer)
    TO mcp_app;
