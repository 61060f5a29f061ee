-- The keyring loader finds its key-check function on either release (src/pg/keyring_source.cpp):
-- mcp_internal.key_check from 1.1 on, mcp._key_check in 1.0. In a database of its own, on
-- release 1.0, with the function then moved the way 1.1 moves it. Each \c starts a backend
-- whose keyring is not loaded yet: its first encryption runs the key check, which records the
-- key's fingerprint in mcp.key_check.
\set VERBOSITY default
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS mcp_key_check_lookup;
CREATE DATABASE mcp_key_check_lookup;
\c mcp_key_check_lookup
CREATE EXTENSION mcp_platform VERSION '1.0';

-- 1. Release 1.0: mcp._key_check.
SELECT count(*) AS recorded_before FROM mcp.key_check;
\c
SET ROLE mcp_admin;
SELECT length(mcp.encrypt('x', '\x00')) > 0 AS sealed;
RESET ROLE;
SELECT count(*) AS recorded_by_mcp_key_check FROM mcp.key_check;

-- 2. Release 1.1: the same function as mcp_internal.key_check, in a schema no application
--    role may use. The loader finds it (the recording is redone after the TRUNCATE).
CREATE SCHEMA mcp_internal;
ALTER FUNCTION mcp._key_check(integer[], text[]) RENAME TO key_check;
ALTER FUNCTION mcp.key_check(integer[], text[]) SET SCHEMA mcp_internal;
TRUNCATE mcp.key_check;
\c
SET ROLE mcp_admin;
SELECT has_schema_privilege('mcp_internal', 'USAGE') AS admin_may_use_mcp_internal;
SELECT length(mcp.encrypt('x', '\x00')) > 0 AS sealed;
RESET ROLE;
SELECT count(*) AS recorded_by_mcp_internal_key_check FROM mcp.key_check;

-- 3. When both names exist, the 1.1 one is used.
CREATE FUNCTION mcp._key_check(versions integer[], fingerprints text[]) RETURNS integer
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the 1.0 name was called'; END $$;
TRUNCATE mcp.key_check;
\c
SELECT length(mcp.encrypt('x', '\x00')) > 0 AS sealed;
SELECT count(*) AS recorded_by_mcp_internal_key_check FROM mcp.key_check;
DROP FUNCTION mcp._key_check(integer[], text[]);

-- 4. Neither: no key is used (42883), and the session goes on.
ALTER FUNCTION mcp_internal.key_check(integer[], text[]) RENAME TO key_check_elsewhere;
\c
SELECT mcp.encrypt('x', '\x00');
\echo :LAST_ERROR_SQLSTATE
SELECT 1 AS session_still_works;

\c :regress_db
SET client_min_messages = warning;
DROP DATABASE mcp_key_check_lookup;
