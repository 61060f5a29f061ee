-- The mcp_platform.* settings (src/pg/settings.cpp): all defined in one place, the prefix
-- reserved, and mcp_setting() to read one as SHOW prints it.
\set VERBOSITY default

-- 1. Load the library in this session first (any C function of the extension): before
--    that, an mcp_platform.* name is a placeholder like any other custom setting.
SELECT mcp.current_user_id() IS NULL AS library_loaded;

-- A misspelled mcp_platform.* setting is refused, however it is set.
SET mcp_platform.key_flie = 'x';
\echo :LAST_ERROR_SQLSTATE
SET mcp_platform.audit_retenton = '30 days';
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('mcp_platform.no_such_setting', 'x', false);
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL mcp_platform.maintenance_intervall = '1min';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- and nothing was created under the prefix
SELECT count(*) AS misspelled_settings FROM pg_settings
 WHERE name IN ('mcp_platform.key_flie', 'mcp_platform.audit_retenton',
                'mcp_platform.no_such_setting', 'mcp_platform.maintenance_intervall');

-- The real settings are all there, and still settable.
SELECT name, context, vartype, unit FROM pg_settings
 WHERE name LIKE 'mcp_platform.%' AND name <> 'mcp_platform.maintenance_databases'
 ORDER BY name;
SET mcp_platform.audit_retention = '30 days';
SHOW mcp_platform.audit_retention;
RESET mcp_platform.audit_retention;
SHOW mcp_platform.audit_retention;
-- Other prefixes are not affected (mcp.user_id is the tenant of the transaction).
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-0000000000aa', true) IS NOT NULL AS tenant_set;
SELECT mcp.current_user_id();
ROLLBACK;

-- 2. mcp_setting(name text) → text: declared here in a test schema (its SQL declaration
--    belongs to the install script), in a new session whose first call loads the library.
CREATE SCHEMA mcp_test;
CREATE FUNCTION mcp_test.setting(name text) RETURNS text
    AS '$libdir/mcp_platform', 'mcp_setting' LANGUAGE C STABLE STRICT PARALLEL SAFE;
GRANT USAGE ON SCHEMA mcp_test TO mcp_app;
\c
\set VERBOSITY default
SELECT mcp_test.setting('mcp_platform.audit_retention') AS audit_retention;
-- the value as SHOW prints it, with its unit
SELECT mcp_test.setting('mcp_platform.oauth_state_ttl') AS oauth_state_ttl,
       mcp_test.setting('mcp_platform.token_refresh_lease') AS token_refresh_lease,
       mcp_test.setting('mcp_platform.audit_partitions_ahead') AS audit_partitions_ahead,
       mcp_test.setting('mcp_platform.audit_retention_trim') AS audit_retention_trim,
       mcp_test.setting('mcp_platform.active_key_version') AS active_key_version;
SELECT count(*) FILTER (WHERE mcp_test.setting(name) IS DISTINCT FROM current_setting(name))
           AS differ_from_show,
       count(*) > 0 AS some_compared
  FROM pg_settings
 WHERE name LIKE 'mcp_platform.%'
   AND name NOT IN ('mcp_platform.key_file', 'mcp_platform.key_command');
-- the current value, not the default; names are case-insensitive as in SHOW
SET mcp_platform.oauth_state_ttl = '90s';
SELECT mcp_test.setting('MCP_PLATFORM.OAuth_State_TTL') AS oauth_state_ttl;
RESET mcp_platform.oauth_state_ttl;
SELECT mcp_test.setting(NULL) IS NULL AS strict;

-- a name outside mcp_platform.: 22023
SELECT mcp_test.setting('work_mem');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.setting('mcp_platformx.audit_retention');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.setting('mcp.user_id');
\echo :LAST_ERROR_SQLSTATE
-- the key source settings are never shown, even to a superuser: 42501
SELECT mcp_test.setting('mcp_platform.key_file');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.setting('MCP_Platform.Key_Command');
\echo :LAST_ERROR_SQLSTATE
-- an mcp_platform name that does not exist: 42704
SELECT mcp_test.setting('mcp_platform.key_flie');
\echo :LAST_ERROR_SQLSTATE

-- An application role reads what SHOW shows it, and no superuser-only setting.
SET ROLE mcp_app;
SELECT mcp_test.setting('mcp_platform.audit_retention') AS audit_retention;
-- (PostgreSQL 16 reworded the error for reading a superuser-only setting; its SQLSTATE,
-- 42501, is the same on every version: that is what these lines show and check)
\set VERBOSITY sqlstate
SELECT mcp_test.setting('mcp_platform.active_key_version');
\echo :LAST_ERROR_SQLSTATE
SHOW mcp_platform.active_key_version;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT mcp_test.setting('mcp_platform.key_file');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP FUNCTION mcp_test.setting(text);
REVOKE USAGE ON SCHEMA mcp_test FROM mcp_app;
DROP SCHEMA mcp_test;
