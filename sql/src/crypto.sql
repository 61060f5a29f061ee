-- ===========================================================================================
-- Credential encryption: the AES-256-GCM envelope (C, src/pg/crypto.cpp), the up-front key
-- check, key status and online rotation. Secrets are sealed in C with associated data that
-- binds each value to its (user_id, instance_id, field) before any row holds them.
-- ===========================================================================================

-- One key-check value per key version: the key's fingerprint (first 8 bytes of
-- HMAC-SHA256(key, fixed label); it does not reveal the key). A backend compares its keyring
-- with it once per (re)load, so a wrong or changed key is refused up front (MC102).
CREATE TABLE IF NOT EXISTS mcp.key_check (
    key_version  integer     NOT NULL,
    fingerprint  text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT key_check_pkey PRIMARY KEY (key_version),
    CONSTRAINT key_check_version_positive CHECK (key_version > 0),
    CONSTRAINT key_check_fingerprint_shape CHECK (fingerprint ~ '^[0-9a-f]{16}$')
);
COMMENT ON TABLE mcp.key_check IS 'fingerprint of each key version seen, to refuse a wrong or changed key up front';
REVOKE ALL ON mcp.key_check FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT ON mcp.key_check TO mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp.key_check', '');

-- Called by the C keyring loader (src/pg/keyring_source.cpp, through fmgr, so no role needs a
-- grant) with every version of the keyring. Returns the first version whose recorded
-- fingerprint differs (> 0); otherwise 0 when every version is recorded, -1 when it recorded
-- new versions in this transaction (the loader checks again in a later transaction, in case
-- this one rolls back), -2 when versions are missing but the transaction is read-only.
CREATE OR REPLACE FUNCTION mcp_internal.key_check(versions integer[], fingerprints text[]) RETURNS integer
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
COMMENT ON FUNCTION mcp_internal.key_check(integer[], text[]) IS
    'compares (and records) keyring fingerprints; called by the keyring loader';
REVOKE ALL ON FUNCTION mcp_internal.key_check(integer[], text[]) FROM PUBLIC, mcp_app, mcp_admin;

