#!/usr/bin/env bash
# The Citus suite (docs/citus.md): a 3-node Citus cluster on loopback -- a coordinator and two
# workers, each a throwaway PostgreSQL cluster run as the postgres user on ports of its own,
# the same keyring on every node -- with mcp_platform created on the coordinator (Citus
# creates it on the workers) and distributed with mcp.distribute(). It then runs
# test/citus/sql/*.sql with pg_regress against that cluster (expected output in
# test/citus/expected/), a plan-limit race through the coordinator and a worker at once, and
# last test/citus/sql/99_undistribute.sql (the drop path).
#
#   bash scripts/citus_test.sh
#
# Uses a Citus that is already installed into the PostgreSQL it builds against (Citus is not
# in Debian's archive; this project never builds or downloads it). Without one it prints one
# line saying the suite was skipped and exits 0. scripts/test.sh runs it as its last step.
# Environment: MCP_CITUS_FROM=1.0 (start from release 1.0 and upgrade the cluster before
# distributing; the suite's expected output does not depend on it), MCP_CITUS_RESULTS (keep the pg_regress results there), MCP_CITUS_NO_BUILD=1 (the extension is installed already and the caller holds
# the install lock: scripts/test.sh), CITUS_TESTS (a subset of the test names, e.g. "01_distribute 03_plan_limits").
# The last line is "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
# MCP_CITUS_PG_BIN: the bin directory of another (relocated) PostgreSQL installation to use,
# with MCP_CITUS_NO_BUILD=1 (development: an installation of one's own needs no install lock)
MCP_PG_BIN=${MCP_CITUS_PG_BIN:-$MCP_PG_BIN}
export PATH=$MCP_PG_BIN:$PATH

. scripts/citus_lib.sh
if ! mcp_citus_installed; then
    echo "Citus suite skipped: Citus is not installed in PostgreSQL $MCP_PG_VERSION ($("$MCP_PG_BIN/pg_config" --pkglibdir))"
    exit 0
fi

if [ "${MCP_CITUS_NO_BUILD:-0}" != 1 ]; then
    mcp_install_deps
    mcp_take_install_lock
    mcp_build_install
fi

WORK=$(mktemp -d /tmp/mcp_platform-citus.XXXXXX)
chmod 755 "$WORK"
stop_all() { mcp_citus_stop "$WORK"; }
# MCP_CITUS_RESULTS=DIR keeps the pg_regress results there (to bootstrap an expected file)
keep_results() {
    [ -n "${MCP_CITUS_RESULTS:-}" ] && [ -d "$WORK/regress/results" ] &&
        mkdir -p "$MCP_CITUS_RESULTS" && cp "$WORK/regress/results/"*.out "$MCP_CITUS_RESULTS/"
    return 0
}
trap 'keep_results; stop_all; rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
ok() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $1"; FAILED=$((FAILED + 1)); }
check() {  # check "description" expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}

mcp_log "Citus: a coordinator and two workers on loopback"
mcp_citus_start "$WORK" "mcp_platform.maintenance_databases = 'postgres'" "mcp_platform.maintenance_interval = 0"
if [ "${MCP_CITUS_FROM:-}" = 1.0 ]; then
    # release 1.0 on every node (Citus creates it on the workers), a tenant with an instance and
    # an API key written through the 1.0 API, then the upgrade, which Citus runs on every node
    psql_on coord -c "CREATE EXTENSION mcp_platform VERSION '1.0'" >/dev/null
    psql_on coord >/dev/null <<'SQL'
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type) VALUES ('legacy', 'Legacy', 8099, 'api_key');
INSERT INTO mcp.users (email) VALUES ('legacy@example.com');
BEGIN;
SELECT set_config('mcp.user_id', (SELECT id::text FROM mcp.users WHERE email = 'legacy@example.com'), true);
SELECT mcp.set_api_key(mcp.create_instance('legacy'), 'legacy-secret');
COMMIT;
SQL
    psql_on coord -c 'ALTER EXTENSION mcp_platform UPDATE' >/dev/null
    check "the upgrade ran on every node" "1.1 1.1 1.1" "$(for n in "${NODES[@]}"; do
        psql_on "$n" -c "SELECT extversion FROM pg_extension WHERE extname = 'mcp_platform'"; done | xargs)"
else
    psql_on coord -c 'CREATE EXTENSION mcp_platform' >/dev/null
