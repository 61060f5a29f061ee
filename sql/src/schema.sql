-- ===========================================================================================
-- The platform's tables in the tenant shape: every tenant table carries user_id, its primary
-- key and unique constraints include user_id, and foreign keys between tenant tables are
-- composite (user_id, …), so no row can reference another tenant's row. Two tables are
-- global: users and mcp_table (the service catalog). Each table is followed by its indexes,
-- triggers, row-level security, privileges and its pg_dump registration (pg_dump keeps the
-- data of every extension table). Idempotent: the upgrade script runs it too.
-- ===========================================================================================

-- ---- users (global) ------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS mcp.users (
    id          uuid         NOT NULL DEFAULT gen_random_uuid(),
    email       varchar(255) NOT NULL,
    name        varchar(255),
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_shape CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$')
);
COMMENT ON TABLE mcp.users IS 'platform accounts (magic-link login, no passwords); email unique case-insensitively';
-- Unique case-insensitively; also the email lookup index.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON mcp.users (lower(email));
CREATE OR REPLACE TRIGGER users_set_updated_at BEFORE UPDATE ON mcp.users
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.set_updated_at();
CREATE OR REPLACE TRIGGER auto_assign_free_plan AFTER INSERT ON mcp.users
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.assign_default_plan();
-- A tenant sees and updates its own row only. Sign-up and the login lookup go through
-- mcp.sign_up and mcp.find_user; deleting an account is mcp.erase_user (mcp_admin).
SELECT mcp_internal.make_tenant_table('mcp.users', 'id');
REVOKE ALL ON mcp.users FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT, UPDATE (email, name) ON mcp.users TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.users TO mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp.users', '');

-- ---- user_plans (tenant) -------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS mcp.user_plans (
    plan_id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id          uuid        NOT NULL,
    plan_type        varchar(20) NOT NULL DEFAULT 'free',
    max_instances    integer              DEFAULT 1,
    features         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    expires_at       timestamptz,
    -- Per-user count of active instances, kept by the plan-limit trigger; never written by
    -- the application.
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
)
-- Room on each page for the counter's new row versions, so most of its updates are HOT (no
-- index entries) and prune old versions in place.
WITH (fillfactor = 70);
COMMENT ON TABLE mcp.user_plans IS
    'one plan per user: free (1 active instance) or pro (max_instances NULL = unlimited; counts as free after expires_at)';
CREATE INDEX IF NOT EXISTS user_plans_expires_at_idx ON mcp.user_plans (expires_at) WHERE expires_at IS NOT NULL;
CREATE OR REPLACE TRIGGER user_plans_set_updated_at BEFORE UPDATE ON mcp.user_plans
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.set_updated_at('user_id');
SELECT mcp_internal.make_tenant_table('mcp.user_plans');
-- The counter column is written only by the trigger: mcp_admin may change a plan's terms,
-- not its count, and may not delete a plan row (a plan row re-inserted would restart the
-- count at 0); a plan goes with its user (mcp.erase_user).
REVOKE ALL ON mcp.user_plans FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT ON mcp.user_plans TO mcp_app;
GRANT SELECT ON mcp.user_plans TO mcp_admin;
GRANT INSERT (plan_id, user_id, plan_type, max_instances, features, expires_at),
      UPDATE (plan_type, max_instances, features, expires_at)
    ON mcp.user_plans TO mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp.user_plans', '');

