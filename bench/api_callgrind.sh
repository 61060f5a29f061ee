#!/usr/bin/env bash
# The API path against the same work as plain SQL, in instructions: what bench/api_bench.sh
# measures in transactions per second, counted instead by valgrind (callgrind) in a
# single-user backend, so that the result does not depend on the load of a shared machine.
# Each transaction is the one api_bench.sh sends (BEGIN; set_config('mcp.user_id', …, true);
# <the work>; COMMIT, as prepared statements), for a random user of USERS; the API as a member
# of mcp_app, the plain SQL as the superuser. Instructions per transaction are the difference
# between runs of N2 and N1 transactions, divided by N2 - N1 (start-up and first-call costs
# cancel out). Single-user mode has no client protocol: each transaction costs the server
# more (four messages, their syscalls) when it comes from a client, the same for both.
#   bash bench/api_callgrind.sh      (N1=300 N2=900 USERS=2000 OPS="get set create store")
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/api_setup.sh
N1=${N1:-300}
N2=${N2:-900}
USERS=${USERS:-2000}
OPS=${OPS:-get set create store}

mcp_install_deps valgrind
mcp_prepare api_callgrind >/dev/null
KEYRING="$WORK/cluster/keyring"
mcp_cluster_start "$WORK/cluster" "mcp_platform.key_file = '$KEYRING'" "autovacuum = off"
mcp_write_keyring "$KEYRING" "1 $(mcp_random_key)"
mcp_cluster_reload
bench_api_setup postgres "$USERS"
mcp_cluster_stop
DATA=$MCP_CLUSTER_DIR/data
OUT=$WORK/callgrind   # written by the postgres user
mkdir -p "$OUT" && chmod 777 "$OUT"

# gen KIND N: the statements of N transactions of KIND (api_get, plain_get, ...), one a line
gen() {
    local kind=$1 n=$2 k i u v
    U() { printf '00000000-0000-0000-0000-%012d' "$1"; }
    V() { printf '00000000-0000-0000-0001-%012d' "$1"; }
    case $kind in api_*) echo "SET ROLE mcp_bench" ;; esac
    echo "PREPARE t(uuid) AS SELECT set_config('mcp.user_id', \$1::text, true)"
    case $kind in
    api_get) echo "PREPARE w(uuid, uuid) AS SELECT api_key FROM mcp.get_credentials(\$2)" ;;
    plain_get) echo "PREPARE w(uuid, uuid) AS SELECT mcp.decrypt(c.api_key, mcp.credential_context(c.user_id, c.instance_id, 'api_key')) FROM mcp.mcp_credentials c WHERE c.user_id = \$1 AND c.instance_id = \$2" ;;
    api_set) echo "PREPARE w(uuid, uuid) AS SELECT mcp.set_api_key(\$2, 'sk-bench-' || md5(random()::text) || md5(random()::text))" ;;
    plain_set)
        echo "PREPARE w(uuid, uuid) AS INSERT INTO mcp.mcp_credentials AS c (user_id, instance_id, api_key, key_version) VALUES (\$1, \$2, mcp.encrypt('sk-bench-' || md5(random()::text) || md5(random()::text), mcp.credential_context(\$1, \$2, 'api_key')), 1) ON CONFLICT (user_id, instance_id) DO UPDATE SET api_key = excluded.api_key, key_version = excluded.key_version"
        echo "PREPARE w2(uuid, uuid) AS UPDATE mcp.mcp_service_table SET credentials_updated_at = now() WHERE user_id = \$1 AND instance_id = \$2"
        echo "PREPARE w3(uuid, uuid) AS INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method) VALUES (\$2, \$1, 'set_api_key', 'success', 'api_key')" ;;
    api_store) echo "PREPARE w(uuid, uuid) AS SELECT mcp.store_oauth_tokens(\$2, 'access-' || md5(random()::text), 'refresh-' || md5(random()::text), now() + interval '1 hour', 'scope')" ;;
    plain_store)
        echo "PREPARE w(uuid, uuid) AS UPDATE mcp.mcp_credentials SET access_token = mcp.encrypt('access-' || md5(random()::text), mcp.credential_context(\$1, \$2, 'access_token')), refresh_token = mcp.encrypt('refresh-' || md5(random()::text), mcp.credential_context(\$1, \$2, 'refresh_token')), token_expires_at = now() + interval '1 hour', token_scope = 'scope', oauth_status = 'completed', refresh_state = 'ok', refresh_lease = NULL, refresh_claimed_until = NULL, refresh_failures = 0, failure_days = 0, next_attempt_at = NULL, tokens_stored_at = now(), refresh_due_at = now() + interval '45 minutes', key_version = 1 WHERE user_id = \$1 AND instance_id = \$2"
        echo "PREPARE w2(uuid, uuid) AS UPDATE mcp.mcp_service_table SET oauth_status = 'completed', credentials_updated_at = now() WHERE user_id = \$1 AND instance_id = \$2"
        echo "PREPARE w3(uuid, uuid) AS INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, metadata) VALUES (\$2, \$1, 'store_tokens', 'success', 'oauth', jsonb_build_object('refresh_token_replaced', true))" ;;
    api_create) echo "PREPARE w(uuid, uuid) AS SELECT mcp.create_instance('bench_key')" ;;
    plain_create) echo "PREPARE w(uuid, uuid) AS INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id, status) VALUES (\$1, '00000000-0000-0000-0000-0000000000c1', 'active') RETURNING instance_id" ;;
    esac
    RANDOM=42
    for ((k = 0; k < n; k++)); do
        i=$(( (RANDOM * 32768 + RANDOM) % USERS + 1 ))
        u=$(U "$i"); v=$(V "$i")
        case $kind in *_store) v=$(printf '00000000-0000-0000-0002-%012d' "$i") ;; esac
        echo "BEGIN"
        echo "EXECUTE t('$u')"
        echo "EXECUTE w('$u', '$v')"
        if [ "$kind" = plain_set ] || [ "$kind" = plain_store ]; then
            echo "EXECUTE w2('$u', '$v')"
            echo "EXECUTE w3('$u', '$v')"
        fi
        echo "COMMIT"
    done
}

