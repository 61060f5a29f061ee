-- mcp_platform 1.0 install script, assembled by the Makefile from sql/install/NN_*.sql.
\echo Use "CREATE EXTENSION mcp_platform" to load this file. \quit
-- ===========================================================================================
-- Roles, tables, constraints, indexes, triggers (SPEC §3) — the first version's schema in the
-- tenant shape: every tenant table carries user_id, its primary key and unique constraints
-- include user_id, and foreign keys between tenant tables are composite (user_id, …).
-- ===========================================================================================

-- Cluster-wide roles, created if missing; DROP EXTENSION leaves them (they may own grants in
-- other databases).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mcp_app') THEN
        CREATE ROLE mcp_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mcp_admin') THEN
        CREATE ROLE mcp_admin NOLOGIN;
    END IF;
END
$roles$;

-- ---- tenant and trigger functions (C) ------------------------------------------------------

-- The transaction's tenant: setting mcp.user_id, NULL when unset (so RLS shows no rows).
CREATE FUNCTION mcp.current_user_id() RETURNS uuid
    AS 'MODULE_PATHNAME', 'mcp_current_user_id'
    LANGUAGE C STABLE PARALLEL SAFE;

-- BEFORE UPDATE trigger of every table with updated_at; its arguments name immutable columns.
CREATE FUNCTION mcp.set_updated_at() RETURNS trigger
    AS 'MODULE_PATHNAME', 'mcp_set_updated_at'
    LANGUAGE C;

-- ---- users (global) ------------------------------------------------------------------------
CREATE TABLE mcp.users (
    id          uuid         NOT NULL DEFAULT gen_random_uuid(),
    email       varchar(255) NOT NULL,
    name        varchar(255),
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_shape CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$')
);
-- Unique case-insensitively; also the email lookup index of the original design.
CREATE UNIQUE INDEX users_email_lower_key ON mcp.users (lower(email));

-- ---- user_plans (tenant) -------------------------------------------------------------------
CREATE TABLE mcp.user_plans (
    plan_id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id          uuid        NOT NULL,
    plan_type        varchar(20) NOT NULL DEFAULT 'free',
    max_instances    integer              DEFAULT 1,
    features         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    expires_at       timestamptz,
    -- Per-user count of instances counted against the plan (SPEC §5), kept by the
    -- enforcement trigger; never written by the application.
    active_instances integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_plans_pkey PRIMARY KEY (user_id, plan_id),
    CONSTRAINT user_plans_one_per_user UNIQUE (user_id),
    CONSTRAINT user_plans_user_fkey FOREIGN KEY (user_id) REFERENCES mcp.users (id) ON DELETE CASCADE,
    CONSTRAINT user_plans_plan_type_check CHECK (plan_type IN ('free', 'pro')),
    CONSTRAINT user_plans_max_instances_check CHECK (
        (plan_type = 'free' AND max_instances = 1)
        OR (plan_type = 'pro' AND (max_instances IS NULL OR max_instances > 1))),
    CONSTRAINT user_plans_features_object CHECK (jsonb_typeof(features) = 'object'),
    CONSTRAINT user_plans_active_instances_check CHECK (active_instances >= 0)
);
CREATE INDEX user_plans_expires_at_idx ON mcp.user_plans (expires_at) WHERE expires_at IS NOT NULL;