-- ---- user_billing_details (tenant) ---------------------------------------------------------
CREATE TABLE IF NOT EXISTS mcp.user_billing_details (
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
COMMENT ON TABLE mcp.user_billing_details IS 'billing identifiers and contact of a user (card: last four digits only)';
CREATE INDEX IF NOT EXISTS user_billing_details_subscription_idx
    ON mcp.user_billing_details (razorpay_subscription_id) WHERE razorpay_subscription_id IS NOT NULL;
CREATE OR REPLACE TRIGGER user_billing_details_set_updated_at BEFORE UPDATE ON mcp.user_billing_details
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.set_updated_at('user_id');
SELECT mcp_internal.make_tenant_table('mcp.user_billing_details');
REVOKE ALL ON mcp.user_billing_details FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.user_billing_details TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.user_billing_details TO mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp.user_billing_details', '');

-- ---- mcp_table: the service catalog (global) -----------------------------------------------
CREATE TABLE IF NOT EXISTS mcp.mcp_table (
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
COMMENT ON TABLE mcp.mcp_table IS
    'service catalog; the usage counters are a snapshot (exact figures: mcp.service_stats)';
CREATE INDEX IF NOT EXISTS mcp_table_is_active_idx ON mcp.mcp_table (is_active);
CREATE OR REPLACE TRIGGER mcp_table_set_updated_at BEFORE UPDATE ON mcp.mcp_table
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.set_updated_at();
REVOKE ALL ON mcp.mcp_table FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT ON mcp.mcp_table TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.mcp_table TO mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp.mcp_table', '');

-- ---- mcp_service_table: a user's instances (tenant) ----------------------------------------
CREATE TABLE IF NOT EXISTS mcp.mcp_service_table (
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
COMMENT ON TABLE mcp.mcp_service_table IS
    'a user''s instances of catalog services; active = status ''active'' and not past expires_at';
CREATE INDEX IF NOT EXISTS mcp_service_table_instance_id_idx ON mcp.mcp_service_table (instance_id);
CREATE INDEX IF NOT EXISTS mcp_service_table_service_idx ON mcp.mcp_service_table (mcp_service_id);
CREATE INDEX IF NOT EXISTS mcp_service_table_user_status_idx ON mcp.mcp_service_table (user_id, status);
CREATE INDEX IF NOT EXISTS mcp_service_table_expires_at_idx ON mcp.mcp_service_table (expires_at)
    WHERE status = 'active' AND expires_at IS NOT NULL;
CREATE OR REPLACE TRIGGER mcp_service_table_set_updated_at BEFORE UPDATE ON mcp.mcp_service_table
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.set_updated_at('user_id', 'instance_id', 'mcp_service_id');
SELECT mcp_internal.make_tenant_table('mcp.mcp_service_table');
-- The backend writes what it owns: which service, its name, its status and expiry (the
-- plan-limit trigger checks every activation). The bookkeeping columns (oauth_status,
-- usage_count, last_used_at, renewed_count, last_renewed_at, credentials_updated_at) follow
-- the credentials and the usage and are written only by the extension's functions.
REVOKE ALL ON mcp.mcp_service_table FROM PUBLIC, mcp_app, mcp_admin;
GRANT SELECT, DELETE ON mcp.mcp_service_table TO mcp_app;
GRANT INSERT (instance_id, user_id, mcp_service_id, status, expires_at, custom_name),
      UPDATE (status, expires_at, custom_name)
    ON mcp.mcp_service_table TO mcp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp.mcp_service_table TO mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp.mcp_service_table', '');

-- ---- mcp_credentials: one row per instance (tenant); secret columns hold ciphertext --------
CREATE TABLE IF NOT EXISTS mcp.mcp_credentials (
    credential_id           uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id                 uuid         NOT NULL,
    instance_id             uuid         NOT NULL,
    -- API key authentication (ciphertext envelope)
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
    -- The key version every non-NULL secret of the row uses (0 when they differ, NULL when
    -- the row holds none): rotation finds rows to re-seal by it without decrypting anything.
    key_version             integer,
    -- The refresh lifecycle (refresh.sql); the order of these columns is the order in which
    -- the 1.0 -> 1.1 upgrade adds them.
    refresh_state           varchar(20)  NOT NULL DEFAULT 'ok',
    refresh_lease           uuid,           -- the outstanding lease's token (claim → settle)
    refresh_due_at          timestamptz,    -- when it is next claimable; NULL: never
    tokens_stored_at        timestamptz,    -- when the current tokens were stored
    refresh_failures        integer      NOT NULL DEFAULT 0,  -- failed attempts since a success
    failure_days            integer      NOT NULL DEFAULT 0,  -- distinct UTC days among them
    next_attempt_at         timestamptz,    -- end of the cooldown (cooling)
    last_success_at         timestamptz,
    last_failure_at         timestamptz,
    last_error_type         varchar(100),
    CONSTRAINT mcp_credentials_pkey PRIMARY KEY (user_id, credential_id),
    CONSTRAINT mcp_credentials_instance_key UNIQUE (user_id, instance_id),
    CONSTRAINT mcp_credentials_instance_fkey FOREIGN KEY (user_id, instance_id)
        REFERENCES mcp.mcp_service_table (user_id, instance_id) ON DELETE CASCADE,
    -- Either an API key or an OAuth client, never both; or nothing, once revoked.
    CONSTRAINT mcp_credentials_type_check CHECK (
        (api_key IS NOT NULL AND client_id IS NULL AND client_secret IS NULL
             AND access_token IS NULL AND refresh_token IS NULL AND oauth_code_verifier IS NULL)
        OR (api_key IS NULL AND client_id IS NOT NULL)
        OR (refresh_state = 'revoked' AND api_key IS NULL AND client_id IS NULL AND client_secret IS NULL
             AND access_token IS NULL AND refresh_token IS NULL AND oauth_code_verifier IS NULL)),
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
        oauth_state IS NULL OR (oauth_state ~ '^[0-9a-f]{64}$' AND oauth_state_expires_at IS NOT NULL)),
    -- A revoked credential holds no token and no API key; only a credential with a refresh
    -- token is leased or scheduled.
    CONSTRAINT mcp_credentials_refresh_state_check CHECK (
        refresh_state IN ('ok', 'cooling', 'needs_reauth', 'revoked')
        AND (refresh_state <> 'revoked' OR (api_key IS NULL AND access_token IS NULL AND refresh_token IS NULL))
        AND (refresh_token IS NOT NULL OR (refresh_lease IS NULL AND refresh_due_at IS NULL))
        AND refresh_failures >= 0 AND failure_days >= 0)
)
-- Half-empty pages: re-sealing a row (rotation, token refresh) changes no indexed column, so
-- with room on the page the new version is a HOT update with no index insertions (rotation
-- measured 3x faster than at fillfactor 100). One small row per instance.
WITH (fillfactor = 50);
COMMENT ON TABLE mcp.mcp_credentials IS
    'one row per instance: an API key or an OAuth client, its tokens and flow state; secrets are AES-256-GCM ciphertext';
CREATE INDEX IF NOT EXISTS mcp_credentials_instance_id_idx ON mcp.mcp_credentials (instance_id);
CREATE INDEX IF NOT EXISTS mcp_credentials_oauth_status_idx ON mcp.mcp_credentials (oauth_status);
CREATE INDEX IF NOT EXISTS mcp_credentials_token_expires_idx ON mcp.mcp_credentials (user_id, token_expires_at)
    WHERE token_expires_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS mcp_credentials_oauth_state_idx ON mcp.mcp_credentials (user_id, oauth_state)
    WHERE oauth_state IS NOT NULL;
-- The refresh queue: mcp.claim_refreshes reads it as one index range (oldest due first),
-- whatever the table's size; settling a lease finds its row by the lease token.
CREATE INDEX IF NOT EXISTS mcp_credentials_refresh_due_idx ON mcp.mcp_credentials (refresh_due_at)
    WHERE refresh_due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS mcp_credentials_refresh_lease_idx ON mcp.mcp_credentials (refresh_lease)
    WHERE refresh_lease IS NOT NULL;
CREATE OR REPLACE TRIGGER mcp_credentials_set_updated_at BEFORE UPDATE ON mcp.mcp_credentials
    FOR EACH ROW EXECUTE FUNCTION mcp_internal.set_updated_at('user_id', 'instance_id');
SELECT mcp_internal.make_tenant_table('mcp.mcp_credentials');
-- mcp_worker reads the refresh state of every tenant (mcp.refresh_status), nothing else.
DROP POLICY IF EXISTS worker_read ON mcp.mcp_credentials;
CREATE POLICY worker_read ON mcp.mcp_credentials AS PERMISSIVE FOR SELECT TO mcp_worker USING (true);
-- No role reads a ciphertext column: only the extension's own functions do. The backend
-- changes credentials through the API only (mcp.revoke_credentials audits and keeps the
-- instance's columns in step); mcp_admin may delete rows (account erasure).
REVOKE ALL ON mcp.mcp_credentials FROM PUBLIC, mcp_app, mcp_admin, mcp_worker;
GRANT SELECT (credential_id, user_id, instance_id, client_id, token_expires_at, token_scope,
              oauth_status, oauth_completed_at, oauth_authorization_url, created_at, updated_at,
              refresh_state, failure_days, next_attempt_at, last_success_at, last_failure_at,
              last_error_type)
    ON mcp.mcp_credentials TO mcp_app;
GRANT SELECT (credential_id, user_id, instance_id, client_id, token_expires_at, token_scope,
              oauth_status, oauth_completed_at, oauth_authorization_url, refresh_claimed_until,
              created_at, updated_at, refresh_state, refresh_due_at, tokens_stored_at,
              refresh_failures, failure_days, next_attempt_at, last_success_at, last_failure_at,
              last_error_type),
      DELETE
    ON mcp.mcp_credentials TO mcp_admin;
GRANT SELECT (user_id, instance_id, client_id, token_expires_at, refresh_state, failure_days,
              next_attempt_at, last_success_at, last_failure_at, last_error_type)
    ON mcp.mcp_credentials TO mcp_worker;
SELECT pg_catalog.pg_extension_config_dump('mcp.mcp_credentials', '');
