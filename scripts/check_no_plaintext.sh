#!/usr/bin/env bash
# The canary test (issue #3): a random canary secret goes through every credential API
# function as bind parameters (pgbench -M extended), including calls that fail, with
# log_min_messages = debug5. Then the canary must not appear in the server log, in the raw
# bytes of any relation file of the database, or in the WAL (raw segments and pg_waldump).
# Positive controls (the same scanners must find a second canary stored and logged in
# plaintext on purpose) prove that each scan can fail.
#
# Called by scripts/test.sh with a running cluster: PGHOST/PGPORT/PGUSER and MCP_CLUSTER_DIR set.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export PATH=$MCP_PG_BIN:$PATH

DATA=$MCP_CLUSTER_DIR/data
LOG=$MCP_CLUSTER_DIR/server.log
WORK=$(mktemp -d /tmp/mcp_canary.XXXXXX)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
CANARY="canary-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
CONTROL="control-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
DB=mcp_canary
fail() { echo "CANARY TEST FAILED: $*" >&2; exit 1; }

PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d $DB <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION mcp_platform;
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('canary_gh', 'GitHub', 7401, 'api_key'), ('canary_gm', 'Gmail', 7402, 'oauth');
INSERT INTO mcp.users (id, email) VALUES ('ca000000-0000-0000-0000-00000000000a', 'canary-a@example.com'),
                                         ('ca000000-0000-0000-0000-00000000000b', 'canary-b@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, status)
SELECT i.id::uuid, i.u::uuid, t.mcp_service_id, 'inactive'
  FROM (VALUES ('ca100000-0000-0000-0000-000000000001', 'ca000000-0000-0000-0000-00000000000a', 'canary_gh'),
               ('ca300000-0000-0000-0000-000000000003', 'ca000000-0000-0000-0000-00000000000a', 'canary_gm'),
               ('cb100000-0000-0000-0000-000000000001', 'ca000000-0000-0000-0000-00000000000b', 'canary_gh')) AS i(id, u, svc)
  JOIN mcp.mcp_table t ON t.mcp_service_name = i.svc;
CREATE TABLE public.control_plaintext (v text);
SQL

psql -X -q -d postgres -c "ALTER SYSTEM SET log_min_messages = debug5" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
LOG_START=$(stat -c %s "$LOG")
WAL_START=$(psql -X -At -d $DB -c "SELECT pg_current_wal_lsn()")

# One pgbench run per call (a failing call ends a pgbench client): $1 = expect ok|fail, $2 = SQL.
# Every secret is a pgbench variable, so -M extended sends it as a bind parameter.
call() {
    local expect=$1 sql=$2 rc=0
    printf '%s\n' "SET ROLE mcp_app;" "SELECT set_config('mcp.user_id', :tenant, false);" "$sql" > "$WORK/call.sql"
    pgbench -n -M extended -t 1 -f "$WORK/call.sql" -d $DB \
        -D canary="$CANARY" -D long="$CANARY$(printf 'x%.0s' $(seq 1 600))" \
        -D longtoken="$CANARY$(printf 'x%.0s' $(seq 1 8200))" \
        -D tenant=ca000000-0000-0000-0000-00000000000a \
        -D a1=ca100000-0000-0000-0000-000000000001 -D a3=ca300000-0000-0000-0000-000000000003 \
        -D b1=cb100000-0000-0000-0000-000000000001 >"$WORK/pgbench.out" 2>&1 || rc=$?
    if [ "$expect" = ok ] && [ $rc -ne 0 ]; then cat "$WORK/pgbench.out"; fail "call failed: $sql"; fi
    if [ "$expect" = fail ] && ! grep -q "ERROR" "$WORK/pgbench.out"; then cat "$WORK/pgbench.out"; fail "call did not fail: $sql"; fi
    if grep -q "$CANARY" "$WORK/pgbench.out" && [ "${3:-}" != returns_secret ]; then
        cat "$WORK/pgbench.out"; fail "an error message sent to the client contains the canary: $sql"
    fi
    return 0
}

call ok   "SELECT mcp.set_api_key(:a1, :canary);"
call fail "SELECT mcp.set_api_key(:a1, :long);"              # 22001
call fail "SELECT mcp.set_api_key(:a3, :canary);"            # MC202
call fail "SELECT mcp.set_api_key(:b1, :canary);"            # 42501
call ok   "SELECT mcp.get_credentials(:a1);" returns_secret
call ok   "SELECT mcp.set_oauth_client(:a3, 'client-id', :canary);"
call fail "SELECT mcp.set_oauth_client(:a3, 'client-id', :long);"
call fail "SELECT mcp.set_oauth_client(:a1, 'client-id', :canary);"
call ok   "SELECT mcp.begin_oauth(:a3, 'https://auth.example.com/authorize');"
call fail "SELECT mcp.complete_oauth(:canary);"              # MC201
call ok   "SELECT mcp.store_oauth_tokens(:a3, :canary, :canary, now() + interval '1 hour', 'repo');"
call fail "SELECT mcp.store_oauth_tokens(:a3, :longtoken, :canary, now(), 'repo');"
call fail "SELECT mcp.store_oauth_tokens(:a1, :canary, :canary, now(), 'repo');"
call fail "SELECT mcp.store_oauth_tokens(:b1, :canary, :canary, now(), 'repo');"
call ok   "SELECT mcp.store_oauth_tokens(:a3, :canary, NULL, now() + interval '2 hours', 'repo');"
call ok   "SELECT mcp.get_credentials(:a3);" returns_secret
call ok   "SELECT mcp.claim_token_refresh('1 day', 10);"
call ok   "RESET ROLE; SELECT mcp.encrypt(:canary, '\\x01'::bytea);"
call fail "RESET ROLE; SELECT mcp.decrypt(mcp.encrypt(:canary, '\\x01'::bytea), '\\x02'::bytea);"   # MC102
call fail "SELECT mcp.encrypt(:canary, '\\x01'::bytea);"     # 42501 for mcp_app
# Rotation path: re-seal under the same key does nothing; key_status and rotate touch every row.
call ok   "RESET ROLE; SELECT mcp.rotate_credentials(100);"
call ok   "RESET ROLE; SELECT count(*) FROM mcp.key_status();"
# Positive controls: stored in plaintext and written to the log on purpose.
call ok   "RESET ROLE; INSERT INTO public.control_plaintext VALUES ('$CONTROL');"
psql -X -q -d $DB -c "DO \$\$ BEGIN RAISE LOG 'control %', '$CONTROL'; END \$\$" >/dev/null
call ok   "SELECT mcp.revoke_credentials(:a1);"

psql -X -q -d postgres -c "ALTER SYSTEM RESET log_min_messages" -c "SELECT pg_reload_conf()" >/dev/null
psql -X -q -d $DB -c "CHECKPOINT" >/dev/null
psql -X -q -d $DB -c "SELECT pg_switch_wal()" >/dev/null
WAL_END=$(psql -X -At -d $DB -c "SELECT pg_current_wal_lsn()")
DBOID=$(psql -X -At -d $DB -c "SELECT oid FROM pg_database WHERE datname = current_database()")
sleep 0.5

# 1. the server log (only what this run wrote)
tail -c +"$((LOG_START + 1))" "$LOG" > "$WORK/run.log"
grep -q "$CONTROL" "$WORK/run.log" || fail "positive control missing from the server log: the log scan cannot work"
[ "$(grep -c 'DEBUG' "$WORK/run.log")" -gt 0 ] || fail "no DEBUG lines: log_min_messages = debug5 was not in effect"
grep -q 'STATEMENT: .*mcp.set_api_key(\$1, \$2)' "$WORK/run.log" ||
    fail "failing calls were not logged with bind placeholders: the canary did not travel as a bind parameter"
if grep -n "$CANARY" "$WORK/run.log"; then fail "canary found in the server log"; fi
# 2. raw relation files of the database (heap, TOAST, indexes, free space maps)
grep -rlq --binary-files=text "$CONTROL" "$DATA/base/$DBOID" || fail "positive control missing from the relation files"
if grep -rl --binary-files=text "$CANARY" "$DATA/base/$DBOID"; then fail "canary found in relation files"; fi
# 3. the WAL: raw segments and pg_waldump's rendering of this run's records
grep -rlq --binary-files=text "$CONTROL" "$DATA/pg_wal" || fail "positive control missing from the WAL segments"
if grep -rl --binary-files=text "$CANARY" "$DATA/pg_wal"; then fail "canary found in WAL segments"; fi
mcp_as_pg "$MCP_PG_BIN/pg_waldump" -p "$DATA/pg_wal" -s "$WAL_START" -e "$WAL_END" > "$WORK/waldump.txt" 2>/dev/null || true
[ -s "$WORK/waldump.txt" ] || fail "pg_waldump printed nothing for $WAL_START..$WAL_END"
if grep -n "$CANARY" "$WORK/waldump.txt"; then fail "canary found in pg_waldump output"; fi

psql -X -q -d postgres -c "DROP DATABASE $DB"
echo "canary test: passed ($(grep -c . "$WORK/run.log") log lines at debug5, $(wc -l < "$WORK/waldump.txt") WAL records scanned; positive controls found by every scan)"
