-- ===========================================================================================
-- Citus (docs/citus.md): mcp.distribute() turns a coordinator's schema into distributed
-- tables -- users, the service catalog and the cross-tenant bookkeeping as reference tables,
-- every tenant table distributed by user_id in one co-location group -- and
-- mcp.undistribute() brings every row back into the coordinator's local tables and drops every
-- shard (the drop path: undistribute, then DROP EXTENSION). The helpers below let the
-- triggers, which Citus runs on the shards of the worker that holds a row, find the shards of
-- the other tables on the same node. Without Citus none of this is called: a single node runs
-- exactly as before. Idempotent: the upgrade script runs it too (on every node).
-- ===========================================================================================

-- The tables mcp.distribute() makes reference tables (every node holds all rows), in an
-- order that respects their foreign keys.
CREATE OR REPLACE FUNCTION mcp_internal.citus_reference_tables() RETURNS regclass[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['mcp.users', 'mcp.mcp_table', 'mcp.service_counters', 'mcp.token_audit_rollup_state',
                 'mcp.token_audit_dirty_days', 'mcp.token_audit_day_rows',
                 'mcp_internal.maintenance_lock']::regclass[]
$$;
COMMENT ON FUNCTION mcp_internal.citus_reference_tables() IS 'the tables mcp.distribute() makes Citus reference tables';
REVOKE ALL ON FUNCTION mcp_internal.citus_reference_tables() FROM PUBLIC, mcp_app, mcp_admin;

-- The tenant tables mcp.distribute() distributes by user_id, co-located with the first one,
-- in an order that respects their foreign keys (the audit log with its partitions).
CREATE OR REPLACE FUNCTION mcp_internal.citus_tenant_tables() RETURNS regclass[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['mcp.user_plans', 'mcp.user_billing_details', 'mcp.mcp_service_table',
                 'mcp.mcp_credentials', 'mcp.token_audit_log', 'mcp.token_audit_daily',
                 'mcp.token_audit_window']::regclass[]
$$;
COMMENT ON FUNCTION mcp_internal.citus_tenant_tables() IS 'the tenant tables mcp.distribute() distributes by user_id';
REVOKE ALL ON FUNCTION mcp_internal.citus_tenant_tables() FROM PUBLIC, mcp_app, mcp_admin;

-- Whether Citus is installed in this database (CREATE EXTENSION citus).
CREATE OR REPLACE FUNCTION mcp_internal.citus_installed() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus')
$$;
COMMENT ON FUNCTION mcp_internal.citus_installed() IS 'whether the citus extension is installed in this database';
REVOKE ALL ON FUNCTION mcp_internal.citus_installed() FROM PUBLIC, mcp_app, mcp_admin;

-- Whether a table is a Citus table (distributed, reference or Citus local); false without Citus.
CREATE OR REPLACE FUNCTION mcp_internal.is_citus_table(tbl regclass) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result boolean := false;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1)'
           INTO result USING tbl;
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION mcp_internal.is_citus_table(regclass) IS 'whether a table is a Citus table';
REVOKE ALL ON FUNCTION mcp_internal.is_citus_table(regclass) FROM PUBLIC, mcp_app, mcp_admin;

-- Whether this node is a Citus worker: Citus installed, and this node is not the coordinator
-- (group 0). Maintenance runs on the coordinator only.
CREATE OR REPLACE FUNCTION mcp_internal.citus_worker() RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result boolean := false;
BEGIN
    IF mcp_internal.citus_installed() THEN
        EXECUTE 'SELECT NOT pg_catalog.citus_is_coordinator()' INTO result;
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_worker() IS 'whether this node is a Citus worker (not the coordinator)';
REVOKE ALL ON FUNCTION mcp_internal.citus_worker() FROM PUBLIC, mcp_app, mcp_admin;

-- 55000 unless Citus is installed and this is its coordinator.
CREATE OR REPLACE FUNCTION mcp_internal.require_citus_coordinator(action text) RETURNS void
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT mcp_internal.citus_installed() THEN
        RAISE EXCEPTION '% needs Citus, which is not installed in this database', action
            USING ERRCODE = '55000',
                  HINT = 'Install Citus, add citus to shared_preload_libraries, run CREATE EXTENSION citus and add the worker nodes first.';
    END IF;
    IF mcp_internal.citus_worker() THEN
        RAISE EXCEPTION '% runs on the Citus coordinator, not on a worker', action
            USING ERRCODE = '55000';
    END IF;
END
$$;
COMMENT ON FUNCTION mcp_internal.require_citus_coordinator(text) IS '55000 unless this is a Citus coordinator';
REVOKE ALL ON FUNCTION mcp_internal.require_citus_coordinator(text) FROM PUBLIC, mcp_app, mcp_admin;

-- The shard of a distributed table that holds a tenant's rows, when it is placed on this node
-- (NULL otherwise). For the triggers of a reference table, which fire on every node.
CREATE OR REPLACE FUNCTION mcp_internal.local_shard(tbl regclass, tenant uuid) RETURNS regclass
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = tbl AND p.partmethod = 'h') THEN
        RETURN NULL;  -- not distributed (yet)
    END IF;
    EXECUTE 'SELECT pg_catalog.to_regclass(pg_catalog.shard_name($1, s.shardid))
               FROM (SELECT pg_catalog.get_shard_id_for_distribution_column($1, $2) AS shardid) s
              WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                             WHERE p.shardid = s.shardid
                               AND p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g))'
       INTO result USING tbl, tenant;
    RETURN result;