-- ---- user_billing_details (tenant) ---------------------------------------------------------
CREATE TABLE mcp.user_billing_details (
    billing_id               uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id                  uuid         NOT NULL,
    razorpay_customer_id     varchar(100),
    razorpay_subscription_id varchar(100),
    payment_method_type      varchar(20),
    card_brand               varchar(20),
    card_last_four           char(4),
    billing_name             varchar(255),
    billing_email            varchar(255),
    billing_phone            varchar(20),
    billing_address          jsonb,
    created_at               timestamptz  NOT NULL DEFAULT now(),
    updated_at               timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT user_billing_details_pkey PRIMARY KEY (user_id, billing_id),
    CONSTRAINT user_billing_details_one_per_user UNIQUE (user_id),
    CONSTRAINT user_billing_details_user_fkey FOREIGN KEY (user_id) REFERENCES mcp.users (id) ON DELETE CASCADE,
    CONSTRAINT user_billing_details_customer_key UNIQUE (user_id, razorpay_customer_id),
    -- Only the last four digits of a card are ever stored.
    CONSTRAINT user_billing_details_card_last_four_check CHECK (card_last_four ~ '^[0-9]{4}$'),
    CONSTRAINT user_billing_details_payment_method_check
        CHECK (payment_method_type IN ('card', 'upi', 'netbanking', 'wallet', 'emandate')),
    CONSTRAINT user_billing_details_email_shape
        CHECK (billing_email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    CONSTRAINT user_billing_details_address_object
        CHECK (billing_address IS NULL OR jsonb_typeof(billing_address) = 'object')
);
CREATE INDEX user_billing_details_subscription_idx
    ON mcp.user_billing_details (razorpay_subscription_id) WHERE razorpay_subscription_id IS NOT NULL;

-- ---- mcp_table: the service catalog (global) -----------------------------------------------
CREATE TABLE mcp.mcp_table (
    mcp_service_id          uuid         NOT NULL DEFAULT gen_random_uuid(),
    mcp_service_name        varchar(50)  NOT NULL,
    display_name            varchar(100) NOT NULL,
    description             text,
    icon_url_path           varchar(500),
    port                    integer      NOT NULL,
    type                    varchar(20)  NOT NULL,
    is_active               boolean      NOT NULL DEFAULT true,
    total_instances_created integer      NOT NULL DEFAULT 0,
    active_instances_count  integer      NOT NULL DEFAULT 0,
    created_at              timestamptz  NOT NULL DEFAULT now(),
    updated_at              timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT mcp_table_pkey PRIMARY KEY (mcp_service_id),
    CONSTRAINT mcp_table_mcp_service_name_key UNIQUE (mcp_service_name),
    CONSTRAINT mcp_table_port_key UNIQUE (port),
    CONSTRAINT mcp_table_port_check CHECK (port BETWEEN 1 AND 65535),
    CONSTRAINT mcp_table_type_check CHECK (type IN ('api_key', 'oauth')),
    CONSTRAINT mcp_table_service_name_shape CHECK (mcp_service_name ~ '^[a-z0-9][a-z0-9_-]*$'),
    CONSTRAINT mcp_table_counters_check CHECK (total_instances_created >= 0 AND active_instances_count >= 0)
);
CREATE INDEX mcp_table_is_active_idx ON mcp.mcp_table (is_active);

-- ---- mcp_service_table: a user's instances (tenant) ----------------------------------------
CREATE TABLE mcp.mcp_service_table (
    instance_id            uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id                uuid         NOT NULL,
    mcp_service_id         uuid         NOT NULL,
    oauth_status           varchar(20),
    status                 varchar(20)  NOT NULL DEFAULT 'active',
    expires_at             timestamptz,
    last_used_at           timestamptz,
    usage_count            bigint       NOT NULL DEFAULT 0,
    custom_name            varchar(255),
    renewed_count          integer      NOT NULL DEFAULT 0,
    last_renewed_at        timestamptz,
    credentials_updated_at timestamptz,
    created_at             timestamptz  NOT NULL DEFAULT now(),
    updated_at             timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT mcp_service_table_pkey PRIMARY KEY (user_id, instance_id),
    CONSTRAINT mcp_service_table_user_fkey FOREIGN KEY (user_id) REFERENCES mcp.users (id) ON DELETE CASCADE,
    CONSTRAINT mcp_service_table_service_fkey FOREIGN KEY (mcp_service_id) REFERENCES mcp.mcp_table (mcp_service_id),
    CONSTRAINT mcp_service_table_status_check CHECK (status IN ('active', 'inactive', 'expired')),
    CONSTRAINT mcp_service_table_oauth_status_check
        CHECK (oauth_status IN ('pending', 'completed', 'failed', 'expired')),
    CONSTRAINT mcp_service_table_usage_count_check CHECK (usage_count >= 0),
    CONSTRAINT mcp_service_table_renewed_count_check CHECK (renewed_count >= 0)
);
CREATE INDEX mcp_service_table_instance_id_idx ON mcp.mcp_service_table (instance_id);
CREATE INDEX mcp_service_table_service_idx ON mcp.mcp_service_table (mcp_service_id);
CREATE INDEX mcp_service_table_user_status_idx ON mcp.mcp_service_table (user_id, status);
CREATE INDEX mcp_service_table_expires_at_idx ON mcp.mcp_service_table (expires_at)
    WHERE status = 'active' AND expires_at IS NOT NULL;

-- ---- mcp_credentials: one row per instance (tenant); secret columns hold ciphertext --------
CREATE TABLE mcp.mcp_credentials (
    credential_id           uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id                 uuid         NOT NULL,
    instance_id             uuid         NOT NULL,
    -- API key authentication (ciphertext envelope, SPEC §4)
    api_key                 bytea,
    -- OAuth authentication
    client_id               varchar(500),
    client_secret           bytea,
    access_token            bytea,
    refresh_token           bytea,
    token_expires_at        timestamptz,
    token_scope             text,
    -- OAuth flow tracking
    oauth_status            varchar(20),
    oauth_completed_at      timestamptz,
    oauth_authorization_url text,
    oauth_state             varchar(100),   -- hex SHA-256 of the state; never the state itself
    oauth_state_expires_at  timestamptz,
    oauth_code_verifier     bytea,          -- PKCE verifier (ciphertext)
    -- refresh lease (mcp.claim_token_refresh)
    refresh_claimed_until   timestamptz,
    created_at              timestamptz  NOT NULL DEFAULT now(),
    updated_at              timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT mcp_credentials_pkey PRIMARY KEY (user_id, credential_id),
    CONSTRAINT mcp_credentials_instance_key UNIQUE (user_id, instance_id),
    CONSTRAINT mcp_credentials_instance_fkey FOREIGN KEY (user_id, instance_id)
        REFERENCES mcp.mcp_service_table (user_id, instance_id) ON DELETE CASCADE,
    -- Either an API key or an OAuth client, never both.
    CONSTRAINT mcp_credentials_type_check CHECK (
        (api_key IS NOT NULL AND client_id IS NULL AND client_secret IS NULL
             AND access_token IS NULL AND refresh_token IS NULL AND oauth_code_verifier IS NULL)
        OR (api_key IS NULL AND client_id IS NOT NULL)),
    -- Tokens only with an OAuth client; a refresh token or expiry only with an access token.
    CONSTRAINT mcp_credentials_token_check CHECK (
        (access_token IS NULL OR client_id IS NOT NULL)
        AND (refresh_token IS NULL OR access_token IS NOT NULL)
        AND (token_expires_at IS NULL OR access_token IS NOT NULL)),
    CONSTRAINT mcp_credentials_oauth_status_check CHECK (
        oauth_status IN ('pending', 'completed', 'failed', 'expired')
        AND (oauth_status IS NULL OR client_id IS NOT NULL)
        AND (oauth_status <> 'completed' OR (access_token IS NOT NULL AND oauth_completed_at IS NOT NULL))),
    CONSTRAINT mcp_credentials_oauth_state_check CHECK (
        oauth_state IS NULL OR (oauth_state ~ '^[0-9a-f]{64}$' AND oauth_state_expires_at IS NOT NULL))
);
CREATE INDEX mcp_credentials_instance_id_idx ON mcp.mcp_credentials (instance_id);
CREATE INDEX mcp_credentials_oauth_status_idx ON mcp.mcp_credentials (oauth_status);
CREATE INDEX mcp_credentials_token_expires_idx ON mcp.mcp_credentials (user_id, token_expires_at)
    WHERE token_expires_at IS NOT NULL;
CREATE UNIQUE INDEX mcp_credentials_oauth_state_idx ON mcp.mcp_credentials (user_id, oauth_state)
    WHERE oauth_state IS NOT NULL;

-- ---- token_audit_log (tenant, partitioned by time; rows outlive their instance) ------------
CREATE TABLE mcp.token_audit_log (
    audit_id      bigint      NOT NULL GENERATED BY DEFAULT AS IDENTITY,
    instance_id   uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    operation     varchar(50) NOT NULL,
    status        varchar(20) NOT NULL,
    method        varchar(50),
    error_type    varchar(100),
    error_message text,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT token_audit_log_pkey PRIMARY KEY (user_id, audit_id, created_at),
    CONSTRAINT token_audit_log_operation_check CHECK (operation IN (
        'refresh', 'revoke', 'validate',
        'set_api_key', 'set_oauth_client', 'begin_oauth', 'complete_oauth', 'store_tokens',
        'claim_refresh', 'rotate')),
    CONSTRAINT token_audit_log_status_check CHECK (status IN ('success', 'failure', 'pending')),
    CONSTRAINT token_audit_log_error_message_length CHECK (length(error_message) <= 1000),
    CONSTRAINT token_audit_log_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
) PARTITION BY RANGE (created_at);
-- Until the audit-retention part creates daily partitions, every row lands here.
CREATE TABLE mcp.token_audit_log_default PARTITION OF mcp.token_audit_log DEFAULT;
CREATE INDEX token_audit_log_instance_created_idx ON mcp.token_audit_log (instance_id, created_at);
CREATE INDEX token_audit_log_user_created_idx ON mcp.token_audit_log (user_id, created_at);
CREATE INDEX token_audit_log_operation_idx ON mcp.token_audit_log (operation);
CREATE INDEX token_audit_log_status_idx ON mcp.token_audit_log (status);
CREATE INDEX token_audit_log_created_at_idx ON mcp.token_audit_log (created_at);

-- ---- updated_at and tenant immutability ----------------------------------------------------
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON mcp.users
    FOR EACH ROW EXECUTE FUNCTION mcp.set_updated_at();
CREATE TRIGGER user_plans_set_updated_at BEFORE UPDATE ON mcp.user_plans
    FOR EACH ROW EXECUTE FUNCTION mcp.set_updated_at('user_id');
CREATE TRIGGER user_billing_details_set_updated_at BEFORE UPDATE ON mcp.user_billing_details
    FOR EACH ROW EXECUTE FUNCTION mcp.set_updated_at('user_id');
CREATE TRIGGER mcp_table_set_updated_at BEFORE UPDATE ON mcp.mcp_table
    FOR EACH ROW EXECUTE FUNCTION mcp.set_updated_at();
CREATE TRIGGER mcp_service_table_set_updated_at BEFORE UPDATE ON mcp.mcp_service_table
    FOR EACH ROW EXECUTE FUNCTION mcp.set_updated_at('user_id', 'instance_id', 'mcp_service_id');
CREATE TRIGGER mcp_credentials_set_updated_at BEFORE UPDATE ON mcp.mcp_credentials
    FOR EACH ROW EXECUTE FUNCTION mcp.set_updated_at('user_id', 'instance_id');

-- ---- a free plan for every new user --------------------------------------------------------
CREATE FUNCTION mcp.assign_default_plan() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO mcp.user_plans (user_id, plan_type, max_instances)
    VALUES (NEW.id, 'free', 1)
    ON CONFLICT (user_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER auto_assign_free_plan AFTER INSERT ON mcp.users
    FOR EACH ROW EXECUTE FUNCTION mcp.assign_default_plan();

-- ---- pg_dump keeps the data of every table and sequence ------------------------------------
SELECT pg_catalog.pg_extension_config_dump('mcp.users', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.user_plans', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.user_billing_details', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.mcp_table', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.mcp_service_table', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.mcp_credentials', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_log_default', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('mcp.token_audit_log', 'audit_id'), '');
-- ===========================================================================================
-- Tenant isolation (SPEC §6): row-level security, enabled and forced, on every tenant table.
-- A row is visible and writable only when its user_id is the transaction's mcp.user_id;
-- with no tenant set, no rows. mcp_admin sees every tenant (catalog, plans, retention).
-- ===========================================================================================

-- Row-level security of one tenant table: enabled and forced, the tenant policy and the admin
-- policy. Every install part that creates a tenant table calls it.
CREATE FUNCTION mcp._make_tenant_table(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                   'USING (user_id = (SELECT mcp.current_user_id())) '
                   'WITH CHECK (user_id = (SELECT mcp.current_user_id()))', tbl);
    EXECUTE format('CREATE POLICY admin_all ON %s AS PERMISSIVE FOR ALL TO mcp_admin '
                   'USING (true) WITH CHECK (true)', tbl);
END
$$;
SELECT mcp._make_tenant_table(t)
  FROM unnest(ARRAY['mcp.user_plans', 'mcp.user_billing_details', 'mcp.mcp_service_table',
                    'mcp.mcp_credentials', 'mcp.token_audit_log']::regclass[]) AS t;

-- The transaction's tenant, or 42501 when none is set: every function that acts for a tenant
-- starts with it.
CREATE FUNCTION mcp._require_tenant() RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp.current_user_id();
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant set' USING ERRCODE = '42501',
            HINT = 'SELECT set_config(''mcp.user_id'', <user id>, true) first.';
    END IF;
    RETURN tenant;
END
$$;

-- ---- privileges --------------------------------------------------------------------------
-- Nothing for PUBLIC; mcp_app gets what a platform backend needs, mcp_admin runs the platform.
REVOKE ALL ON ALL TABLES IN SCHEMA mcp FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mcp FROM PUBLIC;
GRANT USAGE ON SCHEMA mcp TO mcp_app, mcp_admin;

-- Functions RLS policies and triggers call run with the caller's privileges.
GRANT EXECUTE ON FUNCTION mcp.current_user_id(), mcp._require_tenant() TO PUBLIC;

-- mcp_app: sign-up and login (global users table), the catalog read-only, its plan read-only,
-- its billing details and instances read-write (RLS scopes them; plan limits are enforced by
-- trigger), credentials without their ciphertext columns, the audit log read-only.
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.users TO mcp_app;
GRANT SELECT ON mcp.mcp_table TO mcp_app;
GRANT SELECT ON mcp.user_plans TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.user_billing_details TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.mcp_service_table TO mcp_app;
GRANT SELECT (credential_id, user_id, instance_id, client_id, token_expires_at, token_scope,
              oauth_status, oauth_completed_at, oauth_authorization_url, created_at, updated_at)
    ON mcp.mcp_credentials TO mcp_app;
GRANT DELETE ON mcp.mcp_credentials TO mcp_app;
GRANT SELECT ON mcp.token_audit_log TO mcp_app;

-- mcp_admin: everything on the platform's tables (its policy sees all tenants) except the
-- ciphertext columns, which only the extension's own functions read.
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.users, mcp.mcp_table, mcp.user_plans,
    mcp.user_billing_details, mcp.mcp_service_table, mcp.token_audit_log TO mcp_admin;
GRANT SELECT (credential_id, user_id, instance_id, client_id, token_expires_at, token_scope,
              oauth_status, oauth_completed_at, oauth_authorization_url, refresh_claimed_until,
              created_at, updated_at)
    ON mcp.mcp_credentials TO mcp_admin;
GRANT DELETE ON mcp.mcp_credentials TO mcp_admin;
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
-- ===========================================================================================
-- Plan-limit enforcement (SPEC §5): the C trigger mcp.enforce_plan_limit() on
-- mcp_service_table keeps user_plans.active_instances (the per-user count of rows with
-- status = 'active') exact, and refuses an activation beyond the effective plan limit
-- with MC001. See src/pg/plan_limits.cpp for the concurrency
-- argument and README "Plans and limits" for the rules.
-- ===========================================================================================

-- ---- per-service usage statistics without a hot row --------------------------------------
-- Nothing per service is written when an instance is created: mcp.service_stats counts the
-- rows (exact by construction; instance creations for one service never meet on a row).
-- Only deleted instances need remembering, for total_instances_created: a statement-level
-- trigger adds each statement's deletions per service to one of 64 shard rows (chosen by
-- backend), so concurrent deletions rarely meet either. Not a tenant table (no user data).
CREATE TABLE mcp.service_counters (
    mcp_service_id uuid     NOT NULL,
    shard          smallint NOT NULL,
    deleted        bigint   NOT NULL DEFAULT 0,
    CONSTRAINT service_counters_pkey PRIMARY KEY (mcp_service_id, shard),
    CONSTRAINT service_counters_service_fkey FOREIGN KEY (mcp_service_id)
        REFERENCES mcp.mcp_table (mcp_service_id) ON DELETE CASCADE
);
SELECT pg_catalog.pg_extension_config_dump('mcp.service_counters', '');

CREATE FUNCTION mcp.count_deleted_instances() RETURNS trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO mcp.service_counters AS c (mcp_service_id, shard, deleted)
    SELECT d.mcp_service_id, (pg_catalog.pg_backend_pid() % 64)::smallint, count(*)
      FROM deleted_rows d
      JOIN mcp.mcp_table t ON t.mcp_service_id = d.mcp_service_id
     GROUP BY d.mcp_service_id
    ON CONFLICT (mcp_service_id, shard) DO UPDATE SET deleted = c.deleted + excluded.deleted;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION mcp.count_deleted_instances() FROM PUBLIC;
CREATE TRIGGER mcp_service_table_count_deleted
    AFTER DELETE ON mcp.mcp_service_table
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mcp.count_deleted_instances();

-- ---- the enforcement trigger ---------------------------------------------------------------
CREATE FUNCTION mcp.enforce_plan_limit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'mcp_enforce_plan_limit'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION mcp.enforce_plan_limit() FROM PUBLIC;

-- AFTER triggers fire after the row's foreign-key checks (RI_ConstraintTrigger_* sort first),
-- see the final row (after every BEFORE trigger), and may update the user's other rows
-- (the expiry sweep) without upsetting a multi-row UPDATE that is still running.
CREATE TRIGGER mcp_service_table_plan_limit_insert
    AFTER INSERT ON mcp.mcp_service_table
    FOR EACH ROW EXECUTE FUNCTION mcp.enforce_plan_limit();
-- Only status and expires_at matter: record_usage and other column updates never fire it.
CREATE TRIGGER mcp_service_table_plan_limit_update
    AFTER UPDATE OF status, expires_at ON mcp.mcp_service_table
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION mcp.enforce_plan_limit();
CREATE TRIGGER mcp_service_table_plan_limit_delete
    AFTER DELETE ON mcp.mcp_service_table
    FOR EACH ROW EXECUTE FUNCTION mcp.enforce_plan_limit();

-- ---- service statistics --------------------------------------------------------------------
-- Exact per-service counts: total_instances_created (every instance ever inserted: the rows
-- plus the deleted ones) and active_instances_count (active instances as SPEC §5 defines
-- them: status 'active' and not past expires_at). Counted from
-- the rows with the rights of the view's owner (aggregates across tenants; no tenant row is
-- shown): the cost is one index scan per service, proportional to its instances.
CREATE FUNCTION mcp.service_stats_rows()
    RETURNS TABLE (mcp_service_id uuid, mcp_service_name varchar, is_active boolean,
                   total_instances_created bigint, active_instances_count bigint)
    LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.mcp_service_id, t.mcp_service_name, t.is_active,
           (SELECT count(*) FROM mcp.mcp_service_table s WHERE s.mcp_service_id = t.mcp_service_id)
             + (SELECT coalesce(sum(c.deleted), 0) FROM mcp.service_counters c
                 WHERE c.mcp_service_id = t.mcp_service_id)::bigint,
           (SELECT count(*) FROM mcp.mcp_service_table s
             WHERE s.mcp_service_id = t.mcp_service_id AND s.status = 'active'
               AND (s.expires_at IS NULL OR s.expires_at > pg_catalog.now()))
      FROM mcp.mcp_table t;
