# Shared by bench/api_bench.sh and bench/node_bench.sh (sourced): the extension, a login role
# in mcp_app (mcp_bench), one api_key and one oauth service, and USERS users on the pro plan,
# user i (00000000-0000-0000-0000-<i>) with an active instance (00000000-0000-0000-0001-<i>)
# whose API key is stored through mcp.set_api_key, and an OAuth instance
# (00000000-0000-0000-0002-<i>) with a client and tokens stored through the API.
#   bench_api_setup DB USERS
bench_api_setup() {
    local db=$1 users=$2
    psql -qX -v ON_ERROR_STOP=1 -d "$db" <<SQL >/dev/null
CREATE EXTENSION mcp_platform;
CREATE ROLE mcp_bench LOGIN IN ROLE mcp_app;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('00000000-0000-0000-0000-0000000000c1', 'bench_key', 'Key', 7001, 'api_key'),
       ('00000000-0000-0000-0000-0000000000c2', 'bench_oauth', 'OAuth', 7002, 'oauth');
INSERT INTO mcp.users (id, email)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'u' || i || '@bench.example'
  FROM generate_series(1, $users) i;
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
SELECT ('00000000-0000-0000-0001-' || lpad(i::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000c1'
  FROM generate_series(1, $users) i;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
SELECT ('00000000-0000-0000-0002-' || lpad(i::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000c2'
  FROM generate_series(1, $users) i;
SET mcp_platform.tenant_scope = session;
DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT user_id, instance_id, mcp_service_id FROM mcp.mcp_service_table LOOP
    PERFORM set_config('mcp.user_id', r.user_id::text, true);
    IF r.mcp_service_id = '00000000-0000-0000-0000-0000000000c1' THEN
      PERFORM mcp.set_api_key(r.instance_id, 'sk-bench-' || md5(r.instance_id::text) || md5(r.user_id::text));
    ELSE
      PERFORM mcp.set_oauth_client(r.instance_id, 'client-bench', 'secret-' || md5(r.instance_id::text));
      PERFORM mcp.store_oauth_tokens(r.instance_id, 'access-' || md5(r.instance_id::text),
                                     'refresh-' || md5(r.instance_id::text), now() + interval '1 hour', 'scope');
    END IF;
  END LOOP;
END \$\$;
VACUUM ANALYZE;
SQL
}
