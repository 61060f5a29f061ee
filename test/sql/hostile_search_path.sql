-- A hostile tenant that owns a schema puts it first on its search_path, filled with trap
-- functions and operators (the names and signatures the extension's own statements use), and
-- then drives every trigger and API path. Nothing the extension runs may resolve a name or an
-- operator through that path: the trap records every call, and must record none. (On 1.0
-- the plan-limit trigger's expiry sweep ran `=` from this schema as the superuser owner.)
-- The hostile session's own statements below call only schema-qualified names, so any trap
-- call comes from the extension.
-- this file sets its tenants at session level (one connection, several transactions)
SET mcp_platform.tenant_scope = session;
\set VERBOSITY terse
SET client_min_messages = warning;

CREATE ROLE regress_hostile LOGIN IN ROLE mcp_app;
CREATE ROLE regress_hostile_admin LOGIN IN ROLE mcp_admin;
CREATE ROLE regress_hostile_worker LOGIN IN ROLE mcp_worker;
CREATE SCHEMA evil AUTHORIZATION regress_hostile;
CREATE TABLE evil.sprung (fn text, run_as name, at timestamptz DEFAULT pg_catalog.clock_timestamp(), q text DEFAULT pg_catalog.current_query());
ALTER TABLE evil.sprung OWNER TO regress_hostile;
GRANT INSERT, SELECT ON evil.sprung TO PUBLIC;

SET ROLE regress_hostile;
-- the trap: counts itself (a sequence survives a rollback), says who ran it and records it,
-- then behaves like the real thing
CREATE SEQUENCE evil.trap_calls;
CREATE FUNCTION evil.trap(fn text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.nextval('evil.trap_calls');
    RAISE WARNING 'trap % ran as %', fn, current_user;
    INSERT INTO evil.sprung (fn, run_as) VALUES (fn, current_user);
END
$$;
DO $plant$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('=', 'uuid', 'uuid', 'uuid_eq'), ('<>', 'uuid', 'uuid', 'uuid_ne'),
        ('=', 'text', 'text', 'texteq'), ('=', 'varchar', 'varchar', 'texteq'),
        ('=', 'varchar', 'text', 'texteq'), ('=', 'integer', 'integer', 'int4eq'),
        ('<>', 'integer', 'integer', 'int4ne'), ('<', 'integer', 'integer', 'int4lt'),
        ('=', 'bigint', 'bigint', 'int8eq'), ('=', 'date', 'date', 'date_eq'),
        ('<', 'date', 'date', 'date_lt'), ('>', 'date', 'date', 'date_gt'),
        ('<', 'timestamptz', 'timestamptz', 'timestamptz_lt'),
        ('<=', 'timestamptz', 'timestamptz', 'timestamptz_le'),
        ('>=', 'timestamptz', 'timestamptz', 'timestamptz_ge'),
        ('>', 'timestamptz', 'timestamptz', 'timestamptz_gt'))
        AS v(op, l, r, impl)
    LOOP
        EXECUTE format('CREATE FUNCTION evil.%s(a %s, b %s) RETURNS boolean LANGUAGE sql '
                       'AS $f$ SELECT evil.trap(%L); SELECT pg_catalog.%s(a, b) $f$',
                       'trap_' || o.impl || '_' || replace(o.l, ' ', '_') || '_' || o.r, o.l, o.r, o.op || ' ' || o.l, o.impl);
        EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.%s)',
                       o.op, o.l, o.r, 'trap_' || o.impl || '_' || replace(o.l, ' ', '_') || '_' || o.r);
    END LOOP;
END
$plant$;
CREATE FUNCTION evil."+"(a bigint, b integer) RETURNS bigint LANGUAGE sql
    AS $f$ SELECT evil.trap('+ bigint'); SELECT pg_catalog.int84pl(a, b) $f$;
CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil."+");
-- a type named like a built-in one, with an implicit cast into it from text: a cast to uuid
-- resolved through this path would run the trap
CREATE TYPE evil.uuid AS (v text);
CREATE FUNCTION evil.trap_uuid(text) RETURNS evil.uuid LANGUAGE sql
    AS $f$ SELECT evil.trap('cast to uuid'); SELECT ROW($1)::evil.uuid $f$;
CREATE CAST (text AS evil.uuid) WITH FUNCTION evil.trap_uuid(text) AS IMPLICIT;
-- functions with the names of built-ins the extension calls
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql
    AS $f$ SELECT evil.trap('now'); SELECT pg_catalog.now() $f$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE sql
    AS $f$ SELECT evil.trap('gen_random_uuid'); SELECT pg_catalog.gen_random_uuid() $f$;
CREATE FUNCTION evil.jsonb_build_object(text, boolean) RETURNS jsonb LANGUAGE sql
    AS $f$ SELECT evil.trap('jsonb_build_object'); SELECT pg_catalog.jsonb_build_object($1, $2) $f$;
