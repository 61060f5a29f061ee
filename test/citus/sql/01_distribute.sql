-- mcp.distribute() on the coordinator of a 3-node cluster (scripts/citus_test.sh)
\set VERBOSITY terse
SET client_min_messages = warning;
\getenv coord PGPORT
\getenv w1 MCP_WORKER1_PORT
-- only the coordinator distributes, and only for superusers and mcp_admin
\c - postgres - :w1
SELECT mcp.distribute();
\echo :LAST_ERROR_SQLSTATE
\c - app - :coord
SELECT mcp.distribute();
\echo :LAST_ERROR_SQLSTATE
\c - admin - :coord
SELECT mcp.distribute(4);
-- idempotent
SELECT mcp.distribute(4);
\c - postgres - :coord
SELECT p.logicalrelid::regclass AS tbl,
       CASE WHEN p.partmethod = 'h' THEN 'distributed by ' || column_to_column_name(p.logicalrelid, p.partkey)
            ELSE 'reference' END AS kind
  FROM pg_dist_partition p
 WHERE p.logicalrelid::regclass::text ~ '^mcp' AND p.logicalrelid::regclass::text !~ '_p[0-9]{8}$'
 ORDER BY p.logicalrelid::regclass::text;
-- one co-location group: a tenant's rows of every table live on one node
SELECT count(DISTINCT colocationid) AS colocation_groups FROM pg_dist_partition WHERE partmethod = 'h';
-- the shards are on the workers
SELECT n.nodeport = :w1 AS on_worker1, count(*) > 0 AS has_shards
  FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node n USING (groupid)
 WHERE s.logicalrelid = 'mcp.mcp_service_table'::regclass GROUP BY 1 ORDER BY 1;
-- the tenant policy in the form Citus accepts, on the tables and their shards
SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
 WHERE polrelid = 'mcp.mcp_credentials'::regclass AND polname = 'tenant_isolation';
\c - postgres - :w1
SET citus.override_table_visibility = off;
SELECT DISTINCT pg_get_expr(polqual, polrelid) FROM pg_policy
 WHERE polrelid::regclass::text ~ '^mcp\.mcp_credentials_[0-9]+$' AND polname ~ '^tenant_isolation';
-- the services of the catalog (a reference table: every node has them)
\c - admin - :coord
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('github', 'GitHub', 8001, 'api_key'), ('gmail', 'Gmail', 8002, 'oauth');
\c - app - :w1
SELECT mcp_service_name FROM mcp.mcp_table WHERE mcp_service_name IN ('github', 'gmail') ORDER BY 1;
