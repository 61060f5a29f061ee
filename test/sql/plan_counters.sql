-- Counters that never drift: after a scripted mix of every operation — API calls,
-- plain INSERT/UPDATE/DELETE, expiry, plan changes, cascades — mcp.verify_counters() is empty
-- and mcp.service_stats is exact. Also: record_usage, expire_instances, set_plan, and that
-- verify_counters really reports drift.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET search_path = mcp, public;

INSERT INTO users (id, email)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(to_hex(i), 2, '0'))::uuid, 'u' || i || '@example.com'
  FROM generate_series(1, 20) i;
INSERT INTO mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'github', 'GitHub', 7001, 'api_key'),
    ('00000000-0000-0000-0000-0000000000c2', 'gmail', 'Gmail', 7002, 'oauth'),
    ('00000000-0000-0000-0000-0000000000c3', 'notion', 'Notion', 7003, 'oauth');
-- users 1-10 pro (5-7 expiring soon, 8-10 capped at 2), 11-20 free
SET ROLE mcp_admin;
SELECT count(mcp.set_plan(('00000000-0000-0000-0000-0000000000' || lpad(to_hex(i), 2, '0'))::uuid, 'pro',
                          CASE WHEN i BETWEEN 5 AND 7 THEN now() + interval '1 hour' END))
  FROM generate_series(1, 10) i;
UPDATE user_plans SET max_instances = 2
 WHERE user_id IN ('00000000-0000-0000-0000-000000000008', '00000000-0000-0000-0000-000000000009',
                   '00000000-0000-0000-0000-00000000000a');
RESET ROLE;

-- Every user tries to create 3 instances of each service through the API, some with an
-- expiry already close; refusals (MC001) are counted, not fatal.
CREATE FUNCTION pg_temp.try_create(u uuid, service text, expires timestamptz) RETURNS text
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('mcp.user_id', u::text, true);
    PERFORM mcp.create_instance(service, NULL, expires);
    RETURN 'created';
EXCEPTION WHEN SQLSTATE 'MC001' THEN
    RETURN 'MC001';
END $$;
SET ROLE mcp_app;
SELECT result, count(*) FROM (
    SELECT pg_temp.try_create(('00000000-0000-0000-0000-0000000000' || lpad(to_hex(i), 2, '0'))::uuid,
                              s, CASE WHEN n = 3 THEN now() + interval '2 hours' END) AS result
      FROM generate_series(1, 20) i, unnest(ARRAY['github', 'gmail', 'notion']) s, generate_series(1, 3) n
) r GROUP BY 1 ORDER BY 1;
RESET ROLE;
SELECT * FROM mcp.verify_counters();
SELECT mcp_service_name, total_instances_created, active_instances_count FROM mcp.service_stats ORDER BY 1;

-- ---- record_usage: usage_count and last_used_at, own instances only -----------------------
SELECT instance_id AS u1_instance FROM mcp_service_table
 WHERE user_id = '00000000-0000-0000-0000-000000000001' ORDER BY instance_id LIMIT 1 \gset
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-000000000001', true) IS NOT NULL AS tenant;
SELECT mcp.record_usage(:'u1_instance');
SELECT mcp.record_usage(:'u1_instance');
SELECT usage_count, last_used_at = now() AS used_now FROM mcp_service_table WHERE instance_id = :'u1_instance';
-- NULL is refused (22023); an unknown instance is not the tenant's (42501)
SAVEPOINT s;
SELECT mcp.record_usage(NULL);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT mcp.record_usage('00000000-0000-0000-0000-00000000dead');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
-- no tenant (MC301)
SELECT mcp.record_usage(:'u1_instance');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---- plain SQL by the backend: inserts, status flips, expiry edits, deletes ------------------
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-000000000002', true) IS NOT NULL AS tenant;
INSERT INTO mcp_service_table (user_id, mcp_service_id, status)
SELECT '00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000c3', st
  FROM unnest(ARRAY['active', 'inactive', 'expired', 'active']) st;