CREATE FUNCTION evil.left(text, integer) RETURNS text LANGUAGE sql
    AS $f$ SELECT evil.trap('left'); SELECT pg_catalog.left($1, $2) $f$;
CREATE FUNCTION evil.length(text) RETURNS integer LANGUAGE sql
    AS $f$ SELECT evil.trap('length'); SELECT pg_catalog.length($1) $f$;
CREATE FUNCTION evil.format(text, text) RETURNS text LANGUAGE sql
    AS $f$ SELECT evil.trap('format'); SELECT pg_catalog.format($1, $2) $f$;
CREATE FUNCTION evil.current_setting(text) RETURNS text LANGUAGE sql
    AS $f$ SELECT evil.trap('current_setting'); SELECT pg_catalog.current_setting($1) $f$;
CREATE FUNCTION evil.count(uuid) RETURNS bigint LANGUAGE sql
    AS $f$ SELECT evil.trap('count'); SELECT 0::bigint $f$;
CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE sql
    AS $f$ SELECT evil.trap('pg_notify'); SELECT pg_catalog.pg_notify($1, $2) $f$;
CREATE FUNCTION evil.isfinite(timestamptz) RETURNS boolean LANGUAGE sql
    AS $f$ SELECT evil.trap('isfinite'); SELECT pg_catalog.isfinite($1) $f$;
CREATE FUNCTION evil.jsonb_strip_nulls(jsonb) RETURNS jsonb LANGUAGE sql
    AS $f$ SELECT evil.trap('jsonb_strip_nulls'); SELECT pg_catalog.jsonb_strip_nulls($1) $f$;
RESET ROLE;

-- ---- the stage (as the superuser, with a clean search_path) -------------------------------
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('e5000000-0000-0000-0000-000000000001', 'hostile_gh', 'GitHub', 7301, 'api_key'),
       ('e5000000-0000-0000-0000-000000000002', 'hostile_gm', 'Gmail', 7302, 'oauth');
INSERT INTO mcp.users (id, email) VALUES ('e0000000-0000-0000-0000-00000000000e', 'hostile@example.com');
-- a free user's only active instance, already past its expiry: the next activation makes the
-- plan-limit trigger sweep it (with the owner's rights)
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, expires_at)
SELECT 'e1000000-0000-0000-0000-000000000001', 'e0000000-0000-0000-0000-00000000000e', mcp_service_id,
       now() + interval '1 hour'
  FROM mcp.mcp_table WHERE mcp_service_name = 'hostile_gh';
UPDATE mcp.mcp_service_table SET expires_at = now() - interval '1 minute'
 WHERE instance_id = 'e1000000-0000-0000-0000-000000000001';

-- ---- the attack, as a backend role ---------------------------------------------------------
SET ROLE regress_hostile;
SET search_path = evil, pg_catalog, mcp, public;
-- the 1.0 exploit: a plain INSERT makes the trigger sweep the expired instance
BEGIN;
SELECT pg_catalog.set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000e', true) IS NOT NULL AS tenant;
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id, custom_name)
VALUES ('e0000000-0000-0000-0000-00000000000e', 'e5000000-0000-0000-0000-000000000001', 'plain insert');
ROLLBACK;
-- and through the API
BEGIN;
SELECT pg_catalog.set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000e', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('hostile_gh', 'second') IS NOT NULL AS created_after_sweep;
SELECT mcp.create_instance('hostile_gh', 'third');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT pg_catalog.set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000e', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('hostile_gh', 'key holder') AS key_inst \gset
SELECT mcp.set_api_key(:'key_inst', 'sk-hostile-0123456789');
SELECT api_key FROM mcp.get_credentials(:'key_inst');
SELECT mcp.record_usage(:'key_inst');
SELECT mcp.renew_instance(:'key_inst', '2999-01-01');
SELECT mcp.log_token_operation(:'key_inst', 'validate', 'success', 'api_key') IS NOT NULL AS logged;
SELECT mcp.revoke_credentials(:'key_inst');
SELECT mcp.expire_instances() IS NOT NULL AS expired;
SELECT count(*) IS NOT NULL AS summary FROM mcp.token_audit_summary;
SELECT count(*) IS NOT NULL AS stats FROM mcp.service_stats;
DELETE FROM mcp.mcp_service_table WHERE instance_id OPERATOR(pg_catalog.=) :'key_inst'::pg_catalog.uuid;
COMMIT;
RESET ROLE;
RESET search_path;
-- OAuth: a pro plan leaves room for the flow
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id = 'e0000000-0000-0000-0000-00000000000e';
SET ROLE regress_hostile;
SET search_path = evil, pg_catalog, mcp, public;
BEGIN;
SELECT pg_catalog.set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000e', true) IS NOT NULL AS tenant;
SELECT mcp.create_instance('hostile_gm', 'oauth') AS oauth_inst \gset
SELECT mcp.set_oauth_client(:'oauth_inst', 'client', 'client-secret');
SELECT state AS st FROM mcp.begin_oauth(:'oauth_inst', 'https://provider.example/auth') \gset
SELECT code_verifier IS NOT NULL AS verifier FROM mcp.complete_oauth(:'st');
SELECT mcp.store_oauth_tokens(:'oauth_inst', 'access', 'refresh', pg_catalog.now(), 'scope');
SELECT pg_catalog.count(*) AS claimed FROM mcp.claim_token_refresh('1 hour', 10);
COMMIT;
RESET ROLE;
RESET search_path;

