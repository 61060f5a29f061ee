-- The tenant argument of the API functions: optional (the transaction's tenant by default),
-- and when passed it must be the transaction's tenant (MC302 otherwise, nothing written); NULL
-- means the transaction's tenant. On Citus it lets a call run on the tenant's worker
-- (docs/citus.md); here it is only checked.
\set VERBOSITY terse
SET client_min_messages = warning;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('e5000000-0000-0000-0000-000000000001', 'arg_key', 'Keyed', 7901, 'api_key'),
    ('e5000000-0000-0000-0000-000000000002', 'arg_oauth', 'OAuth', 7902, 'oauth');
INSERT INTO mcp.users (id, email) VALUES
    ('e0000000-0000-0000-0000-0000000000a1', 'one@arg.example'),
    ('e0000000-0000-0000-0000-0000000000a2', 'two@arg.example');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id = 'e0000000-0000-0000-0000-0000000000a1';

-- every API function with the parameter: the last of its inputs, defaulting to NULL (the
-- transaction's tenant)
SELECT p.oid::regprocedure AS function,
       (SELECT a.name FROM unnest(p.proargnames, coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs])))
                           WITH ORDINALITY AS a(name, mode, n)
         WHERE a.mode IN ('i', 'b') ORDER BY a.n DESC LIMIT 1) = 'tenant' AS tenant_last,
       pg_get_expr(p.proargdefaults, 0) LIKE '%NULL::uuid' AS defaults_to_null
  FROM pg_proc p
 WHERE p.pronamespace = 'mcp'::regnamespace AND 'tenant' = ANY (p.proargnames)
 ORDER BY 1::text;

SET ROLE mcp_app;
-- ---- the tenant's own id, by position or by name, and NULL: as without it -------------------
BEGIN;
SELECT mcp.set_tenant('e0000000-0000-0000-0000-0000000000a1');
SELECT mcp.create_instance('arg_key', 'keyed', NULL, 'e0000000-0000-0000-0000-0000000000a1') AS keyed \gset
SELECT mcp.create_instance('arg_oauth', tenant => 'e0000000-0000-0000-0000-0000000000a1') AS oauth \gset
SELECT mcp.create_instance('arg_key', tenant => NULL) IS NOT NULL AS created_with_null;
SELECT mcp.set_api_key(:'keyed', 'sk-arg', tenant => 'e0000000-0000-0000-0000-0000000000a1');
SELECT api_key FROM mcp.get_credentials(:'keyed', 'e0000000-0000-0000-0000-0000000000a1');
SELECT api_key FROM mcp.get_credentials(:'keyed', NULL);
SELECT mcp.record_usage(:'keyed', 'e0000000-0000-0000-0000-0000000000a1');
SELECT mcp.renew_instance(:'keyed', now() + interval '1 day', 'e0000000-0000-0000-0000-0000000000a1');
SELECT plan_type, active_instances FROM mcp.plan_status('e0000000-0000-0000-0000-0000000000a1');
SELECT mcp.set_oauth_client(:'oauth', 'client-a', 'secret-a', 'e0000000-0000-0000-0000-0000000000a1');
SELECT state FROM mcp.begin_oauth(:'oauth', 'https://auth.example.com', 'e0000000-0000-0000-0000-0000000000a1') \gset
SELECT instance_id = :'oauth' AS same FROM mcp.complete_oauth(:'state', 'e0000000-0000-0000-0000-0000000000a1');
SELECT mcp.store_oauth_tokens(:'oauth', 'at', 'rt', now() + interval '1 minute', 'read', 'e0000000-0000-0000-0000-0000000000a1');
SELECT count(*) AS claimed FROM mcp.claim_token_refresh(interval '1 hour', 5, 'e0000000-0000-0000-0000-0000000000a1');
SELECT mcp.log_token_operation(:'keyed', 'validate', 'success', 'api_key', tenant => 'e0000000-0000-0000-0000-0000000000a1') > 0 AS logged;
SELECT mcp.revoke_credentials(:'oauth', false, 'e0000000-0000-0000-0000-0000000000a1');
COMMIT;

-- ---- another tenant's id: MC302 from every function (without the check each call would act --
-- for the transaction's tenant and succeed)
BEGIN;
SELECT mcp.set_tenant('e0000000-0000-0000-0000-0000000000a1');
\set VERBOSITY sqlstate
\set other '''e0000000-0000-0000-0000-0000000000a2'''
SAVEPOINT s;
SELECT mcp.create_instance('arg_key', tenant => :other);
ROLLBACK TO s;
SELECT mcp.set_api_key(:'keyed', 'sk-other', tenant => :other);
ROLLBACK TO s;
SELECT * FROM mcp.get_credentials(:'keyed', :other);
ROLLBACK TO s;
SELECT mcp.record_usage(:'keyed', :other);
ROLLBACK TO s;
SELECT mcp.renew_instance(:'keyed', now() + interval '2 days', :other);
ROLLBACK TO s;
SELECT * FROM mcp.plan_status(:other);
ROLLBACK TO s;
SELECT mcp.set_oauth_client(:'oauth', 'client-b', 'secret-b', :other);
ROLLBACK TO s;
SELECT * FROM mcp.begin_oauth(:'oauth', 'https://auth.example.com', :other);
ROLLBACK TO s;
SELECT * FROM mcp.complete_oauth(:'state', :other);
ROLLBACK TO s;
SELECT mcp.store_oauth_tokens(:'oauth', 'at2', 'rt2', now() + interval '1 hour', 'read', :other);
ROLLBACK TO s;
SELECT * FROM mcp.claim_token_refresh(interval '1 hour', 5, :other);
ROLLBACK TO s;
SELECT mcp.log_token_operation(:'keyed', 'validate', 'success', tenant => :other);
ROLLBACK TO s;
SELECT mcp.revoke_credentials(:'keyed', tenant => :other);
ROLLBACK TO s;
\set VERBOSITY terse
COMMIT;

-- ---- no tenant set: MC301, with or without the argument ------------------------------------
SELECT mcp.record_usage(:'keyed', 'e0000000-0000-0000-0000-0000000000a1');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp.plan_status(NULL);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

SELECT count(mcp.erase_user(id)) AS erased FROM mcp.users WHERE email LIKE '%@arg.example';
DELETE FROM mcp.mcp_table WHERE mcp_service_name LIKE 'arg_%';