single() {  # single INPUT [callgrind output]: runs a single-user backend on INPUT
    if [ $# -gt 1 ]; then
        mcp_as_pg valgrind --tool=callgrind --callgrind-out-file="$2" \
            "$MCP_PG_BIN/postgres" --single -D "$DATA" postgres <"$1" >"$1.out" 2>&1
    else
        mcp_as_pg "$MCP_PG_BIN/postgres" --single -D "$DATA" postgres <"$1" >"$1.out" 2>&1
    fi
    if grep -q 'ERROR' "$1.out"; then grep -m3 'ERROR' "$1.out"; return 1; fi
}

instructions() {  # instructions KIND N: callgrind's total for N transactions (after a VACUUM)
    echo "VACUUM (ANALYZE)" >"$WORK/vacuum.sql"
    single "$WORK/vacuum.sql"
    gen "$1" "$2" >"$WORK/$1.$2.sql"
    single "$WORK/$1.$2.sql" "$OUT/$1.$2.cg"
    sed -n 's/^summary: *//p; s/^totals: *//p' "$OUT/$1.$2.cg" | head -1
}

echo "api_callgrind: $N1 and $N2 transactions, $USERS users, valgrind $(valgrind --version)"
echo
echo "| operation | API instructions/txn | plain SQL instructions/txn | ratio API / plain | target |"
echo "|---|---:|---:|---:|---|"
for op in $OPS; do
    declare -A per
    for side in api plain; do
        a=$(instructions "${side}_$op" "$N1")
        b=$(instructions "${side}_$op" "$N2")
        per[$side]=$(( (b - a) / (N2 - N1) ))
    done
    echo "| $op | ${per[api]} | ${per[plain]} | $(awk -v a="${per[api]}" -v b="${per[plain]}" 'BEGIN {printf "%.2f", a / b}') | <= 1.25 |"
done