$$;
REVOKE ALL ON FUNCTION mcp.service_stats_rows() FROM PUBLIC;
CREATE VIEW mcp.service_stats WITH (security_invoker = true) AS
SELECT * FROM mcp.service_stats_rows();

-- Copies the exact statistics into the legacy mcp_table columns (for queries of the original
-- design that read them); returns how many services changed. Cheap: one row per service.
CREATE FUNCTION mcp.refresh_service_stats() RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH changed AS (
        UPDATE mcp.mcp_table AS t
           SET total_instances_created = s.total_instances_created::integer,
               active_instances_count = s.active_instances_count::integer
          FROM mcp.service_stats AS s
         WHERE s.mcp_service_id = t.mcp_service_id
           AND (t.total_instances_created, t.active_instances_count)
               IS DISTINCT FROM (s.total_instances_created::integer, s.active_instances_count::integer)
        RETURNING 1)
    SELECT count(*) FROM changed;
$$;

-- ---- counter verification --------------------------------------------------------------------
-- Rows whose stored count differs from the truth; empty when the counters are exact.
--  * user_active:    user_plans.active_instances vs the user's rows with status 'active'
--                    (stored is NULL for a user with active rows but no plan row)
-- Per-service counts are computed from the rows (mcp.service_stats), so they cannot drift;
-- the legacy mcp_table columns are a snapshot refreshed by mcp.refresh_service_stats().
CREATE FUNCTION mcp.verify_counters()
    RETURNS TABLE (counter text, id uuid, stored bigint, actual bigint)
    LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH truth AS (
        SELECT s.user_id, count(*) AS n
          FROM mcp.mcp_service_table s WHERE s.status = 'active' GROUP BY s.user_id),
    plans AS (
        SELECT coalesce(p.user_id, t.user_id) AS user_id, p.active_instances::bigint AS stored,
               coalesce(t.n, 0) AS actual
          FROM mcp.user_plans p FULL JOIN truth t ON t.user_id = p.user_id)
    SELECT 'user_active', user_id, stored, actual FROM plans
     WHERE stored IS DISTINCT FROM actual
    ORDER BY 1, 2;
$$;
REVOKE ALL ON FUNCTION mcp.verify_counters() FROM PUBLIC;

-- Recomputes every user's counter from the rows (after a TRUNCATE, a data load with triggers
-- disabled, or anything else verify_counters reports); returns how many plans changed.
-- Instance writes wait while it runs (SHARE ROW EXCLUSIVE on mcp_service_table), so the
-- counts it writes are the truth at one moment.
CREATE FUNCTION mcp.repair_counters() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed bigint;
BEGIN
    LOCK TABLE mcp.mcp_service_table IN SHARE ROW EXCLUSIVE MODE;
    WITH truth AS (
        SELECT p.user_id,
               (SELECT count(*) FROM mcp.mcp_service_table s
                 WHERE s.user_id = p.user_id AND s.status = 'active') AS n
          FROM mcp.user_plans p),
    fixed AS (
        UPDATE mcp.user_plans AS p SET active_instances = t.n
          FROM truth t
         WHERE t.user_id = p.user_id AND p.active_instances <> t.n
        RETURNING 1)
    SELECT count(*) INTO changed FROM fixed;
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION mcp.repair_counters() FROM PUBLIC;

