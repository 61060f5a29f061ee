#!/usr/bin/env bash
# The one test command (README "Getting started"; .ci/run calls it):
#   bash scripts/test.sh
# Installs what it needs (Debian packages, as root), builds with warnings as errors, runs the
# C++ unit tests and the fuzzers (bounded), installs the extension, starts a throwaway
# cluster as the postgres user and runs every pg_regress and isolation test against it.
# Exits non-zero on any failure, after printing regression.diffs and the server log.
#
# Environment: FUZZ_SECONDS (default 30), REGRESS / ISOLATION (subset of test names, for
# development), SKIP_UNIT=1, SKIP_FUZZ=1, SKIP_STRESS=1, STRESS_SECONDS (default 10),
# SKIP_WORKER=1 (no second, preloaded cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mcp_install_deps
export PATH=$MCP_PG_BIN:$PATH

FAILED=0
PASSED_COUNT=0
FAILED_COUNT=0
# Adds the "ok" / "FAILED" lines of a pg_regress or GoogleTest log to the totals.
count_results() {
    local log=$1
    PASSED_COUNT=$((PASSED_COUNT + $(grep -cE '^(not )?ok |^test .* \.\.\. ok|^\[       OK \]' "$log" || true)))
    FAILED_COUNT=$((FAILED_COUNT + $(grep -cE '\.\.\. FAILED|^\[  FAILED  \] [A-Za-z]' "$log" || true)))
}
WORK=$(mktemp -d /tmp/mcp_platform-test.XXXXXX)
chmod 755 "$WORK"
cleanup() { mcp_cluster_stop; rm -rf "$WORK"; }
trap cleanup EXIT

if [ "${SKIP_UNIT:-0}" != 1 ]; then
    mcp_log "C++ unit tests (src/core)"
    if ! make -s unittest 2>&1 | tee "$WORK/unit.log"; then FAILED=1; fi
    count_results "$WORK/unit.log"
