# Shared by scripts/citus_test.sh and bench/citus_bench.sh (sourced, after scripts/lib.sh): a
# Citus cluster on loopback -- a coordinator and two workers, each a throwaway PostgreSQL
# cluster run as the postgres user on a port of its own, the same keyring on every node --
# with Citus created and the workers added.
#   mcp_citus_installed            exit status: Citus is installed in the PostgreSQL used
#   mcp_citus_start DIR [LINE...]  starts the nodes in DIR/<node> (extra postgresql.conf lines)
#   mcp_citus_stop DIR             stops them
#   psql_on NODE [psql args...]    psql as the superuser on a node, unaligned, tuples only
# Sets NODES (coord worker1 worker2), PORT[node] and KEY (the keyring line of every node).
NODES=(coord worker1 worker2)
declare -A PORT

mcp_citus_installed() {
    [ -f "$("$MCP_PG_BIN/pg_config" --pkglibdir)/citus.so" ] &&
        [ -f "$("$MCP_PG_BIN/pg_config" --sharedir)/extension/citus.control" ]
}

mcp_citus_start() {
    local dir=$1 n
    shift
    KEY="1 $(mcp_random_key)"
    for n in "${NODES[@]}"; do
        # a keyring per node, with the same key: every node decrypts the shards it holds
        mcp_cluster_start "$dir/$n" \
            "listen_addresses = '127.0.0.1'" \
            "shared_preload_libraries = 'citus,mcp_platform'" \
            "mcp_platform.key_file = '$dir/$n/keyring'" \
            "max_connections = 100" \
            "max_prepared_transactions = 100" \
            "wal_level = logical" \
            "log_min_messages = warning" \
            "$@"
        mcp_write_keyring "$dir/$n/keyring" "$KEY"
        mcp_cluster_reload
        PORT[$n]=$PGPORT
    done
    for n in "${NODES[@]}"; do psql_on "$n" -c 'CREATE EXTENSION citus' >/dev/null; done
    psql_on coord >/dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[coord]});
SELECT citus_add_node('127.0.0.1', ${PORT[worker1]});
SELECT citus_add_node('127.0.0.1', ${PORT[worker2]});
SQL
}

mcp_citus_stop() {
    local n
    for n in "${NODES[@]}"; do
        [ -d "$1/$n/data" ] &&
            mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$1/$n/data" -m fast -w -t 60 stop >/dev/null 2>&1
    done
    return 0
}

psql_on() {
    local n=$1; shift
    psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "${PORT[$n]}" -U postgres -d postgres "$@"
}