-- ---- a refresh worker (no tenant), with the same path ----------------------------------------
-- the tenant's lease above runs 5 minutes: the worker's clock is 10 minutes on
SET mcp_platform.refresh_clock_offset = '10min';
SET ROLE regress_hostile_worker;
SET search_path = evil, pg_catalog, mcp, public;
SELECT c.lease_token AS lt FROM mcp.claim_refreshes(100) c
 WHERE c.instance_id OPERATOR(pg_catalog.=) :'oauth_inst'::pg_catalog.uuid \gset
SELECT mcp.fail_refresh(:'lt', 'http_503', 'unavailable') AS failed;
RESET ROLE;
SET mcp_platform.refresh_clock_offset = '11min';
SET ROLE regress_hostile_worker;
SET search_path = evil, pg_catalog, mcp, public;
SELECT c.lease_token AS lt FROM mcp.claim_refreshes(100) c
 WHERE c.instance_id OPERATOR(pg_catalog.=) :'oauth_inst'::pg_catalog.uuid \gset
SELECT mcp.complete_refresh(:'lt', 'access-2', NULL, pg_catalog.now()) IS NOT NULL AS completed;
SELECT mcp.complete_refresh(:'lt', 'access-3', NULL, pg_catalog.now());
\echo :LAST_ERROR_SQLSTATE
SELECT pg_catalog.count(*) IS NOT NULL AS states FROM mcp.refresh_status;
RESET ROLE;
RESET mcp_platform.refresh_clock_offset;
SET ROLE regress_hostile;
SET search_path = evil, pg_catalog, mcp, public;
SELECT pg_catalog.set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000e', false) IS NOT NULL AS tenant;
SELECT mcp.revoke_credentials(:'oauth_inst', true) AS revoked;
-- sign-up (the free-plan trigger), the login lookup, and a profile update (the updated_at
-- trigger; the tenant's own row)
SELECT pg_catalog.set_config('mcp.user_id', 'e0000000-0000-0000-0000-00000000000e', false) IS NOT NULL AS tenant;
SELECT mcp.sign_up('hostile2@example.com') IS NOT NULL AS signed_up;
SELECT mcp.find_user('hostile2@example.com') IS NOT NULL AS found;
UPDATE mcp.users SET name = 'Eve' WHERE email OPERATOR(pg_catalog.=) 'hostile@example.com'::pg_catalog.text;
RESET ROLE;
RESET search_path;

-- ---- the platform's operator, with the same path -------------------------------------------
SET ROLE regress_hostile_admin;
SET search_path = evil, pg_catalog, mcp, public;
SELECT mcp.set_plan('e0000000-0000-0000-0000-00000000000e', 'free');
SELECT pg_catalog.count(*) AS drift FROM mcp.verify_counters();
SELECT mcp.repair_counters() IS NOT NULL AS repaired;
SELECT mcp.refresh_service_stats() IS NOT NULL AS refreshed;
SELECT mcp.ensure_audit_partitions('2026-01-01', '2026-01-02') IS NOT NULL AS partitions;
SELECT mcp.cleanup_old_token_audit_logs('3650 days') IS NOT NULL AS cleaned;
SELECT (mcp.run_maintenance() OPERATOR(pg_catalog.->>) 'skipped') AS skipped;
SELECT mcp.rotate_credentials(10) IS NOT NULL AS rotated;
SELECT pg_catalog.count(*) IS NOT NULL AS key_status FROM mcp.key_status();
RESET ROLE;
RESET search_path;

-- the verdict: no trap ran, as anyone
SELECT fn, run_as, q AS statement FROM evil.sprung ORDER BY at;
SELECT count(*) AS traps_recorded, (SELECT last_value FROM evil.trap_calls) AS trap_calls,
       (SELECT is_called FROM evil.trap_calls) AS any_trap_called FROM evil.sprung;

-- ---- clean up ------------------------------------------------------------------------------
DELETE FROM mcp.users WHERE email IN ('hostile@example.com', 'hostile2@example.com');
DELETE FROM mcp.mcp_table WHERE mcp_service_name IN ('hostile_gh', 'hostile_gm');
DROP SCHEMA evil CASCADE;
DROP ROLE regress_hostile;
DROP ROLE regress_hostile_admin;
DROP ROLE regress_hostile_worker;
