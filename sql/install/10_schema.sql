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
