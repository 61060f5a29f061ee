-- The audit row of mcp.complete_refresh, written below the statement level by one writer per
-- call site and statement (src/pg/audit_writer.cpp), against what an INSERT statement does:
-- the identity and created_at filled, the row routed to its partition (one created in the same
-- transaction is used by the next statement), row triggers fired, DDL on the log possible right
-- after, the rows of a statement that failed (MC203 in the middle of a batch, or an error in a
-- trigger on the log) undone while the batch's other statements keep theirs, the INSERT
-- statement used instead where the log has statement-level triggers, and the statement forms
-- used under Citus.
SET mcp_platform.tenant_scope = session;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('aw_oauth', 'AW OAuth', 7501, 'oauth');
INSERT INTO mcp.users (id, email) VALUES ('e2000000-0000-0000-0000-00000000000a', 'audit-writer@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id = 'e2000000-0000-0000-0000-00000000000a';
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
SELECT ('e2100000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid,
       'e2000000-0000-0000-0000-00000000000a', t.mcp_service_id
  FROM generate_series(1, 12) n, mcp.mcp_table t WHERE t.mcp_service_name = 'aw_oauth';
-- credentials of earlier tests are not part of this queue
UPDATE mcp.mcp_credentials SET refresh_due_at = NULL
 WHERE user_id <> 'e2000000-0000-0000-0000-00000000000a';
SET ROLE mcp_app;
SELECT set_config('mcp.user_id', 'e2000000-0000-0000-0000-00000000000a', false) IS NOT NULL AS tenant;
SELECT count(mcp.set_oauth_client(s.instance_id, 'client', 'secret')),
       count(mcp.store_oauth_tokens(s.instance_id, 'access', 'refresh', now() + interval '1 hour', NULL))
  FROM mcp.mcp_service_table s;
RESET ROLE;
-- Test scaffolding: these credentials (by the instance's last two digits) due now, unleased.
CREATE FUNCTION pg_temp.due(VARIADIC inst integer[]) RETURNS void
    LANGUAGE sql AS $$
    UPDATE mcp.mcp_credentials c SET refresh_lease = NULL, refresh_claimed_until = NULL,
           refresh_due_at = now() - interval '1 minute' * right(c.instance_id::text, 2)::integer
     WHERE c.user_id = 'e2000000-0000-0000-0000-00000000000a'
       AND right(c.instance_id::text, 2)::integer = ANY (inst) $$;
-- The log's refresh rows: per partition, with their metadata.
CREATE FUNCTION pg_temp.refresh_rows()
    RETURNS TABLE (partition text, rows bigint, ids bigint, metadata jsonb, at_start boolean)
    LANGUAGE sql AS $$
    SELECT CASE WHEN tableoid = 'mcp.token_audit_log_default'::regclass THEN 'default' ELSE 'day' END,
           count(*), count(DISTINCT audit_id), metadata, bool_and(created_at <= now())
      FROM mcp.token_audit_log
     WHERE user_id = 'e2000000-0000-0000-0000-00000000000a' AND operation = 'refresh'
     GROUP BY 1, 4 ORDER BY 1, 4 $$;
TRUNCATE mcp.token_audit_log;
SELECT count(*) AS day_partitions FROM pg_inherits
 WHERE inhparent = 'mcp.token_audit_log'::regclass AND inhrelid <> 'mcp.token_audit_log_default'::regclass;

-- ---- one statement settles three leases: three rows, the identity filled -------------------
SELECT pg_temp.due(1, 2, 3);
SET ROLE mcp_worker;
SELECT count(mcp.complete_refresh(c.lease_token, 'access-new', NULL, now() + interval '1 hour')) AS settled
  FROM mcp.claim_refreshes(3) c;
RESET ROLE;
SELECT * FROM pg_temp.refresh_rows();

-- ---- a partition made in the same transaction, between two statements ----------------------
SELECT pg_temp.due(4, 5);
BEGIN;
SET LOCAL ROLE mcp_worker;
SELECT min(lease_token::text) AS l1, max(lease_token::text) AS l2 FROM mcp.claim_refreshes(2) \gset
SELECT mcp.complete_refresh(:'l1', 'access-new', 'refresh-new', now() + interval '1 hour');
RESET ROLE;
-- DDL on the log right after a statement that wrote to it (the rows move out of the DEFAULT
-- partition into the new day's)
SELECT mcp.ensure_audit_partitions(now(), now()) AS partitions_created;
SET LOCAL ROLE mcp_worker;
SELECT mcp.complete_refresh(:'l2', 'access-new', 'refresh-new', now() + interval '1 hour');
COMMIT;
SELECT * FROM pg_temp.refresh_rows();

-- ---- row triggers on the log fire for each row; an error in one undoes its statement ---------
CREATE TABLE public.aw_seen (instance text);
CREATE FUNCTION public.aw_row_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF right(NEW.instance_id::text, 2) = '08' AND NEW.operation = 'refresh' THEN
        RAISE EXCEPTION 'refused by a trigger' USING ERRCODE = 'P0099';
    END IF;
    INSERT INTO public.aw_seen VALUES (right(NEW.instance_id::text, 2) || ':' || NEW.operation);
    RETURN NULL;
END $$;
CREATE TRIGGER aw_row AFTER INSERT ON mcp.token_audit_log
    FOR EACH ROW EXECUTE FUNCTION public.aw_row_trigger();
SELECT pg_temp.due(6, 7);
SET ROLE mcp_worker;
SELECT count(mcp.complete_refresh(c.lease_token, 'access-new', NULL, now() + interval '1 hour')) AS settled
  FROM mcp.claim_refreshes(2) c;
RESET ROLE;
SELECT * FROM public.aw_seen ORDER BY 1;
-- 07 and 08 due: the statement settling both fails on 08's audit row, and undoes 07's too
SELECT pg_temp.due(7, 8);
SET ROLE mcp_worker;
SELECT max(lease_token::text) FILTER (WHERE right(instance_id::text, 2) = '07') AS l07,
       max(lease_token::text) FILTER (WHERE right(instance_id::text, 2) = '08') AS l08
  FROM mcp.claim_refreshes(2) \gset
SELECT set_config('aw.l07', :'l07', false) IS NOT NULL AS l07, set_config('aw.l08', :'l08', false) IS NOT NULL AS l08;
SELECT count(mcp.complete_refresh(l, 'access-new', NULL, now() + interval '1 hour')) AS settled
  FROM unnest(ARRAY[:'l07', :'l08']::uuid[]) l;
\echo :LAST_ERROR_SQLSTATE
-- caught by a worker function: the failed statement is undone, the next ones stand
DO $$
BEGIN
    BEGIN
        PERFORM count(mcp.complete_refresh(l, 'access-new', NULL, now() + interval '1 hour'))
           FROM unnest(ARRAY[current_setting('aw.l07'), current_setting('aw.l08')]::uuid[]) l;
    EXCEPTION WHEN SQLSTATE 'P0099' THEN
        RAISE WARNING 'caught: %', SQLERRM;
    END;
    PERFORM mcp.complete_refresh(current_setting('aw.l07')::uuid, 'access-new', NULL, now() + interval '1 hour');
END
$$;
RESET ROLE;
SELECT * FROM public.aw_seen ORDER BY 1;
SELECT right(instance_id::text, 2) AS inst, refresh_lease IS NOT NULL AS leased
  FROM mcp.mcp_credentials WHERE user_id = 'e2000000-0000-0000-0000-00000000000a'
   AND right(instance_id::text, 2) IN ('07', '08') ORDER BY 1;
DROP TRIGGER aw_row ON mcp.token_audit_log;

-- ---- MC203 in the middle of a batch caught: the statement's rows undone ----------------------
SELECT pg_temp.due(9);
SET ROLE mcp_worker;
SELECT lease_token AS l09 FROM mcp.claim_refreshes(1) \gset
SELECT set_config('aw.l09', :'l09', false) IS NOT NULL AS l09;
DO $$
BEGIN
    BEGIN
        PERFORM count(mcp.complete_refresh(l, 'access-new', NULL, now() + interval '1 hour'))
           FROM unnest(ARRAY[current_setting('aw.l09')::uuid, gen_random_uuid()]) l;
    EXCEPTION WHEN SQLSTATE 'MC203' THEN
        RAISE WARNING 'caught: %', SQLERRM;
    END;
END
$$;
-- the lease still holds: the settle of 09 was undone with its statement
SELECT mcp.complete_refresh(:'l09', 'access-new', NULL, now() + interval '1 hour');
RESET ROLE;

-- ---- the statement forms that run under Citus, on one node (the placeholder of a Citus
-- setting makes the C code take them): the settle and its audit row in one statement
SELECT set_config('citus.propagate_set_commands', 'local', false) IS NOT NULL AS statement_path;
SELECT pg_temp.due(12);
SET ROLE mcp_worker;
SELECT count(mcp.complete_refresh(c.lease_token, 'access-new', 'refresh-new', now() + interval '1 hour')) AS settled
  FROM mcp.claim_refreshes(1) c;
SELECT mcp.complete_refresh(gen_random_uuid(), 'access-new', NULL, now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT set_config('citus.propagate_set_commands', '', false) IS NOT NULL AS direct_path;

-- ---- a statement-level trigger on the log: the INSERT statement is run instead --------------
CREATE FUNCTION public.aw_statement_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.aw_seen VALUES ('statement');
    RETURN NULL;
END $$;
CREATE TRIGGER aw_statement AFTER INSERT ON mcp.token_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION public.aw_statement_trigger();
TRUNCATE public.aw_seen;
SELECT pg_temp.due(10, 11);
SET ROLE mcp_worker;
SELECT count(mcp.complete_refresh(c.lease_token, 'access-new', NULL, now() + interval '1 hour')) AS settled
  FROM mcp.claim_refreshes(2) c;
RESET ROLE;
-- one for the claim's INSERT, one for each settle's
SELECT instance, count(*) FROM public.aw_seen GROUP BY 1;
DROP TRIGGER aw_statement ON mcp.token_audit_log;
SELECT * FROM pg_temp.refresh_rows();

DROP TABLE public.aw_seen;
DROP FUNCTION public.aw_row_trigger(), public.aw_statement_trigger();
RESET mcp_platform.tenant_scope;
DELETE FROM mcp.users WHERE id = 'e2000000-0000-0000-0000-00000000000a';
DELETE FROM mcp.mcp_table WHERE mcp_service_name = 'aw_oauth';
\i test/include/reset_audit_log.sql