UPDATE mcp_service_table SET status = 'inactive' WHERE status = 'active' AND mcp_service_id = '00000000-0000-0000-0000-0000000000c1';
UPDATE mcp_service_table SET status = 'active' WHERE status = 'expired';
UPDATE mcp_service_table SET expires_at = now() + interval '1 day' WHERE mcp_service_id = '00000000-0000-0000-0000-0000000000c2';
DELETE FROM mcp_service_table WHERE mcp_service_id = '00000000-0000-0000-0000-0000000000c2' AND status = 'active';
-- a statement that fails half-way leaves no trace in the counters
SAVEPOINT s;
UPDATE mcp_service_table SET status = 'active',
       custom_name = CASE WHEN status = 'inactive' THEN repeat('x', 300) ELSE custom_name END;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
RESET ROLE;
SELECT * FROM mcp.verify_counters();

-- ---- time passes: expire_instances marks what is past its expiry ----------------------------
-- (instances of users 1-4 "expire" now; users 5-7's pro plans lapse)
UPDATE mcp_service_table SET expires_at = now() - interval '1 second'
 WHERE user_id <= '00000000-0000-0000-0000-000000000004' AND expires_at IS NOT NULL;
UPDATE user_plans SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL;
-- as mcp_app it covers the current tenant only
SET ROLE mcp_app;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-000000000001', true) IS NOT NULL AS tenant;
SELECT mcp.expire_instances() AS expired_for_user_1;
COMMIT;
SELECT mcp.expire_instances() AS expired_without_tenant;
RESET ROLE;
SELECT mcp.expire_instances() AS expired_all;
SELECT mcp.expire_instances() AS expired_again;
SELECT status, count(*) FROM mcp_service_table GROUP BY 1 ORDER BY 1;
SELECT * FROM mcp.verify_counters();

-- users 5-7 now count as free with 9 active instances each: nothing was deleted, nothing new
SET ROLE mcp_app;
SELECT pg_temp.try_create('00000000-0000-0000-0000-000000000005', 'github', NULL) AS lapsed_pro;
-- ---- plan changes: downgrade, upgrade, and a plan row recreated by set_plan --------------------
SET ROLE mcp_admin;
SELECT mcp.set_plan('00000000-0000-0000-0000-000000000001', 'free');
SELECT mcp.set_plan('00000000-0000-0000-0000-000000000011', 'pro');
SELECT mcp.set_plan('00000000-0000-0000-0000-000000000012', 'pro', now() + interval '1 year');
-- set_plan refuses nonsense (22023); it is for mcp_admin only (42501)
SELECT mcp.set_plan('00000000-0000-0000-0000-000000000012', 'gold');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_plan('00000000-0000-0000-0000-000000000012', 'free', now() + interval '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.set_plan('00000000-0000-0000-0000-0000000000ff', 'pro');
\echo :LAST_ERROR_SQLSTATE
SET ROLE mcp_app;
SELECT mcp.set_plan('00000000-0000-0000-0000-000000000012', 'pro');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DELETE FROM user_plans WHERE user_id = '00000000-0000-0000-0000-000000000013';
SET ROLE mcp_admin;
SELECT mcp.verify_counters();
SELECT mcp.set_plan('00000000-0000-0000-0000-000000000013', 'free');
SET ROLE mcp_app;
SELECT result, count(*) FROM (
    SELECT pg_temp.try_create(('00000000-0000-0000-0000-0000000000' || lpad(to_hex(i), 2, '0'))::uuid, 'notion', NULL) AS result
      FROM generate_series(1, 20) i, generate_series(1, 2) n
) r GROUP BY 1 ORDER BY 1;
RESET ROLE;
SELECT * FROM mcp.verify_counters();

-- ---- deletes: a user (cascade), a service's instances ----------------------------------------
DELETE FROM users WHERE id = '00000000-0000-0000-0000-000000000003';
DELETE FROM mcp_service_table WHERE mcp_service_id = '00000000-0000-0000-0000-0000000000c2' AND user_id > '00000000-0000-0000-0000-000000000010';
SELECT * FROM mcp.verify_counters();

-- ---- the stats are exact (checked against the rows; created includes deleted instances) ------
SELECT s.mcp_service_name, s.total_instances_created, s.active_instances_count,
       (SELECT count(*) FROM mcp_service_table i WHERE i.mcp_service_id = s.mcp_service_id AND i.status = 'active') AS active_rows,
       (SELECT count(*) FROM mcp_service_table i WHERE i.mcp_service_id = s.mcp_service_id AND i.status = 'active'
           AND i.expires_at <= now()) AS stale_active_rows,
       (SELECT count(*) FROM mcp_service_table i WHERE i.mcp_service_id = s.mcp_service_id) AS existing_rows
  FROM mcp.service_stats s ORDER BY 1;
-- an instance past its expiry is not active any more, even before expire_instances runs
BEGIN;
UPDATE mcp_service_table SET expires_at = now() - interval '1 second'
 WHERE instance_id = (SELECT instance_id FROM mcp_service_table
                       WHERE status = 'active' AND mcp_service_id = '00000000-0000-0000-0000-0000000000c1'
                       ORDER BY instance_id LIMIT 1);
SELECT mcp_service_name, total_instances_created, active_instances_count FROM mcp.service_stats ORDER BY 1;
ROLLBACK;
-- the legacy mcp_table columns are refreshed on demand
SET ROLE mcp_admin;
SELECT mcp.refresh_service_stats() AS refreshed;
SELECT mcp.refresh_service_stats() AS refreshed_again;
SELECT t.mcp_service_name, t.total_instances_created = s.total_instances_created AS created_same,
       t.active_instances_count = s.active_instances_count AS active_same
  FROM mcp_table t JOIN mcp.service_stats s USING (mcp_service_id) ORDER BY 1;
RESET ROLE;
-- mcp_app reads the stats; verify_counters and refresh are for mcp_admin
SET ROLE mcp_app;
SELECT count(*) AS services FROM mcp.service_stats;
SELECT * FROM mcp.verify_counters();
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.refresh_service_stats();
\echo :LAST_ERROR_SQLSTATE
SELECT mcp.repair_counters();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---- verify_counters reports drift (here made by bypassing the trigger) ---------------------
BEGIN;
ALTER TABLE mcp_service_table DISABLE TRIGGER mcp_service_table_plan_limit_insert;
INSERT INTO mcp_service_table (user_id, mcp_service_id)
VALUES ('00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-0000000000c1');
ALTER TABLE mcp_service_table ENABLE TRIGGER mcp_service_table_plan_limit_insert;
SELECT * FROM mcp.verify_counters();
-- repair_counters recomputes the counters from the rows
SELECT mcp.repair_counters() AS repaired;
SELECT * FROM mcp.verify_counters();
ROLLBACK;
BEGIN;
UPDATE user_plans SET active_instances = active_instances + 1 WHERE user_id = '00000000-0000-0000-0000-000000000002';
SELECT * FROM mcp.verify_counters();
ROLLBACK;
SELECT * FROM mcp.verify_counters();

-- ---- deletions are tallied per service in shard rows (one per backend that deleted) --------
SELECT count(DISTINCT shard) >= 1 AS sharded, min(shard) >= 0 AND max(shard) < 64 AS shard_range
  FROM service_counters;

-- ---- counter updates that cannot be HOT still maintain every index -------------------------
-- (an index on the counter makes every update of it a non-HOT update with new index entries)
BEGIN;
CREATE INDEX user_plans_test_counter_idx ON mcp.user_plans (active_instances);
SELECT pg_temp.try_create('00000000-0000-0000-0000-000000000004', s, NULL) AS result, s
  FROM unnest(ARRAY['github', 'gmail', 'github']) s;
SELECT pg_temp.try_create('00000000-0000-0000-0000-000000000014', 'github', NULL) AS free_user_again;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
-- user 4 now has 11 active instances; the new counter value is found through the new index
SELECT count(*) AS user_4_active FROM mcp_service_table
 WHERE user_id = '00000000-0000-0000-0000-000000000004' AND status = 'active';
EXPLAIN (COSTS OFF) SELECT user_id FROM mcp.user_plans WHERE active_instances = 11;
SELECT user_id FROM mcp.user_plans WHERE active_instances = 11;
-- and no entry points at the old value (the entries for 8, 9, 10 belong to older versions)
SELECT count(*) AS user_4_found_by_stale_values FROM mcp.user_plans
 WHERE active_instances IN (8, 9, 10) AND user_id = '00000000-0000-0000-0000-000000000004';
EXPLAIN (COSTS OFF) SELECT * FROM mcp.user_plans WHERE user_id = '00000000-0000-0000-0000-000000000004';
SELECT plan_type, active_instances FROM mcp.user_plans WHERE user_id = '00000000-0000-0000-0000-000000000004';
SELECT * FROM mcp.verify_counters();
ROLLBACK;

-- clean up for the following tests
DELETE FROM users;
DELETE FROM mcp_table;
SELECT count(*) AS counters_left FROM service_counters;