END
$$;
COMMENT ON FUNCTION mcp_internal.local_shard(regclass, uuid) IS
    'the shard of a distributed table holding a tenant''s rows when it is placed on this node, else NULL';
REVOKE ALL ON FUNCTION mcp_internal.local_shard(regclass, uuid) FROM PUBLIC, mcp_app, mcp_admin;

-- For a shard of mcp_service_table: the shards on the same node that its plan-limit trigger
-- reads and writes (the co-located shard of user_plans and its unique index on user_id; the
-- local placement of the reference table mcp_table and its primary key). Called by the C
-- trigger (src/pg/plan_limits.cpp) once per shard and backend; no row when the relation is not
-- a shard of a Citus table.
CREATE OR REPLACE FUNCTION mcp_internal.plan_limit_shards(shard regclass,
    OUT user_plans regclass, OUT user_plans_by_user regclass, OUT mcp_table regclass, OUT mcp_table_pkey regclass)
    RETURNS SETOF record
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_shard') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT pg_catalog.to_regclass(''mcp.user_plans_'' || p.shardid),
                pg_catalog.to_regclass(''mcp.user_plans_one_per_user_'' || p.shardid),
                pg_catalog.to_regclass(''mcp.mcp_table_'' || t.shardid),
                pg_catalog.to_regclass(''mcp.mcp_table_pkey_'' || t.shardid)
           FROM pg_catalog.pg_dist_shard s
           JOIN pg_catalog.pg_dist_shard p ON p.logicalrelid = ''mcp.user_plans''::regclass
                                          AND p.shardminvalue = s.shardminvalue
          CROSS JOIN pg_catalog.pg_dist_shard t
          WHERE s.logicalrelid = ''mcp.mcp_service_table''::regclass
            AND s.shardid = pg_catalog.substring($1::text, ''_([0-9]+)$'')::bigint
            AND t.logicalrelid = ''mcp.mcp_table''::regclass'
        USING shard;
END
$$;
COMMENT ON FUNCTION mcp_internal.plan_limit_shards(regclass) IS
    'the shards on this node that the plan-limit trigger of a mcp_service_table shard uses';
REVOKE ALL ON FUNCTION mcp_internal.plan_limit_shards(regclass) FROM PUBLIC, mcp_app, mcp_admin;

-- The tenant policy of a table in the form Citus accepts: Citus refuses sub-selects in the
-- policies of its tables, so a Citus table calls mcp.current_user_id() directly (a STABLE
-- function: still one call per index scan when the policy column is indexed). A single node
-- keeps the (SELECT …) form of mcp_internal.make_tenant_table().
CREATE OR REPLACE FUNCTION mcp_internal.citus_tenant_policy(tbl regclass, tenant_column name DEFAULT 'user_id')
    RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', tbl);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                   'USING (%2$I = mcp.current_user_id()) '
                   'WITH CHECK (%2$I = mcp.current_user_id())', tbl, tenant_column);
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_tenant_policy(regclass, name) IS
    'the tenant policy of a table in the form Citus accepts (no sub-select)';