-- ---- the envelope (C) ------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION mcp.encrypt(plaintext text, context bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_encrypt' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp.encrypt(text, bytea) IS
    'AES-256-GCM envelope of plaintext under the active key; context is authenticated associated data';
REVOKE ALL ON FUNCTION mcp.encrypt(text, bytea) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.encrypt(text, bytea) TO mcp_admin;

CREATE OR REPLACE FUNCTION mcp.decrypt(ciphertext bytea, context bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'mcp_decrypt' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp.decrypt(bytea, bytea) IS
    'plaintext of an mcp.encrypt envelope; the context must be the one it was sealed with';
-- Superuser only: with it, a backup and an mcp_admin login would reveal every secret.
REVOKE ALL ON FUNCTION mcp.decrypt(bytea, bytea) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp.credential_context(user_id uuid, instance_id uuid, field text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_credential_context' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mcp.credential_context(uuid, uuid, text) IS
    'associated data of a credential field (api_key, client_secret, access_token, refresh_token, code_verifier)';
REVOKE ALL ON FUNCTION mcp.credential_context(uuid, uuid, text) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.credential_context(uuid, uuid, text) TO mcp_admin;

-- Sealing helpers of the credential API: the associated data is built in C from the row's
-- user_id, instance_id and field name.
CREATE OR REPLACE FUNCTION mcp_internal.seal_field(user_id uuid, instance_id uuid, field text, secret text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_seal_field' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.seal_field(uuid, uuid, text, text) IS 'envelope of a credential field';
REVOKE ALL ON FUNCTION mcp_internal.seal_field(uuid, uuid, text, text) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.open_field(user_id uuid, instance_id uuid, field text, ciphertext bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'mcp_open_field' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.open_field(uuid, uuid, text, bytea) IS 'plaintext of a credential field';
REVOKE ALL ON FUNCTION mcp_internal.open_field(uuid, uuid, text, bytea) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.reseal_field(user_id uuid, instance_id uuid, field text, ciphertext bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_reseal_field' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.reseal_field(uuid, uuid, text, bytea) IS
    'a credential field re-sealed under the active key (the plaintext never leaves C)';
REVOKE ALL ON FUNCTION mcp_internal.reseal_field(uuid, uuid, text, bytea) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.try_reseal_field(user_id uuid, instance_id uuid, field text, ciphertext bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mcp_try_reseal_field' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.try_reseal_field(uuid, uuid, text, bytea) IS
    'as reseal_field, but NULL when the stored value fails authentication or is malformed';
REVOKE ALL ON FUNCTION mcp_internal.try_reseal_field(uuid, uuid, text, bytea) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.envelope_key_version(ciphertext bytea) RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_envelope_key_version' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.envelope_key_version(bytea) IS 'key version recorded in an envelope header';
REVOKE ALL ON FUNCTION mcp_internal.envelope_key_version(bytea) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.common_key_version(bytea, bytea, bytea, bytea, bytea) RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_common_key_version' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mcp_internal.common_key_version(bytea, bytea, bytea, bytea, bytea) IS
    'the key version all non-NULL envelopes share (0 when they differ, NULL when none)';
REVOKE ALL ON FUNCTION mcp_internal.common_key_version(bytea, bytea, bytea, bytea, bytea) FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.active_key_version() RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_active_key_version' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.active_key_version() IS 'the key version new encryptions use';
REVOKE ALL ON FUNCTION mcp_internal.active_key_version() FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.keyring_versions(OUT key_version integer, OUT is_active boolean, OUT fingerprint text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'mcp_keyring_versions' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.keyring_versions() IS 'the versions of the loaded keyring, with fingerprints (never keys)';
REVOKE ALL ON FUNCTION mcp_internal.keyring_versions() FROM PUBLIC, mcp_app, mcp_admin;

CREATE OR REPLACE FUNCTION mcp_internal.oauth_pkce(OUT state text, OUT code_verifier text, OUT code_challenge text)
    AS 'MODULE_PATHNAME', 'mcp_oauth_pkce' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION mcp_internal.oauth_pkce() IS 'a random OAuth state and a PKCE S256 verifier and challenge';
REVOKE ALL ON FUNCTION mcp_internal.oauth_pkce() FROM PUBLIC, mcp_app, mcp_admin;

-- ---- key status and rotation (mcp_admin) -----------------------------------------------------

-- Every key version of the keyring or of the stored data: whether it is in the keyring and
-- active, its fingerprint (never the key), how many stored secret values use it, and the
-- instances whose values under it failed authentication when rotation tried them (damaged or
-- tampered with: key_version -1; the tenant must store them again).
CREATE OR REPLACE FUNCTION mcp.key_status()
    RETURNS TABLE (key_version integer, is_active boolean, in_keyring boolean,
                   fingerprint text, stored_values bigint, undecryptable_instances uuid[])
    LANGUAGE sql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH ring AS (
        SELECT r.key_version, r.is_active, r.fingerprint FROM mcp_internal.keyring_versions() r
    ), used AS (
        SELECT mcp_internal.envelope_key_version(f.v) AS key_version, count(*) AS n,
               array_agg(DISTINCT c.instance_id ORDER BY c.instance_id)
                   FILTER (WHERE c.key_version = -1) AS bad
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
           coalesce(used.n, 0),
           coalesce(used.bad, '{}')
      FROM ring FULL JOIN used ON used.key_version = ring.key_version
     ORDER BY 1;
$$;
COMMENT ON FUNCTION mcp.key_status() IS
    'each key version: active, in the keyring, fingerprint (never the key), how many stored values use it, and instances whose values failed authentication';
REVOKE ALL ON FUNCTION mcp.key_status() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.key_status() TO mcp_admin;

-- Re-seals up to batch_size credential rows that hold a value under a non-active key; returns
-- how many rows it re-sealed (call until 0). Rows locked by others are skipped, readers are
-- never blocked, and no plaintext leaves C. A row with a value that fails authentication
-- (damaged or tampered with) is not re-sealed: it is marked key_version = -1, left out of later
-- batches, reported in a WARNING by instance id (never its bytes) and listed by
-- mcp.key_status() until its tenant stores the credential again.
CREATE OR REPLACE FUNCTION mcp.rotate_credentials(batch_size integer DEFAULT 1000) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    active integer := mcp_internal.active_key_version();
    done bigint := 0;
    bad uuid[];
    n bigint;
    some_bad uuid[];
    tenant uuid;
    -- Lock a batch (skipping rows others hold), re-seal exactly those tuples by ctid (the
    -- locks keep their ctids stable; no join over the whole table), then write them back.
    -- %1$s / %2$s narrow it to one tenant on Citus (see below), and are true on one node.
    batch_sql constant text := $sql$
    WITH locked AS (
        SELECT b.ctid AS row_id FROM mcp.mcp_credentials b
         WHERE %1$s AND b.key_version <> $1 AND b.key_version <> -1
         LIMIT $2
           FOR UPDATE SKIP LOCKED
    ), resealed AS (
        SELECT c.ctid AS row_id,
               mcp_internal.try_reseal_field(c.user_id, c.instance_id, 'api_key', c.api_key) AS api_key,
               mcp_internal.try_reseal_field(c.user_id, c.instance_id, 'client_secret', c.client_secret) AS client_secret,
               mcp_internal.try_reseal_field(c.user_id, c.instance_id, 'access_token', c.access_token) AS access_token,
               mcp_internal.try_reseal_field(c.user_id, c.instance_id, 'refresh_token', c.refresh_token) AS refresh_token,
               mcp_internal.try_reseal_field(c.user_id, c.instance_id, 'code_verifier', c.oauth_code_verifier) AS code_verifier
          FROM mcp.mcp_credentials c
         WHERE %2$s AND c.ctid = ANY (ARRAY(SELECT l.row_id FROM locked l))
    ), written AS (
        UPDATE mcp.mcp_credentials c
           SET api_key = coalesce(r.api_key, c.api_key),
               client_secret = coalesce(r.client_secret, c.client_secret),
               access_token = coalesce(r.access_token, c.access_token),
               refresh_token = coalesce(r.refresh_token, c.refresh_token),
               oauth_code_verifier = coalesce(r.code_verifier, c.oauth_code_verifier),
               key_version = CASE WHEN (c.api_key IS NOT NULL AND r.api_key IS NULL)
                                    OR (c.client_secret IS NOT NULL AND r.client_secret IS NULL)
                                    OR (c.access_token IS NOT NULL AND r.access_token IS NULL)
                                    OR (c.refresh_token IS NOT NULL AND r.refresh_token IS NULL)
                                    OR (c.oauth_code_verifier IS NOT NULL AND r.code_verifier IS NULL)
                                  THEN -1 ELSE $1 END
          FROM resealed r
         WHERE %2$s AND c.ctid = r.row_id
        RETURNING c.instance_id, c.key_version
    )
    SELECT count(*) FILTER (WHERE w.key_version <> -1),
           array_agg(w.instance_id ORDER BY w.instance_id) FILTER (WHERE w.key_version = -1)
      FROM written w
    $sql$;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be a positive integer' USING ERRCODE = '22023';
    END IF;
    IF NOT mcp_internal.is_citus_table('mcp.mcp_credentials') THEN
        EXECUTE format(batch_sql, 'true', 'true') INTO done, bad USING active, batch_size;
    ELSE
        -- Citus locks rows of one shard at a time only: one batch per tenant (each runs on the
        -- worker that holds the tenant's shard), until batch_size rows are done.
        FOR tenant IN SELECT DISTINCT b.user_id FROM mcp.mcp_credentials b
                       WHERE b.key_version <> active AND b.key_version <> -1 LOOP
            EXIT WHEN done >= batch_size;
            EXECUTE format(batch_sql, 'b.user_id = $3', 'c.user_id = $3') INTO n, some_bad
              USING active, batch_size - done, tenant;
            done := done + n;
            bad := bad || some_bad;
        END LOOP;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE WARNING '% credential rows could not be re-sealed: a stored value fails authentication', cardinality(bad)
            USING DETAIL = format('Instances: %s.', array_to_string(bad, ', ')),
                  HINT = 'Their tenants must store these credentials again; mcp.key_status() lists them.';
    END IF;
    RETURN done;
END
$$;
COMMENT ON FUNCTION mcp.rotate_credentials(integer) IS
    're-seals up to batch_size credential rows under the active key; returns how many (call until 0); skips and reports values that fail authentication';
REVOKE ALL ON FUNCTION mcp.rotate_credentials(integer) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.rotate_credentials(integer) TO mcp_admin;
