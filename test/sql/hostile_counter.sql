-- The per-user active-instance counter of mcp.user_plans is written below the executor, for
-- speed. On 1.0 a trigger, CHECK constraint or generated column added to that table was
-- silently skipped on those writes, and mcp_admin could reset a count by deleting and
-- re-inserting a plan row (a free user then held two active instances). Now the counter
-- refuses to move while the table has anything it cannot honour (55000, nothing written),
-- and mcp_admin cannot delete plan rows.
\set VERBOSITY terse
SET client_min_messages = warning;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('e5000000-0000-0000-0000-0000000000c1', 'counter_svc', 'Counter', 7901, 'api_key');
INSERT INTO mcp.users (id, email) VALUES ('e0000000-0000-0000-0000-0000000000c1', 'counter@example.com');
-- the baseline: an activation moves the counter
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
VALUES ('e1000000-0000-0000-0000-0000000000c1', 'e0000000-0000-0000-0000-0000000000c1', 'e5000000-0000-0000-0000-0000000000c1');
SELECT active_instances FROM mcp.user_plans WHERE user_id = 'e0000000-0000-0000-0000-0000000000c1';

-- ---- mcp_admin cannot reset a count by re-creating the plan row ------------------------------
SET ROLE mcp_admin;
DELETE FROM mcp.user_plans WHERE user_id = 'e0000000-0000-0000-0000-0000000000c1';
\echo :LAST_ERROR_SQLSTATE
UPDATE mcp.user_plans SET active_instances = 0 WHERE user_id = 'e0000000-0000-0000-0000-0000000000c1';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---- a DBA adds things to the table: every activation and deactivation is refused ------------
CREATE FUNCTION pg_temp.count_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER dba_audit BEFORE UPDATE ON mcp.user_plans FOR EACH ROW EXECUTE FUNCTION pg_temp.count_writes();
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = 'e1000000-0000-0000-0000-0000000000c1';
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER dba_audit ON mcp.user_plans;
ALTER TABLE mcp.user_plans ADD CONSTRAINT dba_check CHECK (active_instances < 100);
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = 'e1000000-0000-0000-0000-0000000000c1';
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE mcp.user_plans DROP CONSTRAINT dba_check;
ALTER TABLE mcp.user_plans ADD COLUMN dba_total integer GENERATED ALWAYS AS (active_instances * 2) STORED;
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = 'e1000000-0000-0000-0000-0000000000c1';
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE mcp.user_plans DROP COLUMN dba_total;
ALTER TABLE mcp.user_plans ADD CONSTRAINT dba_unique UNIQUE (user_id, active_instances) DEFERRABLE INITIALLY DEFERRED;
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id)
VALUES ('e0000000-0000-0000-0000-0000000000c1', 'e5000000-0000-0000-0000-0000000000c1');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE mcp.user_plans DROP CONSTRAINT dba_unique;
-- a plain index is maintained (every counter update that is not HOT adds its entries)
CREATE INDEX dba_idx ON mcp.user_plans (active_instances);
UPDATE mcp.mcp_service_table SET status = 'active' WHERE instance_id = 'e1000000-0000-0000-0000-0000000000c1';
SELECT count(*) AS found_by_index FROM mcp.user_plans WHERE active_instances = 1 AND user_id = 'e0000000-0000-0000-0000-0000000000c1';
UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = 'e1000000-0000-0000-0000-0000000000c1';
DROP INDEX mcp.dba_idx;
-- nothing was written while it refused, and with the table as the extension made it, all works
SELECT count(*) AS drift FROM mcp.verify_counters();
SELECT active_instances FROM mcp.user_plans WHERE user_id = 'e0000000-0000-0000-0000-0000000000c1';
SELECT count(*) AS drift FROM mcp.verify_counters();

SELECT count(mcp.erase_user(id)) AS erased FROM mcp.users WHERE email = 'counter@example.com';
DELETE FROM mcp.mcp_table WHERE mcp_service_id = 'e5000000-0000-0000-0000-0000000000c1';
