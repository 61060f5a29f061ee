-- The tenant argument of the API functions: mcp.distribute() made each a Citus distributed
-- function delegated by it, so a call that passes its tenant runs on the worker holding the
-- tenant's shards through the backend's own connection, and mixes with the backend's own
-- statements on those rows in one transaction (without it: 25001, 07_not_supported.sql). The
-- backend's own statements name the tenant (user_id = …), so that Citus sends each to the
-- tenant's shard alone.
\set VERBOSITY terse
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
\getenv w2 MCP_WORKER2_PORT
\c - postgres - :coord
SELECT pg_catalog.array_to_string(pg_catalog.array_agg(p.oid::regprocedure::text || ' by $'
           || (d.distribution_argument_index + 1) ORDER BY p.oid::regprocedure::text), E'\n') AS delegated
  FROM pg_catalog.pg_dist_object d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.force_delegation
   AND p.pronamespace = 'mcp'::regnamespace;
\c - app - :coord
SELECT mcp.sign_up('erin@example.com') AS erin \gset
SELECT mcp.sign_up('frank@example.com') AS frank \gset
\c - admin - :coord
SELECT mcp.set_plan(:'erin', 'pro');
-- every API function, each after a write of the backend's own to the tenant's rows, in one
-- transaction, through the coordinator and through each worker
\c - app - :coord
BEGIN;
SELECT mcp.set_tenant(:'erin');
UPDATE mcp.user_billing_details SET billing_email = 'erin@example.com' WHERE user_id = :'erin';
INSERT INTO mcp.user_billing_details (user_id, billing_email) VALUES (:'erin', 'erin@example.com');
SELECT mcp.create_instance('github', 'keyed', tenant => :'erin') AS keyed \gset
UPDATE mcp.mcp_service_table SET custom_name = 'keyed' WHERE user_id = :'erin' AND instance_id = :'keyed';
SELECT mcp.set_api_key(:'keyed', 'key-1', tenant => :'erin');
SELECT custom_name, credentials_updated_at IS NOT NULL AS key_set FROM mcp.mcp_service_table;
SELECT api_key FROM mcp.get_credentials(:'keyed', tenant => :'erin');
SELECT mcp.record_usage(:'keyed', :'erin');
SELECT usage_count FROM mcp.mcp_service_table WHERE instance_id = :'keyed';
SELECT plan_type, active_instances FROM mcp.plan_status(:'erin');
COMMIT;
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'erin');
SELECT mcp.create_instance('gmail', 'mail', tenant => :'erin') AS mail \gset
UPDATE mcp.mcp_service_table SET custom_name = 'mail' WHERE user_id = :'erin' AND instance_id = :'mail';
SELECT mcp.set_oauth_client(:'mail', 'client-9', 'client-secret-9', tenant => :'erin');
SELECT state FROM mcp.begin_oauth(:'mail', 'https://accounts.example.com/auth', tenant => :'erin') \gset
UPDATE mcp.user_billing_details SET billing_email = 'erin@example.org' WHERE user_id = :'erin';
SELECT instance_id = :'mail' AS same_instance FROM mcp.complete_oauth(:'state', tenant => :'erin');
SELECT mcp.store_oauth_tokens(:'mail', 'access-9', 'refresh-9', now() + interval '1 minute', 'read', tenant => :'erin');
SELECT oauth_status FROM mcp.mcp_service_table WHERE user_id = :'erin' AND instance_id = :'mail';
UPDATE mcp.mcp_service_table SET custom_name = 'mail' WHERE user_id = :'erin' AND instance_id = :'mail';
SELECT count(*) AS claimed FROM mcp.claim_token_refresh(interval '1 hour', 10, tenant => :'erin');
SELECT mcp.log_token_operation(:'mail', 'validate', 'success', 'oauth', tenant => :'erin') AS audit_id \gset
COMMIT;
SELECT :audit_id > 0 AS logged;
\c - app - :w2
BEGIN;
SELECT mcp.set_tenant(:'erin');
UPDATE mcp.mcp_service_table SET custom_name = 'renewed' WHERE user_id = :'erin' AND instance_id = :'keyed';
SELECT mcp.renew_instance(:'keyed', now() + interval '30 days', tenant => :'erin');
SELECT custom_name, renewed_count FROM mcp.mcp_service_table WHERE user_id = :'erin' AND instance_id = :'keyed';
COMMIT;
-- a transaction whose own statements reach several nodes commits with two-phase commit, which
-- cannot include the event a delegated call sends on another node than the backend's (here
-- revoke's, sent by the worker holding erin's shards): refused at COMMIT, nothing written;
-- name the tenant in the backend's statements
\c - postgres - :coord
SELECT CASE WHEN n.nodeport = :w1 THEN :w2 ELSE :w1 END AS other_worker
  FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
 WHERE p.shardid = get_shard_id_for_distribution_column('mcp.mcp_credentials', :'erin'::uuid) \gset
