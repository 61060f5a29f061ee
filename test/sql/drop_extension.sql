-- DROP EXTENSION removes every object it created except the cluster-wide roles. Runs in a
-- database of its own so the other tests keep their extension.
\set VERBOSITY terse
CREATE DATABASE mcp_drop_test;
\c mcp_drop_test
CREATE EXTENSION mcp_platform;
SELECT count(*) > 0 AS objects_after_create
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'mcp_platform';
-- data in every table does not prevent the drop
INSERT INTO mcp.users (email) VALUES ('drop@example.com');
DROP EXTENSION mcp_platform;
-- nothing left: no relation, function, type, trigger or policy of ours. The schema mcp, which
-- CREATE EXTENSION made from the control file, stays behind empty (PostgreSQL 15 does not make
-- it a member of the extension; see README "Operations").
SELECT count(*) AS objects_left_in_mcp FROM pg_depend d
 WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = 'mcp'::regnamespace;
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'mcp'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'mcp'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'mcp'::regnamespace) AS catalog_rows_in_mcp;
-- the internal schema was the extension's own: it goes with it
SELECT to_regnamespace('mcp_internal') IS NULL AS internal_schema_dropped;
SELECT count(*) AS relations_left FROM pg_class WHERE relname ~ '^(users|user_plans|user_billing_details|mcp_table|mcp_service_table|mcp_credentials|token_audit)';
SELECT count(*) AS functions_left FROM pg_proc WHERE prosrc ~ '^mcp_' OR probin ~ 'mcp_platform';
SELECT count(*) AS policies_left FROM pg_policy WHERE polname IN ('tenant_isolation', 'admin_all');
SELECT count(*) AS event_triggers_left FROM pg_event_trigger WHERE evtfoid::regproc::text ~ 'mcp';
-- the roles remain (cluster-wide; they may hold grants in other databases)
SELECT rolname FROM pg_roles WHERE rolname IN ('mcp_app', 'mcp_admin') ORDER BY 1;
-- and the extension can be created again with the roles already present
CREATE EXTENSION mcp_platform;
SELECT count(*) AS tables_after_recreate FROM pg_tables WHERE schemaname = 'mcp';
DROP EXTENSION mcp_platform;
DROP SCHEMA mcp;
\c contrib_regression
DROP DATABASE mcp_drop_test;
