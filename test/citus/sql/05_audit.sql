-- the audit log: unique ids across nodes, an exact summary with late rows, retention counts
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - app - :coord
SELECT mcp.find_user('bob@example.com') AS bob \gset
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT instance_id AS keyed FROM mcp.mcp_service_table WHERE custom_name = 'keyed' \gset
SELECT mcp.log_token_operation(:'keyed', 'validate', 'success') > 0 AS logged;
COMMIT;
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT mcp.log_token_operation(:'keyed', 'validate', 'failure', 'api_key', 'http', 'timeout') > 0 AS logged;
COMMIT;
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT mcp.log_token_operation(:'keyed', 'validate', 'success') > 0 AS logged;
COMMIT;
-- late rows (a day ago, and older than the retention) and their partitions
\c - admin - :coord
SELECT mcp.ensure_audit_partitions(now() - interval '40 days', now() + interval '1 day') > 0 AS made;
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
VALUES (:'keyed', :'bob', 'validate', 'success', now() - interval '1 day'),
       (:'keyed', :'bob', 'refresh', 'failure', now() - interval '35 days'),
       (:'keyed', :'bob', 'refresh', 'success', now() - interval '36 days');
-- audit_id is unique across the cluster
SELECT count(*) AS audit_rows, count(DISTINCT audit_id) AS distinct_ids FROM mcp.token_audit_log;
-- the summary equals the raw 30-day aggregate, late row included
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'bob');
SELECT operation, method, total_operations, success_count, failure_count, success_rate
  FROM mcp.token_audit_summary ORDER BY 1, 2;
(SELECT instance_id, user_id, operation, method, total_operations, success_count, failure_count,
        success_rate, first_operation_at, last_operation_at FROM mcp.token_audit_summary
 EXCEPT
 SELECT instance_id, user_id, operation, method, count(*), count(*) FILTER (WHERE status = 'success'),
        count(*) FILTER (WHERE status = 'failure'),
        round(100.0 * count(*) FILTER (WHERE status = 'success') / count(*), 2), min(created_at), max(created_at)
   FROM mcp.token_audit_log WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4);
COMMIT;
-- retention drops the old partitions on every node and returns the exact count
\c - admin - :coord
SELECT mcp.cleanup_old_token_audit_logs(interval '30 days');
SELECT count(*) AS left_rows FROM mcp.token_audit_log;
SELECT mcp.run_maintenance() -> 'failed_steps' AS failed_steps;
