#!/usr/bin/env bash
# The API path against the same work written as plain SQL without checks, side by side
# (medians of ROUNDS runs of DURATION seconds, configurations interleaved round by round):
#   get_credentials   mcp.get_credentials            vs SELECT mcp.decrypt(<column>, <context>)
#   set_api_key       mcp.set_api_key                vs INSERT … ON CONFLICT of mcp.encrypt(…),
#                                                       the instance's UPDATE, the audit INSERT
#   create_instance   mcp.create_instance            vs the INSERT (plan trigger on)
# Each transaction is BEGIN; set_config('mcp.user_id', …, true); <the work>; COMMIT, as a
# member of mcp_app for the API and as the superuser (no RLS, no checks) for plain SQL, so
# both send the same number of statements. Prints tps and the time ratio API / plain
# (target <= 1.25).
#   store_oauth_tokens mcp.store_oauth_tokens    vs the credentials UPDATE of mcp.encrypt(…)
#                                                       output (tokens and the refresh schedule),
#                                                       the instance's UPDATE, the audit INSERT
#   bash bench/api_bench.sh            (ROUNDS=3 DURATION=5 CLIENTS=4 USERS=2000 OPS="get set create store")
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/api_setup.sh
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-4}
USERS=${USERS:-2000}
OPS=${OPS:-get set create store}

mcp_prepare api_bench >/dev/null
KEYRING="$WORK/cluster/keyring"
mcp_cluster_start "$WORK/cluster" "mcp_platform.key_file = '$KEYRING'" "shared_buffers = 256MB" \
    "max_wal_size = 2GB" "log_min_messages = warning"
mcp_write_keyring "$KEYRING" "1 $(mcp_random_key)"
mcp_cluster_reload
DB=postgres
bench_api_setup $DB "$USERS"

script() {  # script NAME BODY: a pgbench script for user :u (random) and its instance :i
    { printf '%s\n' '\set n random(1, '"$USERS"')' \
        'BEGIN;' \
        "SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'), true);"
      printf '%s\n' "$2" 'END;'; } >"$WORK/$1.sql"
}
U="('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid"
I="('00000000-0000-0000-0001-' || lpad(:n::text, 12, '0'))::uuid"
script api_get "SELECT api_key FROM mcp.get_credentials($I);"
script plain_get "SELECT mcp.decrypt(c.api_key, mcp.credential_context(c.user_id, c.instance_id, 'api_key')) FROM mcp.mcp_credentials c WHERE c.user_id = $U AND c.instance_id = $I;"
script api_set "SELECT mcp.set_api_key($I, 'sk-bench-' || md5(random()::text) || md5(random()::text));"
script plain_set "INSERT INTO mcp.mcp_credentials AS c (user_id, instance_id, api_key, key_version)
VALUES ($U, $I, mcp.encrypt('sk-bench-' || md5(random()::text) || md5(random()::text), mcp.credential_context($U, $I, 'api_key')), 1)
ON CONFLICT (user_id, instance_id) DO UPDATE SET api_key = excluded.api_key, key_version = excluded.key_version;
UPDATE mcp.mcp_service_table SET credentials_updated_at = now() WHERE user_id = $U AND instance_id = $I;
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method) VALUES ($I, $U, 'set_api_key', 'success', 'api_key');"
J="('00000000-0000-0000-0002-' || lpad(:n::text, 12, '0'))::uuid"
script api_store "SELECT mcp.store_oauth_tokens($J, 'access-' || md5(random()::text), 'refresh-' || md5(random()::text), now() + interval '1 hour', 'scope');"
script plain_store "UPDATE mcp.mcp_credentials SET access_token = mcp.encrypt('access-' || md5(random()::text), mcp.credential_context($U, $J, 'access_token')), refresh_token = mcp.encrypt('refresh-' || md5(random()::text), mcp.credential_context($U, $J, 'refresh_token')), token_expires_at = now() + interval '1 hour', token_scope = 'scope', oauth_status = 'completed', refresh_state = 'ok', refresh_lease = NULL, refresh_claimed_until = NULL, refresh_failures = 0, failure_days = 0, next_attempt_at = NULL, tokens_stored_at = now(), refresh_due_at = now() + interval '45 minutes', key_version = 1 WHERE user_id = $U AND instance_id = $J;
UPDATE mcp.mcp_service_table SET oauth_status = 'completed', credentials_updated_at = now() WHERE user_id = $U AND instance_id = $J;
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, metadata) VALUES ($J, $U, 'store_tokens', 'success', 'oauth', jsonb_build_object('refresh_token_replaced', true));"
script api_create "SELECT mcp.create_instance('bench_key');"
script plain_create "INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id, status) VALUES ($U, '00000000-0000-0000-0000-0000000000c1', 'active') RETURNING instance_id;"

run() {  # run NAME ROLE
    local out
    out=$(pgbench -n -M prepared -U "$2" -c "$CLIENTS" -j 2 -T "$DURATION" -f "$WORK/$1.sql" $DB 2>&1) ||
        { echo "$1:"; echo "$out" | grep -m3 -i error; return 1; }
    echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' >>"$WORK/$1.tps"
}
median() { sort -n "$WORK/$1.tps" | awk '{a[NR]=$1} END {printf "%.0f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "api_bench: $CLIENTS clients, $ROUNDS rounds of ${DURATION}s, $USERS users, $(nproc) CPUs"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS"
    for op in $OPS; do
        run "api_$op" mcp_bench
        run "plain_$op" postgres
    done
done
echo
# the range of the ratio over rounds (each round ran API and plain SQL back to back)
range() { paste "$WORK/plain_$1.tps" "$WORK/api_$1.tps" |
    awk '{r = $1 / $2; if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r}
         END {printf "%.2f-%.2f", lo, hi}'; }
echo "| operation | API tps | plain SQL tps | time ratio API / plain | range over rounds | target |"
echo "|---|---:|---:|---:|---|---|"
for op in $OPS; do
    a=$(median "api_$op"); p=$(median "plain_$op")
    echo "| $op | $a | $p | $(ratio "$p" "$a") | $(range "$op") | <= 1.25 |"
done
psql -qXAt -d $DB -c "SELECT 'counter rows differing from the truth after the run: ' || count(*) FROM mcp.verify_counters()"
