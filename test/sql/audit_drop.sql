-- DROP EXTENSION also removes the day partitions that mcp.ensure_audit_partitions and
-- maintenance created after CREATE EXTENSION (they are not members of the extension, but
-- depend on mcp.token_audit_log). Runs in a database of its own.
\set VERBOSITY terse
CREATE DATABASE mcp_audit_drop_test;
\c mcp_audit_drop_test
CREATE EXTENSION mcp_platform;
SELECT mcp.ensure_audit_partitions(now() - interval '3 days', now() + interval '3 days') AS created;
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'validate', 'success', now() - g * interval '1 day'
  FROM generate_series(0, 3) AS g;
SELECT (mcp.run_maintenance()->>'skipped')::boolean AS skipped;
SELECT count(*) AS day_partitions FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass
   AND inhrelid <> 'mcp.token_audit_log_default'::regclass;
-- the partitions are not extension members
SELECT count(*) AS member_partitions FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relname ~ '^token_audit_log_p';
DROP EXTENSION mcp_platform;
SELECT count(*) AS relations_left FROM pg_class WHERE relname ~ '^token_audit';
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'mcp'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'mcp'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'mcp'::regnamespace) AS catalog_rows_in_mcp;
DROP SCHEMA mcp;
\c contrib_regression
DROP DATABASE mcp_audit_drop_test;
