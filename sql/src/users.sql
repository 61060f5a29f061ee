-- ===========================================================================================
-- Accounts: sign-up and the login lookup for the backend (they work without a tenant: the
-- users table shows a tenant its own row only), and erasure and export for mcp_admin.
-- ===========================================================================================

-- Creates an account (with its free plan) and returns its id. 23505 when the address is taken
-- (case-insensitively); 22023 when it is not an email address; 22001 when a field is too long.
CREATE OR REPLACE FUNCTION mcp.sign_up(email text, name text DEFAULT NULL) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF sign_up.email IS NULL THEN
        RAISE EXCEPTION 'email must not be null' USING ERRCODE = '22023';
    END IF;
    IF char_length(sign_up.email) > 255 THEN
        RAISE EXCEPTION 'email is longer than 255 characters' USING ERRCODE = '22001';
    END IF;
    IF char_length(sign_up.name) > 255 THEN
        RAISE EXCEPTION 'name is longer than 255 characters' USING ERRCODE = '22001';
    END IF;
    BEGIN
        INSERT INTO mcp.users AS u (email, name) VALUES (sign_up.email, sign_up.name)
        RETURNING u.id INTO new_id;
    EXCEPTION
        WHEN unique_violation THEN
            RAISE EXCEPTION 'email address is already registered' USING ERRCODE = '23505';
        WHEN check_violation THEN
            RAISE EXCEPTION 'email is not an email address' USING ERRCODE = '22023';
    END;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION mcp.sign_up(text, text) IS
    'creates an account with its free plan and returns its id (23505: the address is taken)';
REVOKE ALL ON FUNCTION mcp.sign_up(text, text) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.sign_up(text, text) TO mcp_app, mcp_admin;

-- The login lookup: the account of an address (case-insensitive), NULL when there is none.
CREATE OR REPLACE FUNCTION mcp.find_user(email text) RETURNS uuid
    LANGUAGE sql STABLE STRICT SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id FROM mcp.users u WHERE lower(u.email) = lower(find_user.email)
$$;
COMMENT ON FUNCTION mcp.find_user(text) IS 'the account id of an email address (case-insensitive), NULL when unknown';
REVOKE ALL ON FUNCTION mcp.find_user(text) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.find_user(text) TO mcp_app, mcp_admin;

-- Account erasure: the user, the plan, billing details, instances, credentials, every audit
-- row of the user in every partition and the rollup and window rows derived from them, in
-- the caller's transaction; returns what it removed per table. 22023 for an unknown user.
CREATE OR REPLACE FUNCTION mcp.erase_user(user_id uuid) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed jsonb := '{}';
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mcp.users u WHERE u.id = erase_user.user_id) THEN
        RAISE EXCEPTION 'user % does not exist', erase_user.user_id USING ERRCODE = '22023';
    END IF;
    DELETE FROM mcp.token_audit_log l WHERE l.user_id = erase_user.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('token_audit_log', n);
    DELETE FROM mcp.token_audit_daily d WHERE d.user_id = erase_user.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('token_audit_daily', n);
    DELETE FROM mcp.token_audit_window w WHERE w.user_id = erase_user.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('token_audit_window', n);
    SELECT count(*) INTO n FROM mcp.mcp_credentials c WHERE c.user_id = erase_user.user_id;
    removed := removed || jsonb_build_object('mcp_credentials', n);
    SELECT count(*) INTO n FROM mcp.mcp_service_table s WHERE s.user_id = erase_user.user_id;
    removed := removed || jsonb_build_object('mcp_service_table', n);
    SELECT count(*) INTO n FROM mcp.user_billing_details b WHERE b.user_id = erase_user.user_id;
    removed := removed || jsonb_build_object('user_billing_details', n);
    SELECT count(*) INTO n FROM mcp.user_plans p WHERE p.user_id = erase_user.user_id;
    removed := removed || jsonb_build_object('user_plans', n);
    -- the rest goes with the user (ON DELETE CASCADE)
    DELETE FROM mcp.users u WHERE u.id = erase_user.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN removed || jsonb_build_object('users', n);
END
$$;
COMMENT ON FUNCTION mcp.erase_user(uuid) IS
    'erases an account and everything stored about it (audit rows and rollups included); returns the counts removed';
REVOKE ALL ON FUNCTION mcp.erase_user(uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.erase_user(uuid) TO mcp_admin;

-- Everything stored about a user except secrets, which are named by field only. 22023 for
-- an unknown user.
CREATE OR REPLACE FUNCTION mcp.export_user(user_id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
    part jsonb;
BEGIN
    -- one statement per table, each for this user only (on Citus each runs on the user's shard)
    SELECT jsonb_build_object('user', to_jsonb(u)) INTO result
      FROM mcp.users u WHERE u.id = export_user.user_id;
    IF result IS NULL THEN
        RAISE EXCEPTION 'user % does not exist', export_user.user_id USING ERRCODE = '22023';
    END IF;
    SELECT to_jsonb(p) INTO part FROM mcp.user_plans p WHERE p.user_id = export_user.user_id;
    result := result || jsonb_build_object('plan', part);
    SELECT to_jsonb(b) INTO part FROM mcp.user_billing_details b WHERE b.user_id = export_user.user_id;
    result := result || jsonb_build_object('billing', part);
    SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.created_at, s.instance_id), '[]') INTO part
      FROM mcp.mcp_service_table s WHERE s.user_id = export_user.user_id;
    result := result || jsonb_build_object('instances', part);
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'instance_id', c.instance_id, 'client_id', c.client_id,
               'token_expires_at', c.token_expires_at, 'token_scope', c.token_scope,
               'oauth_status', c.oauth_status, 'oauth_completed_at', c.oauth_completed_at,
               'created_at', c.created_at, 'updated_at', c.updated_at,
               'secrets_stored', to_jsonb(array_remove(ARRAY[
                   CASE WHEN c.api_key IS NOT NULL THEN 'api_key' END,
                   CASE WHEN c.client_secret IS NOT NULL THEN 'client_secret' END,
                   CASE WHEN c.access_token IS NOT NULL THEN 'access_token' END,
                   CASE WHEN c.refresh_token IS NOT NULL THEN 'refresh_token' END,
                   CASE WHEN c.oauth_code_verifier IS NOT NULL THEN 'code_verifier' END], NULL)))
             ORDER BY c.instance_id), '[]') INTO part
      FROM mcp.mcp_credentials c WHERE c.user_id = export_user.user_id;
    result := result || jsonb_build_object('credentials', part);
    SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.created_at, l.audit_id), '[]') INTO part
      FROM mcp.token_audit_log l WHERE l.user_id = export_user.user_id;
    RETURN result || jsonb_build_object('audit', part);
END
$$;
COMMENT ON FUNCTION mcp.export_user(uuid) IS
    'everything stored about a user as jsonb, secrets named by field only';
REVOKE ALL ON FUNCTION mcp.export_user(uuid) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.export_user(uuid) TO mcp_admin;