-- ---- the instance API ------------------------------------------------------------------------
-- The tenant is mcp.current_user_id(); each function acts on the tenant's own rows only.
-- They run with the caller's rights (RLS applies), so the trigger enforces the plan exactly as
-- for a plain INSERT or UPDATE.

-- Creates an active instance of a service; MC002 when the service is unknown or inactive,
-- MC001 beyond the plan limit.
CREATE FUNCTION mcp.create_instance(service_name text, custom_name text DEFAULT NULL,
                                    expires_at timestamptz DEFAULT NULL) RETURNS uuid
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp._require_tenant();
    service_id uuid;
    service_active boolean;
    new_id uuid;
BEGIN
    IF create_instance.expires_at IS NOT NULL AND create_instance.expires_at <= now() THEN
        RAISE EXCEPTION 'expires_at must be in the future' USING ERRCODE = '22023';
    END IF;
    SELECT t.mcp_service_id, t.is_active INTO service_id, service_active
      FROM mcp.mcp_table t WHERE t.mcp_service_name = create_instance.service_name;
    IF service_id IS NULL THEN
        RAISE EXCEPTION 'service "%" does not exist', create_instance.service_name
            USING ERRCODE = 'MC002';
    ELSIF NOT service_active THEN
        RAISE EXCEPTION 'service "%" is inactive', create_instance.service_name
            USING ERRCODE = 'MC002',
                  DETAIL = 'An inactive service accepts no new or reactivated instances.';
    END IF;
    INSERT INTO mcp.mcp_service_table AS s (user_id, mcp_service_id, custom_name, expires_at, status)
    VALUES (tenant, service_id, create_instance.custom_name, create_instance.expires_at, 'active')
    RETURNING s.instance_id INTO new_id;
    RETURN new_id;
END
$$;

-- Sets a new expiry, bumps renewed_count and last_renewed_at. An 'expired' (or active) instance
-- becomes 'active' — within the plan limit (MC001 otherwise); an 'inactive' one, which its user
-- switched off, stays inactive.
CREATE FUNCTION mcp.renew_instance(instance_id uuid, expires_at timestamptz) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp._require_tenant();
BEGIN
    IF renew_instance.expires_at IS NULL OR renew_instance.expires_at <= now() THEN
        RAISE EXCEPTION 'expires_at must be in the future' USING ERRCODE = '22023';
    END IF;
    UPDATE mcp.mcp_service_table AS s
       SET expires_at = renew_instance.expires_at,
           status = CASE WHEN s.status = 'inactive' THEN s.status ELSE 'active' END,
           renewed_count = s.renewed_count + 1,
           last_renewed_at = now()
     WHERE s.user_id = tenant AND s.instance_id = renew_instance.instance_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'instance % does not belong to the current tenant', renew_instance.instance_id
            USING ERRCODE = '42501';
    END IF;
END
$$;

-- The hot path: usage_count + 1 and last_used_at = now() (C, one cached plan).
CREATE FUNCTION mcp.record_usage(instance_id uuid) RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_record_usage'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Marks every visible instance past its expires_at as 'expired'; returns how many. Called by
-- mcp.run_maintenance(); run by mcp_app it covers the current tenant only (RLS). Rows another
-- transaction has locked are left for the next run instead of waited for (that transaction
-- may hold the user's plan row, which expiring needs: waiting could deadlock).
CREATE FUNCTION mcp.expire_instances() RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH due AS (
        SELECT s.user_id, s.instance_id FROM mcp.mcp_service_table AS s
         WHERE s.status = 'active' AND s.expires_at <= now()
           FOR NO KEY UPDATE SKIP LOCKED),
    expired AS (
        UPDATE mcp.mcp_service_table AS s SET status = 'expired'
          FROM due
         WHERE s.user_id = due.user_id AND s.instance_id = due.instance_id
        RETURNING 1)
    SELECT count(*) FROM expired;
$$;

-- Admin: sets a user's plan. free: max_instances 1, no expiry; pro: unlimited
-- (max_instances NULL; set a cap with UPDATE mcp.user_plans), optional expires_at after which
-- it counts as free. A downgrade deletes nothing: instances above the new limit stay active,
-- and no activation succeeds until the user is back under the limit. A missing plan row is
-- created with the true active count.
CREATE FUNCTION mcp.set_plan(user_id uuid, plan_type text, expires_at timestamptz DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF set_plan.plan_type IS NULL OR set_plan.plan_type NOT IN ('free', 'pro') THEN
        RAISE EXCEPTION 'plan_type must be ''free'' or ''pro''' USING ERRCODE = '22023';
    END IF;
    IF set_plan.plan_type = 'free' AND set_plan.expires_at IS NOT NULL THEN
        RAISE EXCEPTION 'a free plan does not expire' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mcp.users u WHERE u.id = set_plan.user_id) THEN
        RAISE EXCEPTION 'user % does not exist', set_plan.user_id USING ERRCODE = '22023';
    END IF;
    INSERT INTO mcp.user_plans AS p (user_id, plan_type, max_instances, expires_at, active_instances)
    VALUES (set_plan.user_id, set_plan.plan_type,
            CASE WHEN set_plan.plan_type = 'free' THEN 1 END, set_plan.expires_at,
            (SELECT count(*) FROM mcp.mcp_service_table s
              WHERE s.user_id = set_plan.user_id AND s.status = 'active'))
    ON CONFLICT ON CONSTRAINT user_plans_one_per_user DO UPDATE
       SET plan_type = excluded.plan_type,
           max_instances = excluded.max_instances,
           expires_at = excluded.expires_at;
END
$$;

-- ---- privileges ------------------------------------------------------------------------------
REVOKE ALL ON FUNCTION mcp.create_instance(text, text, timestamptz), mcp.renew_instance(uuid, timestamptz),
    mcp.record_usage(uuid), mcp.expire_instances(), mcp.set_plan(uuid, text, timestamptz),
    mcp.refresh_service_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mcp.create_instance(text, text, timestamptz), mcp.renew_instance(uuid, timestamptz),
    mcp.record_usage(uuid), mcp.expire_instances() TO mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.set_plan(uuid, text, timestamptz), mcp.verify_counters(),
    mcp.repair_counters(), mcp.refresh_service_stats() TO mcp_admin;
GRANT SELECT ON mcp.service_counters, mcp.service_stats TO mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.service_stats_rows() TO mcp_app, mcp_admin;
-- The counter column is written only by the trigger: mcp_admin may change a plan's terms, not
-- its count.
REVOKE INSERT, UPDATE ON mcp.user_plans FROM mcp_admin;
GRANT INSERT (plan_id, user_id, plan_type, max_instances, features, expires_at),
      UPDATE (plan_type, max_instances, features, expires_at)
    ON mcp.user_plans TO mcp_admin;
-- Room on each page for the counter's new row versions, so most of its updates are HOT (no
-- index entries) and prune old versions in place.
ALTER TABLE mcp.user_plans SET (fillfactor = 70);
-- ===========================================================================================
-- Token audit log at scale (SPEC §7): writes, daily partitions, retention, the 30-day summary
-- and maintenance. README "Audit log and retention" explains the design; in short:
--
--  * token_audit_log (10_schema.sql) is partitioned by created_at into UTC days named
--    token_audit_log_pYYYYMMDD. Its DEFAULT partition is the safety net: a row whose day has
--    no partition yet lands there, so an insert never fails for want of a partition.
--    mcp.ensure_audit_partitions() creates day partitions for any range (moving rows out of
--    the DEFAULT partition); maintenance keeps mcp_platform.audit_partitions_ahead days made.
--  * mcp.cleanup_old_token_audit_logs() (C, src/pg/audit_retention.cpp) drops whole expired
--    partitions and trims the boundary day with DELETE.
--  * token_audit_summary reads a window table (token_audit_window: the exact aggregate of the
--    rows in [window_lo, window_hi), rebuilt by every maintenance run) plus the raw rows of
--    the short stretches at each end of the window (about one maintenance interval at the
--    start, the time since the last run at the end); when the window table is not
--    valid it sums the daily rollup (token_audit_daily) instead and reads raw the partial
--    boundary day, days changed after they were rolled up ("dirty" days) and the tail since
--    the rollup watermark. Either way it equals the plain 30-day aggregate exactly.
-- ===========================================================================================

-- pg_dump writes every day partition (they are not extension members) with the log's CHECK
-- constraints as pg_get_constraintdef prints them, and restoring attaches them to the log that
-- CREATE EXTENSION made from this script: the two must parse to the same expression. An IN
-- list over varchar does not survive that round trip (it comes back as ARRAY[…::varchar]::text[]
-- and ATTACH refuses it as a "different definition"); a text[] constant does.
ALTER TABLE mcp.token_audit_log
    DROP CONSTRAINT token_audit_log_operation_check,
    ADD CONSTRAINT token_audit_log_operation_check CHECK (operation::text = ANY (
        '{refresh,revoke,validate,set_api_key,set_oauth_client,begin_oauth,complete_oauth,store_tokens,claim_refresh,rotate}'::text[])),
    DROP CONSTRAINT token_audit_log_status_check,
    ADD CONSTRAINT token_audit_log_status_check CHECK (status::text = ANY ('{success,failure,pending}'::text[]));

