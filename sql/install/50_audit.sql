-- ===========================================================================================
-- Token audit log (SPEC §7).
-- ===========================================================================================

-- Writes one audit row; the user is derived from the instance (which must belong to the
-- current tenant), never taken from the caller.
CREATE FUNCTION mcp.log_token_operation(
    instance_id uuid, operation text, status text, method text DEFAULT NULL,
    error_type text DEFAULT NULL, error_message text DEFAULT NULL,
    metadata jsonb DEFAULT '{}'::jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp.current_user_id();
    owner uuid;
    new_id bigint;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant set' USING ERRCODE = '42501',
            HINT = 'SELECT set_config(''mcp.user_id'', <user id>, true) first.';
    END IF;
    SELECT s.user_id INTO owner FROM mcp.mcp_service_table s
     WHERE s.user_id = tenant AND s.instance_id = log_token_operation.instance_id;
    IF owner IS NULL THEN
        RAISE EXCEPTION 'instance % does not belong to the current tenant', log_token_operation.instance_id
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO mcp.token_audit_log AS l (instance_id, user_id, operation, status, method,
                                          error_type, error_message, metadata)
    VALUES (log_token_operation.instance_id, owner, operation, status, method, error_type,
            error_message, coalesce(metadata, '{}'::jsonb))
    RETURNING l.audit_id INTO new_id;
    RETURN new_id;
END
$$;
GRANT EXECUTE ON FUNCTION mcp.log_token_operation(uuid, text, text, text, text, text, jsonb)
    TO mcp_app, mcp_admin;

-- 30-day operation statistics of the current tenant (security_invoker: RLS applies).
CREATE VIEW mcp.token_audit_summary WITH (security_invoker = true) AS
SELECT l.instance_id,
       l.user_id,
       l.operation,
       l.method,
       count(*)                                          AS total_operations,
       count(*) FILTER (WHERE l.status = 'success')      AS success_count,
       count(*) FILTER (WHERE l.status = 'failure')      AS failure_count,
       round(100.0 * count(*) FILTER (WHERE l.status = 'success') / count(*), 2) AS success_rate,
       min(l.created_at)                                 AS first_operation_at,
       max(l.created_at)                                 AS last_operation_at
  FROM mcp.token_audit_log l
 WHERE l.created_at >= now() - interval '30 days'
 GROUP BY l.instance_id, l.user_id, l.operation, l.method;
GRANT SELECT ON mcp.token_audit_summary TO mcp_app, mcp_admin;
