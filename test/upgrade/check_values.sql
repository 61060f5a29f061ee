-- Every value written before the upgrade reads back after it. Run as a superuser.
\pset footer off
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', 'a0000000-0000-0000-0000-00000000000a', true) IS NOT NULL AS tenant_ada;
SELECT s.custom_name, s.status, s.usage_count, c.auth_type, c.api_key
  FROM mcp.mcp_service_table s, mcp.get_credentials(s.instance_id) c ORDER BY 1;
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', 'b0000000-0000-0000-0000-00000000000b', true) IS NOT NULL AS tenant_bob;
-- an instance that is not active hands out no credentials (1.1: MC004): read active ones only
SELECT s.custom_name, s.status, c.client_id, c.client_secret, c.access_token, c.refresh_token,
       c.token_scope, c.oauth_status
  FROM (SELECT * FROM mcp.mcp_service_table x
         WHERE x.status = 'active' AND (x.expires_at IS NULL OR x.expires_at > now())
        OFFSET 0) s,
       LATERAL mcp.get_credentials(s.instance_id) c
 ORDER BY 1;
SELECT s.custom_name, s.status FROM mcp.mcp_service_table s
 WHERE NOT (s.status = 'active' AND (s.expires_at IS NULL OR s.expires_at > now()))
 ORDER BY 1;
COMMIT;
RESET ROLE;
SELECT count(*) AS counter_rows_differing FROM mcp.verify_counters();
SELECT u.email, p.plan_type, p.active_instances FROM mcp.users u JOIN mcp.user_plans p ON p.user_id = u.id ORDER BY 1;
SELECT mcp_service_name, total_instances_created, active_instances_count FROM mcp.service_stats ORDER BY 1;
SELECT count(*) AS audit_rows, count(DISTINCT tableoid) > 1 AS several_partitions FROM mcp.token_audit_log;
-- the summary equals the plain aggregate, through both of its branches
SELECT count(*) AS summary_rows_differing FROM (
    (SELECT * FROM mcp.token_audit_summary
     EXCEPT ALL
     SELECT instance_id, user_id, operation, method, count(*), count(*) FILTER (WHERE status = 'success'),
            count(*) FILTER (WHERE status = 'failure'),
            round(100.0 * count(*) FILTER (WHERE status = 'success') / count(*), 2),
            min(created_at), max(created_at)
       FROM mcp.token_audit_log WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4)
    UNION ALL
    (SELECT instance_id, user_id, operation, method, count(*), count(*) FILTER (WHERE status = 'success'),
            count(*) FILTER (WHERE status = 'failure'),
            round(100.0 * count(*) FILTER (WHERE status = 'success') / count(*), 2),
            min(created_at), max(created_at)
       FROM mcp.token_audit_log WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4
     EXCEPT ALL
     SELECT * FROM mcp.token_audit_summary)) d;
SELECT (mcp.run_maintenance() ->> 'skipped') AS maintenance_skipped;
SELECT count(*) AS summary_rows_after_maintenance FROM mcp.token_audit_summary;
SELECT key_version, is_active, stored_values FROM mcp.key_status();
SELECT mcp.rotate_credentials(100) AS rotated;