-- Advisory lock keys (two-int form: class 1835233392 = 'mcpp', then one number per job).
--   1 run_maintenance   2 cleanup   3 partition creation   4 rollup refresh

-- ---- rollup state --------------------------------------------------------------------------

-- One row per (tenant, instance, UTC day, operation, method) for the days before the
-- watermark, maintained by mcp.refresh_audit_rollup(). Only the last 31 days are kept: the
-- summary window is 30 days. Tenant table: RLS like every other one.
CREATE TABLE mcp.token_audit_daily (
    user_id     uuid        NOT NULL,
    day         date        NOT NULL,
    instance_id uuid        NOT NULL,
    operation   varchar(50) NOT NULL,
    method      varchar(50),
    total       bigint      NOT NULL,
    success     bigint      NOT NULL,
    failure     bigint      NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    CONSTRAINT token_audit_daily_key UNIQUE NULLS NOT DISTINCT (user_id, day, instance_id, operation, method),
    CONSTRAINT token_audit_daily_counts_check CHECK (total > 0 AND success >= 0 AND failure >= 0
                                                     AND success + failure <= total)
);
CREATE INDEX token_audit_daily_day_idx ON mcp.token_audit_daily (day);

-- The rollup covers every UTC day before `watermark` (no row: nothing rolled up yet).
-- token_audit_window holds the exact aggregate of the log's rows with created_at in
-- [window_lo, window_hi) (NULL: no valid window table), built when the dirty marks of its days
-- were window_marks ({"day": gen}); see mcp.audit_window_valid().
CREATE TABLE mcp.token_audit_rollup_state (
    singleton    boolean     NOT NULL DEFAULT true,
    watermark    date        NOT NULL,
    window_lo    timestamptz,
    window_hi    timestamptz,
    window_marks jsonb,
    CONSTRAINT token_audit_rollup_state_pkey PRIMARY KEY (singleton),
    CONSTRAINT token_audit_rollup_state_singleton CHECK (singleton)
);

-- The 30-day window's aggregate per (tenant, instance, operation, method) over
-- [window_lo, window_hi): one row per group (with its success rate computed once), so the
-- summary reads one row per group plus the raw rows at each end. Rebuilt by every maintenance
-- run; valid while the window's start has not passed window_lo (one maintenance interval and
-- five minutes after the rebuild) and no row before window_hi changed since
-- (mcp.audit_window_valid()). Otherwise the summary sums the daily rollup instead (same
-- result, slower).
CREATE TABLE mcp.token_audit_window (
    user_id     uuid        NOT NULL,
    instance_id uuid        NOT NULL,
    operation   varchar(50) NOT NULL,
    method      varchar(50),
    total       bigint      NOT NULL,
    success     bigint      NOT NULL,
    failure     bigint      NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    success_rate numeric    NOT NULL,
    CONSTRAINT token_audit_window_key UNIQUE NULLS NOT DISTINCT (user_id, instance_id, operation, method)
);

-- Days whose raw rows changed after they may have been rolled up (a late insert, a delete,
-- an update; the trigger below marks them). The summary reads such days from the raw log
-- until maintenance recomputes them. `gen` (a new number from the sequence at every mark)
-- lets maintenance clear a mark only if nobody marked the day again while it was recomputing,
-- and lets the window table tell the marks it has seen from newer ones.
CREATE SEQUENCE mcp.token_audit_mark_gen;
CREATE TABLE mcp.token_audit_dirty_days (
    day       date        NOT NULL,
    gen       bigint      NOT NULL DEFAULT nextval('mcp.token_audit_mark_gen'),
    marked_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT token_audit_dirty_days_pkey PRIMARY KEY (day)
);

SELECT mcp._make_tenant_table(t)
  FROM unnest(ARRAY['mcp.token_audit_daily', 'mcp.token_audit_window']::regclass[]) AS t;

-- Rows per UTC day of the log, recorded when maintenance rolls the day up and recounted when a
-- row of the day changes later (a dirty mark), so that retention returns an exact count
-- without counting the partitions it drops. Retention trusts a day's count only while the day
-- has no dirty mark (src/pg/audit_retention.cpp). Totals across tenants: not a tenant table;
-- only the extension's SECURITY DEFINER functions read or write it.
CREATE TABLE mcp.token_audit_day_rows (
    day       date   NOT NULL,
    row_count bigint NOT NULL,
    CONSTRAINT token_audit_day_rows_pkey PRIMARY KEY (day),
    CONSTRAINT token_audit_day_rows_count_check CHECK (row_count >= 0)
);

