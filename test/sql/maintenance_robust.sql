-- Maintenance that one bad row or one failing step cannot stop. Audit times outside
-- [1970, 10000) are refused where they enter (on 1.0 a row at 'infinity' made every
-- maintenance run fail, and a BC partition collided with its AD namesake); a step that fails
-- is reported and the other steps still run.
\set VERBOSITY terse
SET client_min_messages = warning;
INSERT INTO mcp.users (id, email) VALUES ('f0000000-0000-0000-0000-00000000000f', 'robust@example.com');
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('f5000000-0000-0000-0000-000000000001', 'robust_gh', 'GitHub', 7401, 'api_key');
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
VALUES ('f1000000-0000-0000-0000-000000000001', 'f0000000-0000-0000-0000-00000000000f',
        'f5000000-0000-0000-0000-000000000001');

-- direct inserts (mcp_admin may insert history) outside the era: 23514
SET ROLE mcp_admin;
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
VALUES ('f1000000-0000-0000-0000-000000000001', 'f0000000-0000-0000-0000-00000000000f', 'refresh', 'success', 'infinity');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
VALUES ('f1000000-0000-0000-0000-000000000001', 'f0000000-0000-0000-0000-00000000000f', 'refresh', 'success', '-infinity');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
VALUES ('f1000000-0000-0000-0000-000000000001', 'f0000000-0000-0000-0000-00000000000f', 'refresh', 'success', '0044-03-15 BC');
\echo :LAST_ERROR_SQLSTATE
-- partitions for such times: 22008 (non-finite: 22023, as before)
SELECT mcp.ensure_audit_partitions('0044-03-15 BC', '0044-03-15 BC');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.ensure_audit_partitions('9999-12-31', '10000-01-02');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.ensure_audit_partitions(now(), 'infinity');
\echo :LAST_ERROR_SQLSTATE
-- a time inside the era is accepted
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
VALUES ('f1000000-0000-0000-0000-000000000001', 'f0000000-0000-0000-0000-00000000000f', 'refresh', 'success', '1970-01-01 00:00:00+00');
RESET ROLE;
SELECT count(*) AS rows_at_the_epoch FROM mcp.token_audit_log WHERE created_at = '1970-01-01 00:00:00+00';

-- one failing step (an unparsable retention setting breaks retention only): the run reports
-- it, and expiry, the rollup and the partitions still happen
UPDATE mcp.mcp_service_table SET expires_at = now() + interval '1 second'
 WHERE instance_id = 'f1000000-0000-0000-0000-000000000001';
UPDATE mcp.mcp_service_table SET expires_at = now() - interval '1 second'
 WHERE instance_id = 'f1000000-0000-0000-0000-000000000001';
SET mcp_platform.audit_retention = 'ninety days';
SELECT (r->>'skipped')::boolean AS skipped, (r->>'expired_instances')::int AS expired_instances,
       (r->>'partitions_created')::int > 0 AS partitions_created, r->'removed_audit_rows' AS removed,
       jsonb_object_keys(r->'failed_steps') AS failed_step,
       r->'failed_steps'->>'audit_retention' AS error
  FROM mcp.run_maintenance() AS r;
RESET mcp_platform.audit_retention;
SELECT status FROM mcp.mcp_service_table WHERE instance_id = 'f1000000-0000-0000-0000-000000000001';
-- and with every step healthy, nothing is reported
SELECT (r->>'skipped')::boolean AS skipped, r->'failed_steps' AS failed_steps FROM mcp.run_maintenance() AS r;

-- clean up
\i test/include/reset_audit_log.sql
DELETE FROM mcp.users WHERE id = 'f0000000-0000-0000-0000-00000000000f';
DELETE FROM mcp.mcp_table WHERE mcp_service_id = 'f5000000-0000-0000-0000-000000000001';
