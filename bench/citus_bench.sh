#!/usr/bin/env bash
# API calls on a 3-node Citus cluster (scripts/citus_lib.sh), through the coordinator: each
# call without its tenant argument (the function runs on the coordinator, its statements routed
# to the tenant's worker as the function's owner) against the same call with `tenant => $1`
# (mcp.distribute() made it a distributed function: the whole call runs on the tenant's worker,
# through the backend's own connection), and a transaction that mixes the backend's own
# UPDATE of the tenant's instance with the API call, which only the second form can run.
# pgbench, CLIENTS clients as a member of mcp_app, prepared statements; each transaction
# first picks a random user of USERS (one SELECT, the same in every script), then
#   BEGIN; SELECT mcp.set_tenant(:u); <the call>; COMMIT;
# Medians of ROUNDS rounds of DURATION seconds, scripts interleaved round by round.
#   bash bench/citus_bench.sh    (USERS=2000 CLIENTS=4 ROUNDS=3 DURATION=10)
# Needs a Citus installed in the PostgreSQL it builds against (see docs/citus.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. scripts/citus_lib.sh
. bench/api_setup.sh
USERS=${USERS:-2000}
CLIENTS=${CLIENTS:-4}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
if ! mcp_citus_installed; then
    echo "citus_bench: Citus is not installed in PostgreSQL $MCP_PG_VERSION"; exit 1
fi
mcp_prepare citus_bench >/dev/null
trap 'mcp_citus_stop "$WORK"; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
mcp_citus_start "$WORK"
export PGHOST=127.0.0.1 PGPORT=${PORT[coord]}
echo "citus_bench: $USERS users, $CLIENTS clients, $ROUNDS rounds of ${DURATION}s, $(nproc) CPUs"
# the data of bench/api_bench.sh (the role mcp_bench; user i with the API-key instance
# 00000000-0000-0000-0001-<i>), written on the coordinator, then distributed
bench_api_setup postgres "$USERS"
psql_on coord -c 'SELECT mcp.distribute()' >/dev/null

script() {  # script NAME CALL...: a pgbench script for user :u and its instance :i
    local name=$1
    shift
    { printf '%s\n' '\set n random(1, '"$USERS"')' \
        "SELECT '00000000-0000-0000-0000-' || lpad(:n::text, 12, '0') AS u, '00000000-0000-0000-0001-' || lpad(:n::text, 12, '0') AS i \\gset" \
        'BEGIN;' 'SELECT mcp.set_tenant(:u);'
      printf '%s\n' "$@" 'COMMIT;'; } >"$WORK/$name.sql"
}
script get "SELECT api_key FROM mcp.get_credentials(:i);"
script get_tenant "SELECT api_key FROM mcp.get_credentials(:i, tenant => :u);"
script set "SELECT mcp.set_api_key(:i, 'sk-bench-new');"
script set_tenant "SELECT mcp.set_api_key(:i, 'sk-bench-new', tenant => :u);"
script mixed_tenant "UPDATE mcp.mcp_service_table SET custom_name = 'in use' WHERE user_id = :u AND instance_id = :i;" \
    "SELECT api_key FROM mcp.get_credentials(:i, tenant => :u);"
script mixed "UPDATE mcp.mcp_service_table SET custom_name = 'in use' WHERE user_id = :u AND instance_id = :i;" \
    "SELECT api_key FROM mcp.get_credentials(:i);"

run() {  # run NAME
    local out
    out=$(pgbench -n -M prepared -U mcp_bench -c "$CLIENTS" -j 2 -T "$DURATION" -f "$WORK/$1.sql" postgres 2>&1) ||
        { echo "$1: $(echo "$out" | grep -m1 -i error)"; echo 0 >>"$WORK/$1.tps"; return 0; }
    echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' >>"$WORK/$1.tps"
}
median() { sort -n "$WORK/$1.tps" | awk '{a[NR]=$1} END {printf "%.0f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0 ? "%.2f" : "-"), a / b}'; }

OPS="get get_tenant set set_tenant mixed_tenant mixed"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS"
    for op in $OPS; do run "$op"; done
done
echo
echo "| transaction | tps without tenant | tps with tenant => (delegated) | with / without |"
echo "|---|---:|---:|---:|"
for op in get set mixed; do
    echo "| $op | $(median "$op") | $(median "${op}_tenant") | $(ratio "$(median "${op}_tenant")" "$(median "$op")") |"
done