-- Marks the UTC day of the changed row dirty (C, src/pg/audit_rollup.cpp), for the rows that
-- maintenance may already have summed up without them (WHEN clauses below):
--  * created_at before the writing transaction's start (now()): the window table
--    (mcp.refresh_audit_window) sums rows before window_hi, which is never later than the
--    start of any transaction running while it is built, nor than the build itself; a row of
--    the window that such a transaction writes is therefore older than that transaction's
--    start. A normal audit insert has created_at = now() and never reaches the function (nor
--    does a transaction that straddles an hour or a day boundary with it);
--  * created_at before today (UTC, by the clock): the daily rollup sums days that are over; a
--    transaction that began before midnight and writes a row of that day after maintenance
--    summed the day up must mark it.
CREATE FUNCTION mcp.token_audit_mark_dirty() RETURNS trigger
    AS 'MODULE_PATHNAME', 'mcp_token_audit_mark_dirty'
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER token_audit_log_dirty_insert AFTER INSERT ON mcp.token_audit_log
    FOR EACH ROW WHEN (NEW.created_at < pg_catalog.now()
                       OR NEW.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC'))
    EXECUTE FUNCTION mcp.token_audit_mark_dirty();
CREATE TRIGGER token_audit_log_dirty_delete AFTER DELETE ON mcp.token_audit_log
    FOR EACH ROW WHEN (OLD.created_at < pg_catalog.now()
                       OR OLD.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC'))
    EXECUTE FUNCTION mcp.token_audit_mark_dirty();
CREATE TRIGGER token_audit_log_dirty_update AFTER UPDATE ON mcp.token_audit_log
    FOR EACH ROW WHEN (OLD.created_at < pg_catalog.now() OR NEW.created_at < pg_catalog.now()
                       OR OLD.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC')
                       OR NEW.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC'))
    EXECUTE FUNCTION mcp.token_audit_mark_dirty();

-- TRUNCATE of the log empties the rollup too.
CREATE FUNCTION mcp.token_audit_truncated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM mcp.token_audit_daily;
    DELETE FROM mcp.token_audit_window;
    DELETE FROM mcp.token_audit_dirty_days;
    DELETE FROM mcp.token_audit_day_rows;
    DELETE FROM mcp.token_audit_rollup_state;
    RETURN NULL;
END
$$;
CREATE TRIGGER token_audit_log_truncate AFTER TRUNCATE ON mcp.token_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION mcp.token_audit_truncated();

-- Audit rows are append-only for the roles: corrections would silently rewrite history.
REVOKE UPDATE ON mcp.token_audit_log FROM mcp_admin;

-- ---- writing -------------------------------------------------------------------------------

-- Writes one audit row; the user is derived from the instance (which must belong to the
-- current tenant), never taken from the caller. The row lands in its day's partition, or in
-- the DEFAULT partition when that day has none yet: it never fails for want of a partition.
CREATE FUNCTION mcp.log_token_operation(
    instance_id uuid, operation text, status text, method text DEFAULT NULL,
    error_type text DEFAULT NULL, error_message text DEFAULT NULL,
    metadata jsonb DEFAULT '{}'::jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp._require_tenant();
    owner uuid;
    meta jsonb := coalesce(metadata, '{}'::jsonb);
    new_id bigint;
BEGIN
    IF log_token_operation.instance_id IS NULL THEN
        RAISE EXCEPTION 'instance_id must not be null' USING ERRCODE = '22023';
    END IF;
    IF operation IS NULL OR operation NOT IN ('refresh', 'revoke', 'validate', 'set_api_key',
            'set_oauth_client', 'begin_oauth', 'complete_oauth', 'store_tokens', 'claim_refresh',
            'rotate') THEN
        RAISE EXCEPTION 'invalid audit operation' USING ERRCODE = '22023',
            DETAIL = 'operation must be one of refresh, revoke, validate, set_api_key, '
                     'set_oauth_client, begin_oauth, complete_oauth, store_tokens, claim_refresh, rotate.';
    END IF;
    IF status IS NULL OR status NOT IN ('success', 'failure', 'pending') THEN
        RAISE EXCEPTION 'invalid audit status' USING ERRCODE = '22023',
            DETAIL = 'status must be one of success, failure, pending.';
    END IF;
    IF length(method) > 50 THEN
        RAISE EXCEPTION 'audit method longer than 50 characters' USING ERRCODE = '22023';
    END IF;
    IF length(error_type) > 100 THEN
        RAISE EXCEPTION 'audit error type longer than 100 characters' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(meta) <> 'object' THEN
        RAISE EXCEPTION 'audit metadata must be a json object' USING ERRCODE = '22023';
    END IF;
    IF octet_length(meta::text) > 8192 THEN
        RAISE EXCEPTION 'audit metadata larger than 8192 bytes' USING ERRCODE = '22023';
    END IF;
    SELECT s.user_id INTO owner FROM mcp.mcp_service_table s
     WHERE s.user_id = tenant AND s.instance_id = log_token_operation.instance_id;
    IF owner IS NULL THEN
        RAISE EXCEPTION 'instance % does not belong to the current tenant', log_token_operation.instance_id
            USING ERRCODE = '42501';
    END IF;
    -- A provider's error text can be long: keep the first 1000 characters rather than lose
    -- the event.
    INSERT INTO mcp.token_audit_log AS l (instance_id, user_id, operation, status, method,
                                          error_type, error_message, metadata)
    VALUES (log_token_operation.instance_id, owner, operation, status, method, error_type,
            left(error_message, 1000), meta)
    RETURNING l.audit_id INTO new_id;
    RETURN new_id;
END
$$;

-- ---- partitions ----------------------------------------------------------------------------

-- Creates the daily partitions covering [from_ts, to_ts] (UTC days, both ends included) that
-- do not exist yet, moving any rows of those days out of the DEFAULT partition; returns how
-- many it created. Past or future. A new partition is built detached (CREATE TABLE … LIKE)
-- and then attached: ATTACH takes only SHARE UPDATE EXCLUSIVE on the log, so inserts into
-- other days never wait for it.
CREATE FUNCTION mcp.ensure_audit_partitions(from_ts timestamptz, to_ts timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d date;
    last_day date;
    pname text;
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'partition range must be finite and not null' USING ERRCODE = '22023';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'partition range starts after it ends' USING ERRCODE = '22023';
    END IF;
    d := (from_ts AT TIME ZONE 'UTC')::date;
    last_day := (to_ts AT TIME ZONE 'UTC')::date;
    IF last_day - d > 3660 THEN
        RAISE EXCEPTION 'partition range longer than 3660 days' USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(1835233392, 3);
    WHILE d <= last_day LOOP
        pname := 'token_audit_log_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass('mcp.' || quote_ident(pname)) IS NULL THEN
            lo := d::timestamp AT TIME ZONE 'UTC';
            hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
            EXECUTE format('CREATE TABLE mcp.%I (LIKE mcp.token_audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', pname);
            -- No row of this day may reach the DEFAULT partition between the move and the
            -- attach (ATTACH locks it anyway, so this costs nothing more).
            LOCK TABLE mcp.token_audit_log_default IN EXCLUSIVE MODE;
            EXECUTE format('WITH moved AS (DELETE FROM mcp.token_audit_log_default '
                           'WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
                           'INSERT INTO mcp.%I SELECT * FROM moved', pname) USING lo, hi;
            EXECUTE format('ALTER TABLE mcp.token_audit_log ATTACH PARTITION mcp.%I FOR VALUES FROM (%L) TO (%L)',
                           pname, lo, hi);
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END
$$;

-- ---- retention (C) -------------------------------------------------------------------------

-- Removes audit rows older than `retention` (NULL: the mcp_platform.audit_retention setting,
-- default 90 days) and returns how many: expired day partitions are dropped whole (their rows
-- counted under lock first), the boundary day is trimmed with DELETE — or, with
-- trim_boundary = false, left whole until it has expired entirely (no row is deleted one by
-- one; rows live up to a day longer than the retention). See src/pg/audit_retention.cpp for the locking.
CREATE FUNCTION mcp.cleanup_old_token_audit_logs(retention interval DEFAULT NULL, trim_boundary boolean DEFAULT true)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'mcp_cleanup_old_token_audit_logs'
    LANGUAGE C VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;

-- ---- rollup and summary --------------------------------------------------------------------

-- Start of the first day not covered by the rollup ('-infinity': nothing rolled up yet).
CREATE FUNCTION mcp.audit_rollup_watermark() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s.watermark::timestamp AT TIME ZONE 'UTC' FROM mcp.token_audit_rollup_state s),
                    '-infinity'::timestamptz)
$$;

-- Whether token_audit_window can serve the current window [now() - 30 days, now()]: it starts
-- inside it, and every dirty mark of its days is one it was built with (a row of those days
-- changed since makes a new mark).
CREATE FUNCTION mcp.audit_window_valid() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((
        SELECT s.window_lo >= now() - interval '30 days'
           AND s.window_hi <= now()
           AND NOT EXISTS (SELECT 1 FROM mcp.token_audit_dirty_days x
                            WHERE x.day >= (s.window_lo AT TIME ZONE 'UTC')::date
                              AND x.day <= (s.window_hi AT TIME ZONE 'UTC')::date
                              AND (s.window_marks ->> x.day::text)::bigint IS DISTINCT FROM x.gen)
          FROM mcp.token_audit_rollup_state s), false)
$$;

-- Recomputes one day of the rollup from the raw log.
CREATE FUNCTION mcp.audit_rollup_day(d date) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM mcp.token_audit_daily WHERE day = d;
    INSERT INTO mcp.token_audit_daily (user_id, day, instance_id, operation, method, total, success,
                                       failure, first_at, last_at)
    SELECT l.user_id, d, l.instance_id, l.operation, l.method, count(*),
           count(*) FILTER (WHERE l.status = 'success'), count(*) FILTER (WHERE l.status = 'failure'),
           min(l.created_at), max(l.created_at)
      FROM mcp.token_audit_log l
     WHERE l.created_at >= d::timestamp AT TIME ZONE 'UTC'
       AND l.created_at < (d + 1)::timestamp AT TIME ZONE 'UTC'
     GROUP BY l.user_id, l.instance_id, l.operation, l.method;
    INSERT INTO mcp.token_audit_day_rows AS c (day, row_count)
    SELECT d, coalesce(sum(r.total), 0) FROM mcp.token_audit_daily r WHERE r.day = d
        ON CONFLICT (day) DO UPDATE SET row_count = excluded.row_count;
$$;

-- Recounts the rows of one day older than the rollup's 31 days (a late change to an old day).
CREATE FUNCTION mcp.audit_count_day(d date) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO mcp.token_audit_day_rows AS c (day, row_count)
    SELECT d, count(*) FROM mcp.token_audit_log l
     WHERE l.created_at >= d::timestamp AT TIME ZONE 'UTC'
       AND l.created_at < (d + 1)::timestamp AT TIME ZONE 'UTC'
        ON CONFLICT (day) DO UPDATE SET row_count = excluded.row_count;
$$;

-- Brings the rollup up to date: recomputes dirty days, then rolls up every day that is over
-- (UTC) and not rolled up yet, within the last 31 days. Returns the number of days computed.
CREATE FUNCTION mcp.refresh_audit_rollup() RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    horizon date := today - 31;
    wm date;
    d date;
    g bigint;
    n integer := 0;
    pname text;
BEGIN
    PERFORM pg_advisory_xact_lock(1835233392, 4);
    SELECT s.watermark INTO wm FROM mcp.token_audit_rollup_state s;

    -- Older than the window: the summary never reads these days again.
    DELETE FROM mcp.token_audit_daily WHERE day < horizon;

    -- 0. Old days changed since they were counted: only their row counts matter (retention).
    --    A mark is cleared only if its generation is unchanged: a concurrent writer re-marking
    --    the day keeps it dirty (and it is recounted next time).
    FOR d, g IN SELECT x.day, x.gen FROM mcp.token_audit_dirty_days x WHERE x.day < horizon ORDER BY x.day LOOP
        PERFORM mcp.audit_count_day(d);
        DELETE FROM mcp.token_audit_dirty_days x WHERE x.day = d AND x.gen = g;
    END LOOP;

    -- 1. Days changed after they were rolled up (same rule for the marks).
    IF wm IS NOT NULL THEN
        FOR d, g IN SELECT x.day, x.gen FROM mcp.token_audit_dirty_days x
                     WHERE x.day >= horizon AND x.day < wm ORDER BY x.day LOOP
            PERFORM mcp.audit_rollup_day(d);
            DELETE FROM mcp.token_audit_dirty_days x WHERE x.day = d AND x.gen = g;
            n := n + 1;
        END LOOP;
    END IF;

    -- 2. Advance over the days that are over.
    IF wm IS NULL THEN
        SELECT (min(l.created_at) AT TIME ZONE 'UTC')::date INTO wm FROM mcp.token_audit_log l;
        wm := coalesce(least(wm, today), today);
    END IF;
    wm := greatest(wm, horizon);
    d := wm;
    WHILE d < today LOOP
        -- A transaction that began before midnight may still be writing rows of day d (its
        -- now() is yesterday, so the dirty trigger does not fire): wait for such writers by
        -- taking SHARE on the day's partition and on the DEFAULT partition.
        pname := 'token_audit_log_p' || to_char(d, 'YYYYMMDD');
        BEGIN
            SET LOCAL lock_timeout = '1s';
            IF to_regclass('mcp.' || quote_ident(pname)) IS NOT NULL THEN
                EXECUTE format('LOCK TABLE mcp.%I IN SHARE MODE', pname);
            END IF;
            LOCK TABLE mcp.token_audit_log_default IN SHARE MODE;
        EXCEPTION WHEN lock_not_available THEN
            RAISE WARNING 'audit rollup stops before % (a writer of that day is still running)', d;
            EXIT;
        END;
        -- a mark of this day, read before the day is computed, is cleared after (see 1.)
        g := NULL;
        SELECT x.gen INTO g FROM mcp.token_audit_dirty_days x WHERE x.day = d;
        PERFORM mcp.audit_rollup_day(d);
        IF g IS NOT NULL THEN
            DELETE FROM mcp.token_audit_dirty_days x WHERE x.day = d AND x.gen = g;
        END IF;
        n := n + 1;
        d := d + 1;
    END LOOP;
    INSERT INTO mcp.token_audit_rollup_state AS s (singleton, watermark) VALUES (true, d)
        ON CONFLICT (singleton) DO UPDATE SET watermark = excluded.watermark;

    -- 3. The window table.
    PERFORM mcp.refresh_audit_window();
    RETURN n;
END
$$;

-- Rebuilds token_audit_window: the exact aggregate of the rows in [window_lo, window_hi), where
-- window_lo is the start of the current 30-day window plus the maintenance interval
-- (mcp_platform.maintenance_interval; one hour when it is 0 or unknown) plus five minutes, so
-- the table serves the summary until after the next run, and window_hi is ten seconds ago, or
-- the start of the oldest transaction running in this database if that is earlier (its rows,
-- not visible yet, carry its start time): every row before window_hi is then visible here or
-- makes a dirty mark when it arrives (see the triggers above; the ten seconds cover a
-- transaction that has taken its start time but is not in pg_stat_activity yet). Whole clean
-- days come from the daily rollup, the rest from the raw log.
-- Returns whether the table was built; when it cannot be (not READ COMMITTED, a prepared
-- transaction in this database), it is marked invalid instead and the summary takes the slower
-- path. Called by mcp.refresh_audit_rollup(), under its lock.
CREATE FUNCTION mcp.refresh_audit_window() RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := clock_timestamp();
    margin interval := interval '1 hour';
    oldest timestamptz;
    lo timestamptz;
    hi timestamptz;
    lo_day date;
    hi_day date;
    wm date;
    marks jsonb;
    raw_ranges tstzrange[];
    raw_sql text := '';
    r tstzrange;
    d date;
BEGIN
    DELETE FROM mcp.token_audit_window;
    UPDATE mcp.token_audit_rollup_state SET window_lo = NULL, window_hi = NULL, window_marks = NULL;
    SELECT s.watermark INTO wm FROM mcp.token_audit_rollup_state s;
    -- Each statement below must see what committed before it (READ COMMITTED), and every
    -- writer must be a backend we can see.
    IF wm IS NULL OR current_setting('transaction_isolation') <> 'read committed'
       OR EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database()) THEN
        RETURN false;
    END IF;
    PERFORM pg_stat_clear_snapshot();
    SELECT min(a.xact_start) INTO oldest FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
       AND a.backend_type <> 'autovacuum worker';
    -- the interval as the server shows it ('1h', '15min', '0'): NULL when the library has not
    -- defined the setting yet
    IF coalesce(current_setting('mcp_platform.maintenance_interval', true), '') ~ '^[0-9]+ ?(s|min|h|d)?$'
       AND current_setting('mcp_platform.maintenance_interval', true)::interval > interval '0' THEN
        margin := current_setting('mcp_platform.maintenance_interval', true)::interval;
    END IF;
    lo := t - interval '30 days' + margin + interval '5 minutes';
    hi := least(t - interval '10 seconds', oldest);
    IF hi < lo THEN
        RETURN false;
    END IF;
    lo_day := (lo AT TIME ZONE 'UTC')::date;
    hi_day := (hi AT TIME ZONE 'UTC')::date;
    -- The marks first: a mark made after this point is one the window has not seen.
    SELECT coalesce(jsonb_object_agg(x.day::text, x.gen), '{}') INTO marks
      FROM mcp.token_audit_dirty_days x WHERE x.day >= lo_day AND x.day <= hi_day;
    -- raw: lo's (partial) day, the dirty days after it, and from the watermark (or the day
    -- after lo's) to hi; each range is a constant in the query, so only its partitions are read
    raw_ranges := ARRAY[tstzrange(lo, least((lo_day + 1)::timestamp AT TIME ZONE 'UTC', hi), '[)')];
    FOR d IN SELECT k::date FROM jsonb_object_keys(marks) AS k ORDER BY 1 LOOP
        IF d > lo_day AND d < least(hi_day, wm) THEN
            raw_ranges := raw_ranges || tstzrange(d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC', '[)');
        END IF;
    END LOOP;
    IF greatest(least(wm, hi_day), lo_day + 1)::timestamp AT TIME ZONE 'UTC' < hi THEN
        raw_ranges := raw_ranges || tstzrange(greatest(least(wm, hi_day), lo_day + 1)::timestamp AT TIME ZONE 'UTC', hi, '[)');
    END IF;
    FOREACH r IN ARRAY raw_ranges LOOP
        CONTINUE WHEN isempty(r);
        raw_sql := raw_sql || format(
            ' UNION ALL SELECT l.user_id, l.instance_id, l.operation, l.method, count(*), '
            'count(*) FILTER (WHERE l.status = ''success''), count(*) FILTER (WHERE l.status = ''failure''), '
            'min(l.created_at), max(l.created_at) FROM mcp.token_audit_log l '
            'WHERE l.created_at >= %L AND l.created_at < %L GROUP BY 1, 2, 3, 4', lower(r), upper(r));
    END LOOP;
    -- plus the rollup: whole days after lo's day, before hi's day and the watermark, not dirty;
    -- summed to one row per group
    EXECUTE 'INSERT INTO mcp.token_audit_window (user_id, instance_id, operation, method, total, success, '
            'failure, first_at, last_at, success_rate) '
            'SELECT p.user_id, p.instance_id, p.operation, p.method, sum(p.total), sum(p.success), '
            'sum(p.failure), min(p.first_at), max(p.last_at), round(100.0 * sum(p.success) / sum(p.total), 2) FROM ('
            'SELECT r.user_id, r.instance_id, r.operation, r.method, r.total, r.success, r.failure, '
            'r.first_at, r.last_at FROM mcp.token_audit_daily r '
            'WHERE r.day > $1 AND r.day < $2 AND NOT $3 ? r.day::text' || raw_sql || ') '
            'AS p (user_id, instance_id, operation, method, total, success, failure, first_at, last_at) '
            'GROUP BY p.user_id, p.instance_id, p.operation, p.method'
      USING lo_day, least(hi_day, wm), marks;
    UPDATE mcp.token_audit_rollup_state SET window_lo = lo, window_hi = hi, window_marks = marks;
    RETURN true;
END
$$;

-- A row of token_audit_summary, as both of its branches return it.
CREATE TYPE mcp.token_audit_summary_row AS (
    instance_id uuid, user_id uuid, operation varchar, method varchar, total_operations bigint,
    success_count bigint, failure_count bigint, success_rate numeric,
    first_operation_at timestamptz, last_operation_at timestamptz);

-- The rows of the summary while the window table is valid (C, src/pg/audit_summary.cpp): the
-- window table's rows, each merged with the group of the raw rows of [now() - 30 days,
-- window_lo) and [window_hi, ∞) that it has (one query over the log, its time ranges bound as
-- constants), plus the raw groups without a window row. SECURITY INVOKER: the caller's RLS
-- applies to both.
CREATE FUNCTION mcp.audit_summary_windowed() RETURNS SETOF mcp.token_audit_summary_row
    AS 'MODULE_PATHNAME', 'mcp_audit_summary_windowed'
    LANGUAGE C STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;

-- The raw-log parts of the summary when the window table is not valid (see the view below),
-- each aggregated per group. Each part is planned with its own time range as constants, so
-- only the one or two partitions it reads are planned (the view would otherwise plan every
-- partition of the log for every part).
-- SECURITY INVOKER: the log's RLS applies to the caller.
CREATE FUNCTION mcp.audit_summary_raw_parts()
    RETURNS TABLE (instance_id uuid, user_id uuid, operation varchar, method varchar, total bigint,
                   success bigint, failure bigint, first_at timestamptz, last_at timestamptz)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := now() - interval '30 days';
    lo_day_end timestamptz := date_trunc('day', now() - interval '30 days', 'UTC') + interval '24 hours';
    wm timestamptz := mcp.audit_rollup_watermark();
    part constant text :=
        'SELECT l.instance_id, l.user_id, l.operation, l.method, count(*), '
        'count(*) FILTER (WHERE l.status = ''success''), count(*) FILTER (WHERE l.status = ''failure''), '
        'min(l.created_at), max(l.created_at) FROM mcp.token_audit_log l '
        'WHERE l.created_at >= %L AND l.created_at < %L GROUP BY 1, 2, 3, 4';
    d date;
BEGIN
    -- edge: the boundary day from the window start on, below the watermark
    IF least(lo_day_end, wm) > lo THEN
        RETURN QUERY EXECUTE format(part, lo, least(lo_day_end, wm));
    END IF;
    -- dirty days inside the rolled-up range
    FOR d IN SELECT x.day FROM mcp.token_audit_dirty_days x
              WHERE x.day > (lo AT TIME ZONE 'UTC')::date AND x.day < (wm AT TIME ZONE 'UTC')::date
              ORDER BY x.day LOOP
        RETURN QUERY EXECUTE format(part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
    -- tail: from the watermark (or the window start) on
    RETURN QUERY EXECUTE format(part, greatest(lo, wm), 'infinity'::timestamptz);
END
$$;

-- The rows of the summary when the window table is not valid: the daily rollup plus the raw
-- parts, summed per group. SECURITY INVOKER (RLS of the caller).
CREATE FUNCTION mcp.audit_summary_from_rollup() RETURNS SETOF mcp.token_audit_summary_row
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT p.instance_id, p.user_id, p.operation, p.method, sum(p.total)::bigint,
       sum(p.success)::bigint, sum(p.failure)::bigint,
       round(100.0 * sum(p.success) / sum(p.total), 2), min(p.first_at), max(p.last_at)
  FROM (SELECT r.instance_id, r.user_id, r.operation, r.method, r.total, r.success, r.failure,
               r.first_at, r.last_at
          FROM mcp.token_audit_daily r
         WHERE r.day > ((now() - interval '30 days') AT TIME ZONE 'UTC')::date
           AND r.day < (mcp.audit_rollup_watermark() AT TIME ZONE 'UTC')::date
           AND NOT EXISTS (SELECT 1 FROM mcp.token_audit_dirty_days x WHERE x.day = r.day)
        UNION ALL
        SELECT q.instance_id, q.user_id, q.operation, q.method, q.total, q.success, q.failure,
               q.first_at, q.last_at
          FROM mcp.audit_summary_raw_parts() q) AS p
 GROUP BY p.instance_id, p.user_id, p.operation, p.method
$$;

-- 30-day operation statistics (security_invoker: RLS shows the current tenant's rows only).
-- Equal to the plain aggregate
--     SELECT instance_id, user_id, operation, method, count(*), … FROM mcp.token_audit_log
--      WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4
-- and built from disjoint parts of the window [now() - 30 days, now()], in one of two ways
-- (only the branch whose condition holds runs):
-- When the window table is valid (mcp.audit_window_valid()), mcp.audit_summary_windowed():
--   window  one row per group for [window_lo, window_hi), from token_audit_window, merged with
--   raw     the groups of the raw rows of [now() - 30 days, window_lo) and from window_hi on
-- Otherwise, summed per group:
--   rollup  the whole days after the boundary day and before the watermark, not dirty, from
--           the daily rollup
--   edge    raw rows of the boundary day from now() - 30 days on (below the watermark)
--   dirty   raw rows of dirty days inside the rolled-up range
--   tail    raw rows from the watermark (or the window start) on
-- (the raw parts from mcp.audit_summary_raw_parts()).
-- Both branches are functions, so the view costs next to nothing to plan, and only the branch
-- whose condition holds runs.
CREATE VIEW mcp.token_audit_summary WITH (security_invoker = true) AS
SELECT s.instance_id, s.user_id, s.operation, s.method, s.total_operations, s.success_count,
       s.failure_count, s.success_rate, s.first_operation_at, s.last_operation_at
  FROM mcp.audit_summary_windowed() s
 WHERE (SELECT mcp.audit_window_valid())
UNION ALL
SELECT r.instance_id, r.user_id, r.operation, r.method, r.total_operations, r.success_count,
       r.failure_count, r.success_rate, r.first_operation_at, r.last_operation_at
  FROM mcp.audit_summary_from_rollup() r
 WHERE NOT (SELECT mcp.audit_window_valid());

-- ---- maintenance ---------------------------------------------------------------------------

-- One maintenance pass: instance expiry (mcp.expire_instances()), the legacy service counters
-- of mcp_table (mcp.refresh_service_stats()), rollup upkeep, partition upkeep (rows of the DEFAULT partition moved into
-- their days, mcp_platform.audit_partitions_ahead days made ahead) and retention. Safe to run
-- concurrently with itself: a second caller returns at once with "skipped": true.
-- Maintenance never makes an application transaction wait for long, nor closes a deadlock cycle
-- with one: a lock it cannot get within lock_timeout fails this run (the worker logs it and
-- tries again at its next interval) before the deadlock detector would pick a victim.
CREATE FUNCTION mcp.run_maintenance() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    SET lock_timeout = '500ms'
AS $$
DECLARE
    ahead integer := coalesce(nullif(current_setting('mcp_platform.audit_partitions_ahead', true), '')::integer, 7);
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
    rolled integer;
    expired bigint;
    services bigint;
    removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1835233392, 1) THEN
        RETURN jsonb_build_object('skipped', true);
    END IF;
    expired := mcp.expire_instances();
    services := mcp.refresh_service_stats();
    rolled := mcp.refresh_audit_rollup();
    -- Creating a partition locks the DEFAULT partition until commit, and cleanup locks the
    -- whole log until commit: both come last, so they are held only for a moment.
    SELECT min(l.created_at), max(l.created_at) INTO lo, hi FROM mcp.token_audit_log_default l;
    IF lo IS NOT NULL THEN
        created := created + mcp.ensure_audit_partitions(lo, hi);
    END IF;
    created := created + mcp.ensure_audit_partitions(now(), now() + make_interval(days => ahead));
    removed := mcp.cleanup_old_token_audit_logs(NULL,
        coalesce(nullif(current_setting('mcp_platform.audit_retention_trim', true), ''), 'on')::boolean);
    RETURN jsonb_build_object('skipped', false, 'partitions_created', created, 'rollup_days', rolled,
                              'expired_instances', expired, 'services_refreshed', services,
                              'removed_audit_rows', removed);
END
$$;

-- ---- privileges and backup -----------------------------------------------------------------
REVOKE ALL ON mcp.token_audit_daily, mcp.token_audit_window, mcp.token_audit_rollup_state,
    mcp.token_audit_dirty_days, mcp.token_audit_day_rows FROM PUBLIC;
REVOKE ALL ON FUNCTION mcp.log_token_operation(uuid, text, text, text, text, text, jsonb),
    mcp.ensure_audit_partitions(timestamptz, timestamptz), mcp.cleanup_old_token_audit_logs(interval, boolean),
    mcp.audit_rollup_watermark(), mcp.audit_window_valid(), mcp.audit_summary_raw_parts(), mcp.audit_summary_windowed(), mcp.audit_summary_from_rollup(),
    mcp.audit_rollup_day(date), mcp.audit_count_day(date),
    mcp.refresh_audit_rollup(), mcp.refresh_audit_window(),
    mcp.run_maintenance(), mcp.token_audit_mark_dirty(), mcp.token_audit_truncated() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mcp.log_token_operation(uuid, text, text, text, text, text, jsonb)
    TO mcp_app, mcp_admin;
-- The summary is security_invoker: its readers need the rollup (RLS) and its bookkeeping.
GRANT SELECT ON mcp.token_audit_daily, mcp.token_audit_window, mcp.token_audit_rollup_state,
    mcp.token_audit_dirty_days TO mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.audit_rollup_watermark(), mcp.audit_window_valid(),
    mcp.audit_summary_raw_parts(), mcp.audit_summary_windowed(), mcp.audit_summary_from_rollup() TO mcp_app, mcp_admin;
GRANT SELECT ON mcp.token_audit_summary TO mcp_app, mcp_admin;
-- Retention and partitions are the platform operator's.
GRANT EXECUTE ON FUNCTION mcp.ensure_audit_partitions(timestamptz, timestamptz),
    mcp.cleanup_old_token_audit_logs(interval, boolean), mcp.refresh_audit_rollup(), mcp.run_maintenance()
    TO mcp_admin;

SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_daily', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_window', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_rollup_state', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_dirty_days', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_day_rows', '');
-- the mark generations go on from where they were (the window table compares them)
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_mark_gen', '');
-- ===========================================================================================
-- Test-only functions proving the C++/Postgres boundary (test/sql/boundary.sql). Not granted
-- to anyone: only a superuser can call them.
-- ===========================================================================================
CREATE FUNCTION mcp._test_cpp_error(sqlstate text) RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_test_cpp_error' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._test_cpp_unknown_error() RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_test_cpp_unknown_error' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._test_pg_error_under_cpp(divisor integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_test_pg_error_under_cpp' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._test_destructor_runs() RETURNS bigint
    AS 'MODULE_PATHNAME', 'mcp_test_destructor_runs' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION mcp._test_cpp_error(text), mcp._test_cpp_unknown_error(),
    mcp._test_pg_error_under_cpp(integer), mcp._test_destructor_runs() FROM PUBLIC;