REVOKE ALL ON FUNCTION mcp_internal.citus_tenant_policy(regclass, name) FROM PUBLIC, mcp_app, mcp_admin;

-- Enables or disables the dirty-mark triggers of the audit log (disabled on Citus).
CREATE OR REPLACE FUNCTION mcp_internal.citus_audit_triggers(enable boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trig text;
BEGIN
    FOREACH trig IN ARRAY ARRAY['token_audit_log_dirty_insert', 'token_audit_log_dirty_delete',
                                'token_audit_log_dirty_update'] LOOP
        EXECUTE format('ALTER TABLE mcp.token_audit_log %s TRIGGER %I',
                       CASE WHEN enable THEN 'ENABLE' ELSE 'DISABLE' END, trig);
    END LOOP;
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_audit_triggers(boolean) IS
    'enables or disables the dirty-mark triggers of the audit log (disabled on Citus)';
REVOKE ALL ON FUNCTION mcp_internal.citus_audit_triggers(boolean) FROM PUBLIC, mcp_app, mcp_admin;

-- What mcp.distribute() sets up on each node, run there (the coordinator runs it on every
-- worker through Citus): the audit_id identity draws from a range of its own on each node
-- (node group g: from g * 2^48), so audit rows written through different nodes never share an
-- id; the coordinator's key fingerprints (mcp.key_check is per node), so a node whose keyring
-- holds a different key refuses it up front (MC102) instead of failing per row; the readers of
-- the views may resolve the view helpers in mcp_internal, which Citus names in the queries it
-- sends to the shards (those helpers are already granted to mcp_app and mcp_admin).
CREATE OR REPLACE FUNCTION mcp_internal.citus_node_setup(key_fingerprints jsonb) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node_group bigint;
    seq regclass := pg_catalog.pg_get_serial_sequence('mcp.token_audit_log', 'audit_id')::regclass;
BEGIN
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO node_group;
    IF node_group > 0 AND pg_catalog.nextval(seq) < node_group * 281474976710656 THEN
        PERFORM pg_catalog.setval(seq, node_group * 281474976710656);
    END IF;
    INSERT INTO mcp.key_check (key_version, fingerprint)
    SELECT (k ->> 'key_version')::integer, k ->> 'fingerprint'
      FROM jsonb_array_elements(coalesce(key_fingerprints, '[]')) AS k
        ON CONFLICT (key_version) DO UPDATE SET fingerprint = excluded.fingerprint;
    GRANT USAGE ON SCHEMA mcp_internal TO mcp_app, mcp_admin;
    -- a worker plans the queries sent to it with its own view (Citus would refuse DDL on it
    -- on a worker; this is the node's own extension object, changed on every node)
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    PERFORM mcp_internal.citus_summary_view(true);
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_node_setup(jsonb) IS
    'per-node set-up of mcp.distribute(): audit_id range, key fingerprints, the summary view and its helpers';
REVOKE ALL ON FUNCTION mcp_internal.citus_node_setup(jsonb) FROM PUBLIC, mcp_app, mcp_admin;

-- The definition of mcp.token_audit_summary. On a single node (raw = false) it is the one of
-- audit_summary.sql (repeated here, keep the two equal): the window table or the daily rollup
-- plus a few raw rows. On Citus (raw = true) it is the plain 30-day aggregate of the log:
-- grouped by user_id, the distribution column, it runs on every shard in parallel and is exact
-- by construction, late rows included (the rollup would need dirty marks that a shard cannot
-- write into the reference tables that hold them).
CREATE OR REPLACE FUNCTION mcp_internal.citus_summary_view(raw boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF raw THEN
        CREATE OR REPLACE VIEW mcp.token_audit_summary WITH (security_invoker = true) AS
        SELECT l.instance_id, l.user_id, l.operation::varchar AS operation, l.method::varchar AS method,
               count(*) AS total_operations,
               count(*) FILTER (WHERE l.status = 'success') AS success_count,
               count(*) FILTER (WHERE l.status = 'failure') AS failure_count,
               round(100.0 * count(*) FILTER (WHERE l.status = 'success') / count(*), 2) AS success_rate,
               min(l.created_at) AS first_operation_at, max(l.created_at) AS last_operation_at
          FROM mcp.token_audit_log l
         WHERE l.created_at >= now() - interval '30 days'
         GROUP BY l.instance_id, l.user_id, l.operation, l.method;
    ELSE
        CREATE OR REPLACE VIEW mcp.token_audit_summary WITH (security_invoker = true) AS
        SELECT s.instance_id, s.user_id, s.operation, s.method, s.total_operations, s.success_count,
               s.failure_count, s.success_rate, s.first_operation_at, s.last_operation_at
          FROM mcp_internal.audit_summary_windowed() s
         WHERE (SELECT mcp_internal.audit_window_valid())
        UNION ALL
        SELECT r.instance_id, r.user_id, r.operation, r.method, r.total_operations, r.success_count,
               r.failure_count, r.success_rate, r.first_operation_at, r.last_operation_at
          FROM mcp_internal.audit_summary_from_rollup() r
         WHERE NOT (SELECT mcp_internal.audit_window_valid());
    END IF;
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_summary_view(boolean) IS
    'defines mcp.token_audit_summary for a single node (false) or Citus (true)';
REVOKE ALL ON FUNCTION mcp_internal.citus_summary_view(boolean) FROM PUBLIC, mcp_app, mcp_admin;

-- The reverse of mcp_internal.citus_node_setup() (but the audit_id range, which stays unique).
CREATE OR REPLACE FUNCTION mcp_internal.citus_node_teardown() RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    PERFORM mcp_internal.citus_summary_view(false);
    REVOKE USAGE ON SCHEMA mcp_internal FROM mcp_app, mcp_admin;
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_node_teardown() IS 'per-node reverse of mcp_internal.citus_node_setup()';
REVOKE ALL ON FUNCTION mcp_internal.citus_node_teardown() FROM PUBLIC, mcp_app, mcp_admin;

-- The table part of mcp.distribute() (see there), run when a table is left to distribute.
CREATE OR REPLACE FUNCTION mcp_internal.citus_distribute_tables(shard_count integer,
    OUT reference_tables jsonb, OUT distributed_tables jsonb)
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    first regclass;
    all_tables regclass[] := mcp_internal.citus_reference_tables() || mcp_internal.citus_tenant_tables();
    reference jsonb := '[]';
    distributed jsonb := '[]';
BEGIN
    -- The triggers of the tables run on the shards (their functions know how to find the
    -- shards they need, see above); Citus copies them to the shards only when told so. Each
    -- distribution is one DDL across the nodes, in this transaction: sequentially.
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    PERFORM set_config('client_min_messages', 'warning', true);

    -- Citus refuses sub-selects in the policies of its tables.
    PERFORM mcp_internal.citus_tenant_policy('mcp.users', 'id');
    FOREACH t IN ARRAY mcp_internal.citus_tenant_tables() LOOP
        PERFORM mcp_internal.citus_tenant_policy(t);
    END LOOP;
    -- A local table that references a new reference table stays local until it is
    -- distributed itself (by default Citus would turn it into a "Citus local table": a shard in
    -- place of the extension's table).
    PERFORM set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    -- Existing rows are copied into the shards as they are: the triggers must not fire on the
    -- copies (the plan counters already count them, the free plans exist). Disabled here, they
    -- are created disabled on the shards, and enabled everywhere below.
    FOREACH t IN ARRAY all_tables LOOP
        CONTINUE WHEN mcp_internal.is_citus_table(t);
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER USER', t);
    END LOOP;

    FOREACH t IN ARRAY mcp_internal.citus_reference_tables() LOOP
        CONTINUE WHEN mcp_internal.is_citus_table(t);
        EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING t;
        reference := reference || to_jsonb(t::text);
    END LOOP;
    FOREACH t IN ARRAY mcp_internal.citus_tenant_tables() LOOP
        IF mcp_internal.is_citus_table(t) THEN
            first := coalesce(first, t);
            CONTINUE;
        END IF;
        IF first IS NULL THEN
            EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''user_id'', colocate_with => ''none'', shard_count => $2)'
              USING t, coalesce(shard_count, current_setting('citus.shard_count')::integer);
            first := t;
        ELSE
            EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''user_id'', colocate_with => $2::text)'
              USING t, first;
        END IF;
        distributed := distributed || to_jsonb(t::text);
    END LOOP;

    FOREACH t IN ARRAY all_tables LOOP
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER USER', t);
    END LOOP;

    -- The audit summary is the raw aggregate on Citus, run on the shards in parallel: no
    -- rollup, so no dirty marks (a shard cannot write the reference table that holds them),
    -- and no rollup state left from before.
    PERFORM mcp_internal.citus_audit_triggers(false);
    PERFORM mcp_internal.citus_summary_view(true);
    DELETE FROM mcp.token_audit_rollup_state;
    DELETE FROM mcp.token_audit_window;
    DELETE FROM mcp.token_audit_daily;
    DELETE FROM mcp.token_audit_dirty_days;
    DELETE FROM mcp.token_audit_day_rows;

    reference_tables := reference;
    distributed_tables := distributed;
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_distribute_tables(integer) IS
    'the table part of mcp.distribute(): reference tables, distributed tables, their triggers and policies, the summary';
REVOKE ALL ON FUNCTION mcp_internal.citus_distribute_tables(integer) FROM PUBLIC, mcp_app, mcp_admin;

-- The API functions that act for one tenant: every function of the mcp schema with a `tenant`
-- parameter (its last; NULL: the transaction's tenant), which mcp.distribute() makes Citus
-- distributed functions delegated by that argument. (The events store_oauth_tokens and
-- revoke_credentials may send are then sent by the tenant's worker, docs/citus.md.)
CREATE OR REPLACE FUNCTION mcp_internal.citus_tenant_functions() RETURNS regprocedure[]
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(p.oid::regprocedure ORDER BY p.oid::regprocedure::text), '{}')
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'mcp'::regnamespace AND 'tenant' = ANY (p.proargnames)
$$;
COMMENT ON FUNCTION mcp_internal.citus_tenant_functions() IS
    'the API functions with a tenant parameter, which mcp.distribute() delegates to the tenant''s worker';
REVOKE ALL ON FUNCTION mcp_internal.citus_tenant_functions() FROM PUBLIC, mcp_app, mcp_admin;

-- Whether this server loaded the library at start (shared_preload_libraries): on Citus every
-- backend then has the planner hook that keeps a NULL tenant argument away from Citus's
-- function delegation (src/pg/tenant_routing.cpp).
CREATE OR REPLACE FUNCTION mcp_internal.preloaded() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.current_setting('shared_preload_libraries') ~ '(^|[\s,/"])mcp_platform(\.so)?($|[\s,"])'
$$;
COMMENT ON FUNCTION mcp_internal.preloaded() IS 'whether mcp_platform is in shared_preload_libraries';
REVOKE ALL ON FUNCTION mcp_internal.preloaded() FROM PUBLIC, mcp_app, mcp_admin;

-- Distributes the schema on a Citus coordinator: reference tables for users, the catalog and
-- the cross-tenant bookkeeping; every tenant table distributed by user_id, co-located (rows of
-- one tenant live on one node, so every per-tenant statement runs on one worker). Existing
-- rows move into the shards and the coordinator's local copies are emptied. shard_count:
-- shards per distributed table (NULL: citus.shard_count). Idempotent: a table already
-- distributed is left as it is, and every call sets up each node again (run it after adding a
-- worker). Returns what it distributed.
CREATE OR REPLACE FUNCTION mcp.distribute(shard_count integer DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    f regprocedure;
    all_tables regclass[] := mcp_internal.citus_reference_tables() || mcp_internal.citus_tenant_tables();
    reference jsonb := '[]';
    distributed jsonb := '[]';
    fingerprints jsonb;
    failed_node text;
BEGIN
    PERFORM mcp_internal.require_citus_coordinator('mcp.distribute()');
    IF shard_count IS NOT NULL AND (shard_count < 1 OR shard_count > 64000) THEN
        RAISE EXCEPTION 'shard_count must be between 1 and 64000' USING ERRCODE = '22023';
    END IF;
    PERFORM set_config('client_min_messages', 'warning', true);
    EXECUTE 'SELECT string_agg(r.nodename || '':'' || r.nodeport, '', '') FROM pg_catalog.run_command_on_workers($1) r
              WHERE r.result IS DISTINCT FROM ''t'''
       INTO failed_node USING 'SELECT mcp_internal.preloaded()';
    IF NOT mcp_internal.preloaded() OR failed_node IS NOT NULL THEN
        RAISE EXCEPTION 'mcp_platform must be in shared_preload_libraries on every node' USING ERRCODE = '55000',
            DETAIL = 'Not preloaded on ' || coalesce(failed_node, 'the coordinator') || '.',
            HINT = 'Set shared_preload_libraries = ''citus,mcp_platform'' on every node and restart it.';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(all_tables) AS a(t) WHERE NOT mcp_internal.is_citus_table(a.t)) THEN
        SELECT d.reference_tables, d.distributed_tables INTO reference, distributed
          FROM mcp_internal.citus_distribute_tables(shard_count) d;
    END IF;
    -- Each node's own set-up, the workers' through Citus (in transactions of their own). The
    -- coordinator's keyring is loaded first, which records its fingerprints (none without one).
    BEGIN
        PERFORM mcp_internal.active_key_version();
    EXCEPTION WHEN OTHERS THEN
        NULL;  -- no keyring on the coordinator: each worker checks its own from first use
    END;
    SELECT coalesce(jsonb_agg(jsonb_build_object('key_version', k.key_version, 'fingerprint', k.fingerprint)), '[]')
      INTO fingerprints FROM mcp.key_check k;
    PERFORM mcp_internal.citus_node_setup(fingerprints);
    EXECUTE 'SELECT r.nodename || '':'' || r.nodeport || '': '' || r.result
               FROM pg_catalog.run_command_on_workers($1) r WHERE NOT r.success LIMIT 1'
       INTO failed_node
      USING format('SELECT mcp_internal.citus_node_setup(%L::jsonb)', fingerprints);
    IF failed_node IS NOT NULL THEN
        RAISE EXCEPTION 'the set-up of a worker node failed' USING ERRCODE = '55000',
            DETAIL = failed_node,
            HINT = 'Every worker needs mcp_platform 1.1 (CREATE EXTENSION runs on the workers that were added before it).';
    END IF;

    -- The tenant API: a call that passes its tenant runs on the worker holding the tenant's
    -- shards, through the backend's own connection, even inside a transaction block (so it
    -- mixes with the backend's own statements on those rows).
    FOREACH f IN ARRAY mcp_internal.citus_tenant_functions() LOOP
        EXECUTE 'SELECT pg_catalog.create_distributed_function($1::regprocedure, ''tenant'', colocate_with => ''mcp.mcp_service_table'', force_delegation => true)'
          USING f;
    END LOOP;

    -- The rows were copied into the shards: empty the local copies (ciphertexts included).
    FOREACH t IN ARRAY all_tables LOOP
        EXECUTE 'SELECT pg_catalog.truncate_local_data_after_distributing_table($1)' USING t;
    END LOOP;
    RETURN jsonb_build_object('reference_tables', reference, 'distributed_tables', distributed);
END
$$;
COMMENT ON FUNCTION mcp.distribute(integer) IS
    'on a Citus coordinator: makes users, the catalog and the bookkeeping reference tables and distributes every tenant table by user_id (idempotent)';
REVOKE ALL ON FUNCTION mcp.distribute(integer) FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.distribute(integer) TO mcp_admin;

-- Drops a Citus table's shards and its Citus metadata on every node, keeping the table (and
-- its local rows): the steps of Citus's own drop trigger, without the DROP.
CREATE OR REPLACE FUNCTION mcp_internal.citus_forget_table(tbl regclass, partition boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schema_name text;
    table_name text;
BEGIN
    SELECT n.nspname, c.relname INTO schema_name, table_name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    EXECUTE 'SELECT pg_catalog.master_remove_distributed_table_metadata_from_workers($1, $2, $3)'
      USING tbl, schema_name, table_name;
    -- a partition's shards go with its parent's
    EXECUTE 'SELECT pg_catalog.citus_drop_all_shards($1, $2, $3, $4)'
      USING tbl, schema_name, table_name, partition;
    EXECUTE 'SELECT pg_catalog.master_remove_partition_metadata($1, $2, $3)'
      USING tbl, schema_name, table_name;
END
$$;
COMMENT ON FUNCTION mcp_internal.citus_forget_table(regclass, boolean) IS
    'drops a Citus table''s shards and metadata on every node, keeping the table';
REVOKE ALL ON FUNCTION mcp_internal.citus_forget_table(regclass, boolean) FROM PUBLIC, mcp_app, mcp_admin;

-- The reverse of mcp.distribute(), and the first step of removing the extension from a Citus
-- cluster (DROP EXTENSION alone would leave the shards, with their rows, on the workers):
-- reads every row back to the coordinator, drops every shard and the tables' Citus metadata on
-- every node, and writes the rows into the coordinator's local tables as they were (triggers
-- off: the counters and audit rows are copied, not recomputed). Takes the tables' locks for
-- the duration. Returns the rows brought back per table. Idempotent.
-- One connection per node throughout (set for the whole call: Citus reads them as the call
-- starts): the shards of the reference tables are dropped after the distributed tables that
-- reference them were read and dropped.
CREATE OR REPLACE FUNCTION mcp.undistribute() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    SET citus.multi_shard_modify_mode = 'sequential'
    SET citus.max_adaptive_executor_pool_size = 1
AS $$
DECLARE
    t regclass;
    part regclass;
    tables regclass[];
    copies text[] := '{}';
    n bigint;
    i integer;
    result jsonb := '{}';
BEGIN
    PERFORM mcp_internal.require_citus_coordinator('mcp.undistribute()');
    PERFORM set_config('client_min_messages', 'warning', true);
    SELECT array_agg(x.t ORDER BY x.o) INTO tables
      FROM unnest(mcp_internal.citus_reference_tables() || mcp_internal.citus_tenant_tables())
           WITH ORDINALITY AS x(t, o)
     WHERE mcp_internal.is_citus_table(x.t);
    IF tables IS NULL THEN
        RETURN result;
    END IF;
    -- 0. the workers' own set-up (in transactions of their own; harmless if this call fails)
    EXECUTE 'SELECT count(*) FROM pg_catalog.run_command_on_workers($1) r WHERE NOT r.success'
       INTO n USING 'SELECT mcp_internal.citus_node_teardown()';
    -- 1. every row, read through Citus
    FOR i IN 1 .. array_length(tables, 1) LOOP
        copies := copies || ('mcp_undistribute_' || i);
        EXECUTE format('CREATE TEMP TABLE %I ON COMMIT DROP AS SELECT * FROM %s', copies[i], tables[i]);
    END LOOP;
    -- 2. shards and metadata (what Citus does when a table is dropped, without dropping it):
    --    tenant tables before reference tables, the partitions of the log before the log
    FOR i IN REVERSE array_length(tables, 1) .. 1 LOOP
        FOR part IN SELECT h.inhrelid::regclass FROM pg_catalog.pg_inherits h
                     WHERE h.inhparent = tables[i] AND mcp_internal.is_citus_table(h.inhrelid::regclass) LOOP
            PERFORM mcp_internal.citus_forget_table(part, true);
        END LOOP;
        PERFORM mcp_internal.citus_forget_table(tables[i], false);
    END LOOP;
    -- 3. the rows, back into the local tables; the policies in their single-node form
    PERFORM set_config('session_replication_role', 'replica', true);
    FOR i IN 1 .. array_length(tables, 1) LOOP
        EXECUTE format('DELETE FROM %s', tables[i]);
        EXECUTE format('INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM %I', tables[i], copies[i]);
        GET DIAGNOSTICS n = ROW_COUNT;
        result := result || jsonb_build_object(tables[i]::text, n);
        EXECUTE format('DROP TABLE %I', copies[i]);
    END LOOP;
    PERFORM set_config('session_replication_role', 'origin', true);
    PERFORM mcp_internal.citus_audit_triggers(true);
    PERFORM mcp_internal.citus_node_teardown();
    FOREACH t IN ARRAY mcp_internal.citus_tenant_tables() LOOP
        PERFORM mcp_internal.make_tenant_table(t);
    END LOOP;
    PERFORM mcp_internal.make_tenant_table('mcp.users', 'id');
    RETURN result;
END
$$;
COMMENT ON FUNCTION mcp.undistribute() IS
    'on a Citus coordinator: brings every row back into local tables and drops every shard (run it before DROP EXTENSION)';
REVOKE ALL ON FUNCTION mcp.undistribute() FROM PUBLIC, mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.undistribute() TO mcp_admin;