fi
# the application's login role (it inherits mcp_app; Citus creates it on every node)
psql_on coord -c "CREATE ROLE app LOGIN IN ROLE mcp_app" >/dev/null
psql_on coord -c "CREATE ROLE admin LOGIN IN ROLE mcp_admin" >/dev/null
psql_on coord -c "CREATE ROLE worker LOGIN IN ROLE mcp_worker" >/dev/null
echo "coordinator port ${PORT[coord]}, workers ${PORT[worker1]} and ${PORT[worker2]}"

# ---- pg_regress: test/citus/sql/*.sql against the coordinator (the files \connect to workers) ----
cp -r test/citus "$WORK/regress"
chown -R postgres: "$WORK/regress"
PG_REGRESS="$(dirname "$("$MCP_PG_BIN/pg_config" --pgxs)")/../test/regress/pg_regress"
run_regress() {  # run_regress TEST...
    local rc=0 log="$WORK/regress-$RANDOM.log" n_failed
    mcp_as_pg env PGHOST=127.0.0.1 PGPORT="${PORT[coord]}" PGUSER=postgres \
        PGOPTIONS='-c client_min_messages=warning' \
        MCP_WORKER1_PORT="${PORT[worker1]}" MCP_WORKER2_PORT="${PORT[worker2]}" \
        "$PG_REGRESS" --use-existing --dbname=postgres --inputdir="$WORK/regress" \
        --outputdir="$WORK/regress" --bindir="$MCP_PG_BIN" "$@" 9>&- 2>&1 | tee "$log" || rc=$?
    PASSED=$((PASSED + $(grep -cE '^(ok|test) .* (\.\.\. ok|ok +[0-9])|^ok [0-9]' "$log" || true)))
    n_failed=$(grep -cE '\.\.\. FAILED|^not ok' "$log" || true)
    FAILED=$((FAILED + n_failed))
    if [ "$rc" -ne 0 ]; then
        [ "$n_failed" -ne 0 ] || FAILED=$((FAILED + 1))
        [ -f "$WORK/regress/regression.diffs" ] && cat "$WORK/regress/regression.diffs"
        local n
        for n in "${NODES[@]}"; do echo "----- $n server log (last 60 lines)"; tail -n 60 "$WORK/$n/server.log"; done
    fi
}
all_tests=$(cd test/citus/sql && ls -1 ./*.sql | sed 's|^\./||; s|\.sql$||' | sort)
tests=$(echo "${CITUS_TESTS:-$all_tests}" | tr " " "\n")
mcp_log "Citus: pg_regress (test/citus)"
# shellcheck disable=SC2046 # lists of test names
if [ "${MCP_CITUS_FROM:-}" = 1.0 ] && echo "$tests" | grep -q '^01_'; then
    run_regress 01_distribute
    # what release 1.0 stored survives the upgrade and the distribution: the legacy tenant's
    # plan counts its instance, its key decrypts on the worker that holds its shard; then the
    # account is erased, so that the files below see the same data as on a fresh install
    mcp_log "Citus: the data written under release 1.0"
    legacy=$(psql_on coord -c "SELECT mcp.find_user('legacy@example.com')")
    check "1.0's plan counter, distributed" "1" \
        "$(psql_on coord -c "SELECT active_instances FROM mcp.user_plans WHERE user_id = '$legacy'")"
    legacy_instance=$(psql_on coord -c "SELECT instance_id FROM mcp.mcp_service_table WHERE user_id = '$legacy'")
    for n in coord worker2; do
        check "1.0's API key decrypts through $n" "legacy-secret" "$(psql -X -q -At -h 127.0.0.1 \
            -p "${PORT[$n]}" -U app -d postgres \
            -c "SELECT c.api_key FROM mcp.set_tenant('$legacy'), mcp.get_credentials('$legacy_instance') c" 2>&1)"
    done
    check "the counters verify" "0" "$(psql_on coord -c "SELECT count(*) FROM mcp.verify_counters()")"
    psql_on coord -c "SELECT mcp.erase_user('$legacy')" -c "DELETE FROM mcp.mcp_table WHERE mcp_service_name = 'legacy'" >/dev/null
    tests=$(echo "$tests" | grep -v '^01_' || true)
fi
run_regress $(echo "$tests" | grep -v '^99_' || true)

# ---- a plan-limit race through the coordinator and a worker at once ----
# Each round signs up a free user, then six clients (three on the coordinator, three on worker
# 1, each an application login with the tenant set per transaction) try to activate an
# instance for it at the same moment: exactly one may win, the others get MC001.
if echo "$tests" | grep -q '^03_'; then
    mcp_log "Citus: concurrent activations through the coordinator and a worker"
    for round in 1 2 3 4 5; do
        user=$(psql_on coord -c "SELECT mcp.sign_up('race$round@example.com')")
        start=$(( $(date +%s) + 2 ))
        for i in 1 2 3 4 5 6; do
            node=coord; [ $((i % 2)) -eq 0 ] && node=worker1
            (
                while [ "$(date +%s)" -lt "$start" ]; do sleep 0.05; done
                psql -X -q -At -h 127.0.0.1 -p "${PORT[$node]}" -U app -d postgres \
                    -c "BEGIN" -c "SELECT mcp.set_tenant('$user')" \
                    -c "SELECT mcp.create_instance('github')" -c "COMMIT" >"$WORK/race-$round-$i.out" 2>&1
            ) &
        done
        wait
        won=$(psql_on coord -c "SELECT count(*) FROM mcp.mcp_service_table WHERE user_id = '$user' AND status = 'active'")
        refused=$(cat "$WORK"/race-"$round"-*.out | grep -c 'plan limit reached' || true)
        check "race round $round: one activation wins, five get MC001" "1 5" "$won $refused"
    done
    drift=$(psql_on coord -c "SELECT count(*) FROM mcp.verify_counters()")
    check "the counters verify after the races" 0 "$drift"
fi

# ---- a worker whose keyring holds a different key refuses it up front ----
# mcp.distribute() copied the coordinator's key fingerprints to every worker: the worker that
# holds bob's shard, given another key for version 1, refuses to decrypt with a key-check error
# (not a per-row failure), and reads again once its key is restored. get_credentials decrypts
# on the node the backend is connected to (it reads the ciphertext through a routed statement),
# so the read goes through that worker.
if echo "$tests" | grep -q '^04_'; then
    mcp_log "Citus: a worker with a different key"
    bob=$(psql_on coord -c "SELECT mcp.find_user('bob@example.com')")
    oauth=$(psql_on coord -c "SELECT instance_id FROM mcp.mcp_service_table WHERE user_id = '$bob' AND custom_name = 'oauth'")
    port=$(psql_on coord -c "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
                             WHERE p.shardid = get_shard_id_for_distribution_column('mcp.mcp_credentials', '$bob'::uuid)")
    holder=worker1; [ "$port" = "${PORT[worker2]}" ] && holder=worker2
    read_secret() {
        psql -X -q -At -h 127.0.0.1 -p "${PORT[$holder]}" -U app -d postgres -c "BEGIN" \
            -c "SELECT mcp.set_tenant('$bob')" -c "SELECT client_secret FROM mcp.get_credentials('$oauth')" \
            -c "COMMIT" 2>&1 | grep -v '^$' | head -n 1
    }
    cp "$WORK/$holder/keyring" "$WORK/keyring.good"
    mcp_write_keyring "$WORK/$holder/keyring" "1 $(mcp_random_key)"
    mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$WORK/$holder/data" reload >/dev/null
    check "$holder with another key refuses it up front" \
        "ERROR:  key version 1 does not match the key recorded for this database" "$(read_secret)"
    cp "$WORK/keyring.good" "$WORK/$holder/keyring"
    mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$WORK/$holder/data" reload >/dev/null
    check "$holder decrypts again with its key restored" "client-secret-1" "$(read_secret)"
fi

# ---- online key rotation across the shards ----
# A second key version on every node (the highest is active): mcp.rotate_credentials re-seals
# every stored value under it, tenant by tenant on the workers, and the values still read.
if echo "$tests" | grep -q '^04_'; then
    mcp_log "Citus: key rotation"
    KEY2="2 $(mcp_random_key)"
    for n in "${NODES[@]}"; do
        mcp_write_keyring "$WORK/$n/keyring" "$KEY" "$KEY2"
        mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$WORK/$n/data" reload >/dev/null
    done
    stale=$(psql_on coord -c "SELECT count(*) FROM mcp.mcp_credentials WHERE key_version = 1")
    rotated=$(psql -X -q -At -h 127.0.0.1 -p "${PORT[coord]}" -U admin -d postgres \
        -c "SELECT mcp.rotate_credentials(1000)" 2>&1)
    check "rotate_credentials re-seals every stored row" "$stale" "$rotated"
    check "nothing is left under the old key" "0" \
        "$(psql_on coord -c "SELECT count(*) FROM mcp.mcp_credentials WHERE key_version = 1")"
    check "the values read back after rotation" "client-secret-1" "$(read_secret)"
fi

# ---- the maintenance worker on every node: it maintains the cluster once, on the coordinator ----
mcp_log "Citus: the maintenance worker on every node"
for n in "${NODES[@]}"; do
    psql_on "$n" -c "ALTER SYSTEM SET mcp_platform.maintenance_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
done
sleep 5
for n in "${NODES[@]}"; do
    psql_on "$n" -c "ALTER SYSTEM RESET mcp_platform.maintenance_interval" -c "SELECT pg_reload_conf()" >/dev/null
done
sleep 1
runs() { grep -c "mcp_platform maintenance in database \"postgres\": $2" "$WORK/$1/server.log" || true; }
check "the coordinator's worker ran maintenance without a failed step" yes \
    "$([ "$(runs coord '{"skipped": false.*"failed_steps": {}')" -gt 0 ] && echo yes || echo no)"
check "the coordinator's runs had no failure" 0 "$(runs coord '.*"failed_steps": {"')"
for n in worker1 worker2; do
    check "$n's worker skips (the coordinator maintains the cluster)" yes \
        "$([ "$(runs "$n" '{"skipped": true, "citus_worker": true}')" -gt 0 ] && echo yes || echo no)"
    check "$n's worker never failed" 0 "$(grep -c 'mcp_platform maintenance in database "postgres" failed' "$WORK/$n/server.log" || true)"
done

# ---- an event of a delegated call comes from the tenant's worker ----
# revoke_credentials with its tenant argument runs on the worker that holds the tenant's
# shards: that node sends the NOTIFY, at commit, to its listeners (docs/citus.md)
if echo "$tests" | grep -q '^09_'; then
    mcp_log "Citus: the event of a delegated call"
    app_on() { local n=$1; shift; psql -X -q -At -h 127.0.0.1 -p "${PORT[$n]}" -U app -d postgres "$@"; }
    gina=$(app_on coord -c "SELECT mcp.sign_up('gina@example.com')")
    grant=$(app_on coord -c "BEGIN" -c "SELECT mcp.set_tenant('$gina')" \
        -c "SELECT mcp.create_instance('gmail', tenant => '$gina')" -c "COMMIT" | grep -E '^[0-9a-f-]{36}$')
    app_on coord -c "BEGIN" -c "SELECT mcp.set_tenant('$gina')" \
        -c "SELECT mcp.set_oauth_client('$grant', 'client-g', 'secret-g', tenant => '$gina')" \
        -c "SELECT mcp.store_oauth_tokens('$grant', 'access-g', 'refresh-g', now() + interval '1 hour', 'read', tenant => '$gina')" \
        -c "COMMIT" >/dev/null
    port=$(psql_on coord -c "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
                             WHERE p.shardid = get_shard_id_for_distribution_column('mcp.mcp_credentials', '$gina'::uuid)")
    holder=worker1; [ "$port" = "${PORT[worker2]}" ] && holder=worker2
    psql -X -q -At -h 127.0.0.1 -p "${PORT[$holder]}" -U app -d postgres \
        -c "LISTEN mcp_credential_events" -c "SELECT pg_sleep(4)" >"$WORK/listener.out" 2>&1 &
    listener=$!
    sleep 1
    app_on coord -c "BEGIN" -c "SELECT mcp.set_tenant('$gina')" \
        -c "SELECT mcp.revoke_credentials('$grant', tenant => '$gina')" -c "COMMIT" >/dev/null
    wait "$listener" || true
    check "a listener on the tenant's worker gets the revocation" 1 \
        "$(grep -c "\"event\": \"revoked\".*\"instance_id\": \"$grant\"" "$WORK/listener.out" || true)"
    psql_on coord -c "SELECT mcp.erase_user('$gina')" >/dev/null
fi

# ---- mcp.distribute() refuses a node that does not preload the library ----
# (the planner hook that keeps NULL tenant arguments from crashing Citus's function delegation
# must be in every backend); distributing again once it is back sets the node up as before
mcp_log "Citus: a worker without the preloaded library"
restart_worker1() {
    psql_on worker1 -c "ALTER SYSTEM SET shared_preload_libraries = $1" >/dev/null
    mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$WORK/worker1/data" -l "$WORK/worker1/server.log" -w -t 60 \
        restart -m fast >/dev/null 9>&- || tail -n 20 "$WORK/worker1/server.log"
}
restart_worker1 citus
check "distribute refuses while worker1 does not preload mcp_platform" \
    "ERROR:  mcp_platform must be in shared_preload_libraries on every node" \
    "$(psql_on coord -c 'SELECT mcp.distribute()' 2>&1 | head -n 1)"
restart_worker1 'citus, mcp_platform'
check "distribute runs again once it does" ok \
    "$(psql_on coord -c 'SELECT mcp.distribute()' >/dev/null 2>&1 && echo ok)"

if echo "$tests" | grep -q '^99_'; then
    run_regress 99_undistribute
fi

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