\c - app - :other_worker
BEGIN;
SELECT mcp.set_tenant(:'erin');
UPDATE mcp.mcp_service_table SET custom_name = 'everywhere';
SELECT mcp.revoke_credentials(:'mail', tenant => :'erin');
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'erin');
SELECT count(*) AS renamed FROM mcp.mcp_service_table WHERE user_id = :'erin' AND custom_name = 'everywhere';
SELECT refresh_state FROM mcp.refresh_status WHERE user_id = :'erin' AND instance_id = :'mail';
COMMIT;
BEGIN;
SELECT mcp.set_tenant(:'erin');
UPDATE mcp.mcp_service_table SET custom_name = 'mail' WHERE user_id = :'erin' AND instance_id = :'mail';
SELECT mcp.revoke_credentials(:'mail', tenant => :'erin');
SELECT refresh_state FROM mcp.refresh_status WHERE user_id = :'erin' AND instance_id = :'mail';
COMMIT;
-- what the transactions wrote, read back through the coordinator
\c - app - :coord
BEGIN;
SELECT mcp.set_tenant(:'erin');
SELECT custom_name, status, usage_count FROM mcp.mcp_service_table ORDER BY custom_name;
SELECT billing_email FROM mcp.user_billing_details;
SELECT operation, status FROM mcp.token_audit_log ORDER BY created_at, operation;
SELECT refresh_state FROM mcp.refresh_status;
COMMIT;
-- the plan limit still holds inside such a transaction (frank is on the free plan)
BEGIN;
SELECT mcp.set_tenant(:'frank');
INSERT INTO mcp.user_billing_details (user_id, billing_email) VALUES (:'frank', 'frank@example.com');
SELECT mcp.create_instance('github', tenant => :'frank') AS first \gset
SELECT mcp.create_instance('github', tenant => :'frank');
ROLLBACK;
-- another tenant's id: MC302, wherever the call runs
\set VERBOSITY sqlstate
BEGIN;
SELECT mcp.set_tenant(:'frank');
SELECT mcp.plan_status(:'erin');
ROLLBACK;
\c - app - :w1
BEGIN;
SELECT mcp.set_tenant(:'frank');
SELECT * FROM mcp.get_credentials(:'keyed', tenant => :'erin');
ROLLBACK;
\set VERBOSITY terse
-- a NULL tenant argument is the transaction's tenant and is never delegated: Citus 13.2 would
-- crash the backend on a NULL distribution argument (src/pg/tenant_routing.cpp); as a literal,
-- a bound parameter (custom and generic plans), a cast and a named argument
\c - app - :coord
BEGIN;
SELECT mcp.set_tenant(:'erin');
SELECT mcp.record_usage(:'keyed', NULL);
SELECT mcp.record_usage(:'keyed', tenant => NULL);
SELECT mcp.record_usage(:'keyed', NULL::text::uuid);
SELECT count(*) AS rows FROM mcp.get_credentials(:'keyed', NULL);
PREPARE usage(uuid, uuid) AS SELECT mcp.record_usage($1, $2);
EXECUTE usage(:'keyed', NULL);
EXECUTE usage(:'keyed', NULL);
EXECUTE usage(:'keyed', NULL);
EXECUTE usage(:'keyed', NULL);
EXECUTE usage(:'keyed', NULL);
EXECUTE usage(:'keyed', NULL);
EXECUTE usage(:'keyed', NULL);
COMMIT;
SELECT 'the backend lives' AS alive;
BEGIN;
SELECT mcp.set_tenant(:'erin');
SELECT usage_count FROM mcp.mcp_service_table WHERE instance_id = :'keyed';
COMMIT;
-- without a tenant set, a NULL argument is still no tenant
SELECT mcp.record_usage(:'keyed', NULL);
-- a call that is not the whole statement is not delegated: it runs as before (here after the
-- backend's write: 25001)
BEGIN;
SELECT mcp.set_tenant(:'erin');
UPDATE mcp.mcp_service_table SET custom_name = custom_name;
SELECT (c).api_key FROM (SELECT mcp.get_credentials(:'keyed', :'erin') AS c) AS s;
ROLLBACK;
\c - admin - :coord
SELECT mcp.erase_user(:'erin') IS NOT NULL AS erased, mcp.erase_user(:'frank') IS NOT NULL AS erased;
