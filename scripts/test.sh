#!/usr/bin/env bash
# The one test command (README "Getting started"; .ci/run calls it):
#   bash scripts/test.sh
# Installs what it needs (Debian packages, as root), builds with warnings as errors, runs the
# C++ unit tests and the fuzzers (bounded), installs the extension, starts a throwaway
# cluster as the postgres user and runs every pg_regress and isolation test against it.
# Exits non-zero on any failure, after printing regression.diffs and the server log.
#
# Environment: FUZZ_SECONDS (default 30), REGRESS / ISOLATION (subset of test names, for
# development), SKIP_UNIT=1, SKIP_FUZZ=1, SKIP_STRESS=1, STRESS_SECONDS (default 10).
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

echo
echo "$PASSED_COUNT passed, $FAILED_COUNT failed"
if [ "$FAILED" -ne 0 ]; then
    exit 1
fi