fi
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    mcp_log "fuzzers, ${FUZZ_SECONDS:-30}s each"
    if make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}"; then
        for f in test/fuzz/*.cpp; do [ -e "$f" ] && PASSED_COUNT=$((PASSED_COUNT + 1)); done
    else
        FAILED=1; FAILED_COUNT=$((FAILED_COUNT + 1))
    fi
fi

mcp_take_install_lock
mcp_build_install

# Runs `make installcheck` against the current cluster; prints diffs and log on failure.
run_installcheck() {
    local label=$1; shift
    mcp_log "pg_regress and isolation tests ($label)"
    rm -rf results output_iso regression.diffs regression.out
    local args=()
    [ -n "${REGRESS+x}" ] && args+=("REGRESS=$REGRESS")
    [ -n "${ISOLATION+x}" ] && args+=("ISOLATION=$ISOLATION")
    local log="$WORK/installcheck-$RANDOM.log"
    local rc=0
    make -s installcheck PG_CONFIG="$MCP_PG_BIN/pg_config" "${args[@]}" 2>&1 | tee "$log" || rc=$?
    count_results "$log"
    if [ "$rc" -ne 0 ]; then
        FAILED=1
        for f in regression.diffs; do
            [ -f "$f" ] && { echo "----- $f"; cat "$f"; }
        done
        echo "----- server log (last 200 lines)"
        tail -n 200 "$MCP_CLUSTER_DIR/server.log"
    fi
}

# The test cluster: a keyring file with one key, readable only by the postgres user.
KEYRING="$WORK/cluster/keyring"
mcp_cluster_start "$WORK/cluster" \
    "mcp_platform.key_file = '$KEYRING'" \
    "log_min_messages = warning"
mcp_write_keyring "$KEYRING" "1 $(mcp_random_key)"
mcp_cluster_reload
run_installcheck "keyring file"
# Bounded stress tests against the same cluster (test/stress/*.sh; STRESS_SECONDS per phase).
if [ "${SKIP_STRESS:-0}" != 1 ]; then
    for stress in test/stress/*.sh; do
        [ -f "$stress" ] || continue
        mcp_log "stress: $stress"
        if bash "$stress"; then
            PASSED_COUNT=$((PASSED_COUNT + 1))
        else
            FAILED=1; FAILED_COUNT=$((FAILED_COUNT + 1))
        fi
    done
fi

# The canary secret must reach neither the server log (debug5), nor relation files, nor WAL.
mcp_log "canary test: no plaintext secret in log, heap or WAL"
if MCP_CLUSTER_DIR=$MCP_CLUSTER_DIR bash scripts/check_no_plaintext.sh; then
    PASSED_COUNT=$((PASSED_COUNT + 1))
else
    FAILED=1; FAILED_COUNT=$((FAILED_COUNT + 1))
fi

# pg_dump / pg_restore round trip of a populated database, with the same and another keyring.
mcp_log "pg_dump / pg_restore round trip"
if KEYRING=$KEYRING MCP_CLUSTER_DIR=$MCP_CLUSTER_DIR bash scripts/check_dump_restore.sh; then
    PASSED_COUNT=$((PASSED_COUNT + 1))
else
    FAILED=1; FAILED_COUNT=$((FAILED_COUNT + 1))
fi
mcp_cluster_stop

# The whole suite again with the other key source: a key command that prints the keyring
# (stored outside the data directory, readable only by the postgres user).
KEYDIR="$WORK/keycmd"
mkdir -p "$KEYDIR"
mcp_write_keyring "$KEYDIR/keyring" "1 $(mcp_random_key)"
[ "$(id -u)" -eq 0 ] && chown postgres: "$KEYDIR"
chmod 700 "$KEYDIR"
mcp_cluster_start "$WORK/cluster2" \
    "mcp_platform.key_command = 'cat $KEYDIR/keyring'" \
    "log_min_messages = warning"
run_installcheck "key command"
mcp_cluster_stop

# ---- one more cluster, with mcp_platform in shared_preload_libraries ----------------------
# The whole suite again (preloading must change nothing), then the maintenance background
# worker: it runs in its databases, skips one without the extension, removes expired audit
# rows, survives an error, shows in pg_stat_activity, and the server stops cleanly.
if [ "${SKIP_WORKER:-0}" != 1 ]; then
    mcp_log "maintenance background worker (shared_preload_libraries)"
    PRELOAD_DIR="$WORK/preload"
    mcp_cluster_start "$PRELOAD_DIR" "log_min_messages = warning"
    # databases first (a worker for a database that does not exist yet would fail to connect)
    psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL' >/dev/null
CREATE DATABASE mcp_worker_test;
CREATE DATABASE mcp_no_ext;
\c mcp_worker_test
CREATE EXTENSION mcp_platform;
SQL
    mcp_write_keyring "$PRELOAD_DIR/keyring" "1 $(mcp_random_key)"
    {
        echo "shared_preload_libraries = 'mcp_platform'"
        echo "mcp_platform.key_file = '$PRELOAD_DIR/keyring'"
        echo "mcp_platform.maintenance_interval = '1s'"
        echo "mcp_platform.maintenance_databases = 'mcp_worker_test, mcp_no_ext'"
    } | mcp_as_pg tee -a "$PRELOAD_DIR/data/postgresql.conf" >/dev/null
    mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$PRELOAD_DIR/data" -l "$PRELOAD_DIR/server.log" -w -t 60 restart >/dev/null 9>&-
    run_installcheck "preloaded"
    worker_check() {   # worker_check "what" COMMAND...: one test result
        local what=$1; shift
        if "$@"; then echo "ok - worker: $what"; PASSED_COUNT=$((PASSED_COUNT + 1));
        else echo "not ok - worker: $what"; FAILED=1; FAILED_COUNT=$((FAILED_COUNT + 1)); fi
    }
    wait_sql() {       # wait_sql DB SQL: waits up to 30 s for SQL to return t
        local i
        for i in $(seq 1 60); do
            [ "$(psql -X -At -d "$1" -c "$2" 2>/dev/null)" = t ] && return 0
            sleep 0.5
        done
        return 1
    }
    wait_log() {       # wait_log PATTERN: waits up to 30 s for the server log to match
        local i
        for i in $(seq 1 60); do
            grep -qE "$1" "$PRELOAD_DIR/server.log" && return 0
            sleep 0.5
        done
        return 1
    }
    psql -X -q -v ON_ERROR_STOP=1 -d mcp_worker_test >/dev/null <<'SQL'
SELECT mcp.ensure_audit_partitions(now() - interval '100 days', now() - interval '100 days');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'refresh', 'success', now() - g * interval '50 days'
  FROM generate_series(0, 2) AS g;
SQL
    worker_check "one worker per database in pg_stat_activity" \
        wait_sql mcp_worker_test "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'mcp_platform maintenance'"
    worker_check "expired rows removed, younger kept" \
        wait_sql mcp_worker_test "SELECT count(*) FILTER (WHERE created_at < now() - interval '90 days') = 0 AND count(*) = 2 FROM mcp.token_audit_log"
    worker_check "logs one line per run" \
        wait_log 'mcp_platform maintenance in database "mcp_worker_test": \{.*"skipped": false'
    worker_check "skips a database without the extension" \
        wait_log 'extension not installed in database "mcp_no_ext", skipping'
    # an error in a run (an invalid retention) is logged, and the next runs go on
    psql -X -q -d postgres -c "ALTER SYSTEM SET mcp_platform.audit_retention = 'ninety days'" -c "SELECT pg_reload_conf()" >/dev/null
    worker_check "an error in a run is logged" \
        wait_log 'invalid input syntax for type interval: "ninety days"'
    worker_check "worker still running after the error" \
        wait_sql mcp_worker_test "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'mcp_platform maintenance'"
    psql -X -q -d mcp_worker_test -c "SELECT mcp.ensure_audit_partitions(now() - interval '95 days', now() - interval '95 days')" \
        -c "INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at) VALUES (gen_random_uuid(), gen_random_uuid(), 'refresh', 'success', now() - interval '95 days')" >/dev/null
    psql -X -q -d postgres -c "ALTER SYSTEM RESET mcp_platform.audit_retention" -c "SELECT pg_reload_conf()" >/dev/null
    worker_check "runs again after the error" \
        wait_sql mcp_worker_test "SELECT count(*) FILTER (WHERE created_at < now() - interval '90 days') = 0 FROM mcp.token_audit_log"
    # pg_dump / pg_restore round-trips the log, its day partitions (not extension members),
    # the DEFAULT partition and the rollup
    psql -X -q -v ON_ERROR_STOP=1 -d mcp_worker_test >/dev/null <<'SQL'
SELECT mcp.ensure_audit_partitions(now() - interval '20 days', now() - interval '18 days');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, metadata, created_at)
SELECT md5('i' || (g % 7))::uuid, md5('u' || (g % 3))::uuid, 'validate', 'failure', 'oauth2',
       jsonb_build_object('g', g), now() - g * interval '7 minutes'
  FROM generate_series(1, 6000) AS g;            -- about 29 days, partitions and DEFAULT alike
SQL
    audit_digest() {
        psql -X -At -d "$1" -c "SELECT count(*) || ' ' || md5(string_agg(l::text, ',' ORDER BY audit_id)) FROM mcp.token_audit_log l WHERE created_at > now() - interval '60 days'" \
                        -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass" \
                        -c "SELECT count(*) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid WHERE h.inhparent = 'mcp.token_audit_log'::regclass" \
                        -c "SELECT count(*) FROM (SELECT * FROM mcp.token_audit_summary EXCEPT ALL SELECT instance_id, user_id, operation, method, count(*), count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE status = 'failure'), round(100.0 * count(*) FILTER (WHERE status = 'success') / count(*), 2), min(created_at), max(created_at) FROM mcp.token_audit_log WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4) x"
    }
    # let the worker move the DEFAULT partition's rows into day partitions first
    worker_check "the worker moves DEFAULT-partition rows into day partitions" \
        wait_sql mcp_worker_test "SELECT count(*) = 0 FROM mcp.token_audit_log_default"
    dump_ok=0
    # The README's restore recipe: the indexes of the day partitions are left out of the list
    # (attaching a partition to the extension's log creates them again).
    if pg_dump -Fc -d mcp_worker_test -f "$WORK/audit.dump" && createdb mcp_restore_test &&
       pg_restore -l "$WORK/audit.dump" | grep -vE ' (INDEX|CONSTRAINT|INDEX ATTACH) mcp token_audit_log_p[0-9]{8}' > "$WORK/audit.list" &&
       pg_restore --exit-on-error -L "$WORK/audit.list" -d mcp_restore_test "$WORK/audit.dump"; then dump_ok=1; fi
    worker_check "pg_dump/pg_restore succeed" test "$dump_ok" -eq 1
    worker_check "restored log, partitions and summary equal the source" \
        test "$(audit_digest mcp_worker_test)" = "$(audit_digest mcp_restore_test)"
    stop_started=$(date +%s)
    if mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$PRELOAD_DIR/data" -m fast -w -t 30 stop >/dev/null; then stop_rc=0; else stop_rc=1; fi
    stop_seconds=$(( $(date +%s) - stop_started ))
    worker_check "server stops cleanly within 10 s (took ${stop_seconds}s)" \
        test "$stop_rc" -eq 0 -a "$stop_seconds" -le 10
    worker_check "no crash in the server log" \
        bash -c "! grep -E 'terminated by signal|PANIC|was terminated|server process .* exited with exit code [^01]' '$PRELOAD_DIR/server.log' && grep -q 'database system is shut down' '$PRELOAD_DIR/server.log'"
    if [ "$FAILED" -ne 0 ]; then
        echo "----- server log (mcp_platform lines)"
        grep -E 'mcp_platform|ERROR|FATAL' "$PRELOAD_DIR/server.log" | tail -n 60
    fi
    MCP_CLUSTER_DIR="$PRELOAD_DIR"
fi

echo
echo "$PASSED_COUNT passed, $FAILED_COUNT failed"
if [ "$FAILED" -ne 0 ]; then
    exit 1
fi
