#!/usr/bin/env bash
# The one test command (README "Getting started"; .ci/run calls it):
#   bash scripts/test.sh
# Installs what it needs (Debian packages, as root), builds with warnings as errors, runs the
# C++ unit tests (make unittest) and the fuzzers (make fuzz, bounded), installs the extension,
# runs every pg_regress and isolation test (make installcheck) against a throwaway cluster as
# the postgres user -- a keyring file with shared_preload_libraries, then a key command with
# session_preload_libraries -- the node-postgres example (examples/node: npm ci, node --test,
# on the first cluster), the stress tests, and the TAP tests (make prove_installcheck: test/t/*.pl,
# servers of their own). Exits non-zero on any failure, after printing regression.diffs, the
# server log and the TAP logs; the last line is "N passed, M failed".
# All that runs on the machine's PostgreSQL (scripts/lib.sh: PG_CONFIG or MCP_PG_VERSION
# choose another), and then once more on PostgreSQL 17 in a fresh Debian 13 root
# (scripts/debian_root.sh trixie; the counts include both runs).
#
# Environment: FUZZ_SECONDS (default 30), REGRESS / ISOLATION (subset of test names) and
# PROVE_TESTS (subset of test/t/*.pl), for development; SKIP_UNIT=1, SKIP_FUZZ=1,
# SKIP_STRESS=1, STRESS_SECONDS (default 10), SKIP_TAP=1, SKIP_NODE=1 (the node example;
# without it, Debian's nodejs and npm are installed when node or npm is missing);
# SKIP_CITUS=1 (the Citus suite, scripts/citus_test.sh, which runs only where Citus is
# installed); SKIP_PG17=1 (no second run in the Debian 13 root: a quick local run); SKIP_DEB=1
# (no package test: scripts/deb_test.sh builds the .deb and installs it on a fresh root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ "${SKIP_NODE:-0}" != 1 ]; then
    # shellcheck disable=SC2046 # a list of package names, or nothing
    mcp_install_deps $(mcp_node_packages)
else
    mcp_install_deps
fi
export PATH=$MCP_PG_BIN:$PATH

FAILED=0
PASSED_COUNT=0
FAILED_COUNT=0
# Adds the passed / failed lines of a pg_regress, GoogleTest or TAP (prove --verbose) log to
# the totals.
count_results() {
    local log=$1
    PASSED_COUNT=$((PASSED_COUNT + $(grep -cE '^ok |^test .* \.\.\. ok|^\[       OK \]' "$log" || true)))
    FAILED_COUNT=$((FAILED_COUNT + $(grep -cE '^not ok |\.\.\. FAILED|^\[  FAILED  \] [A-Za-z]' "$log" || true)))
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
    # TAP_TESTS= : the TAP tests run once, on their own servers, as the postgres user (below)
    make -s installcheck PG_CONFIG="$MCP_PG_CONFIG" TAP_TESTS= "${args[@]}" 2>&1 | tee "$log" || rc=$?
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

# The node-postgres example (examples/node) against the current cluster: its tests connect
# with the libpq environment (PGHOST, PGPORT, PGUSER: the superuser, for their setup) and read
# the server log in MCP_CLUSTER_DIR. node's test runner ends with "# pass N" / "# fail N"
# (TAP, as its output is not a terminal; "ℹ pass N" with the spec reporter).
run_node_example() {
    mcp_log "node-postgres example (examples/node, node $(node --version))"
    local log="$WORK/node.log" rc=0 pass fail
    : >"$log"
    # fd 9 (the install lock) closed: nothing started here may keep it
    # the registry is the one thing fetched over the network: a failed download is tried twice more
    local attempt
    for attempt in 1 2 3; do
        rc=0
        (cd examples/node && npm ci --no-audit --no-fund 9>&-) 2>&1 | tee -a "$log" || rc=$?
        [ "$rc" -eq 0 ] && break
        echo "npm ci failed (attempt $attempt of 3)"; sleep 5
    done
    if [ "$rc" -eq 0 ]; then
        (cd examples/node && MCP_CLUSTER_DIR="$MCP_CLUSTER_DIR" node --test 9>&-) 2>&1 | tee -a "$log" || rc=$?
    fi
    pass=$(awk '/^(# |ℹ )pass [0-9]+$/ { n = $NF } END { print n + 0 }' "$log")
    fail=$(awk '/^(# |ℹ )fail [0-9]+$/ { n = $NF } END { print n + 0 }' "$log")
    PASSED_COUNT=$((PASSED_COUNT + pass))
    FAILED_COUNT=$((FAILED_COUNT + fail))
    if [ "$rc" -ne 0 ] || [ "$fail" -ne 0 ]; then
        FAILED=1
        # npm ci failed, or node died without a failing test of its own
        [ "$fail" -ne 0 ] || FAILED_COUNT=$((FAILED_COUNT + 1))
    fi
}

# The test cluster: a keyring file with one key, readable only by the postgres user.
KEYRING="$WORK/cluster/keyring"
# The key settings are used only with the library preloaded (a shared or a session preload).
mcp_cluster_start "$WORK/cluster" \
    "shared_preload_libraries = 'mcp_platform'" \
    "mcp_platform.key_file = '$KEYRING'" \
    "log_min_messages = warning"
mcp_write_keyring "$KEYRING" "1 $(mcp_random_key)"
mcp_cluster_reload
run_installcheck "keyring file"
[ "${SKIP_NODE:-0}" = 1 ] || run_node_example
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
mcp_cluster_stop

# The suite again with the other key source, a key command that prints the keyring (stored
# outside the data directory, readable only by the postgres user), and the other preload:
# session_preload_libraries.
KEYDIR="$WORK/keycmd"
mkdir -p "$KEYDIR"
mcp_write_keyring "$KEYDIR/keyring" "1 $(mcp_random_key)"
[ "$(id -u)" -eq 0 ] && chown postgres: "$KEYDIR"
chmod 700 "$KEYDIR"
mcp_cluster_start "$WORK/cluster2" \
    "session_preload_libraries = 'mcp_platform'" \
    "mcp_platform.key_command = 'cat $KEYDIR/keyring'" \
    "log_min_messages = warning"
run_installcheck "key command"
mcp_cluster_stop

# The TAP tests (test/t/*.pl: PostgreSQL::Test::Cluster, servers of their own): no plaintext
# in log, heap or WAL; pg_dump/pg_restore; the maintenance worker; crash recovery; the key
# command source.
# Root may not run initdb, and PGXS's recipe writes tmp_check/ into the directory it runs in:
# the postgres user runs `make prove_installcheck` in a copy of the tree that it owns.
# Debian's Makefile.global already enables TAP (enable_tap_tests = yes, PROVE = /usr/bin/prove);
# the command line says so anyway, for a PostgreSQL built without --enable-tap-tests.
if [ "${SKIP_TAP:-0}" != 1 ]; then
    mcp_log "TAP tests (test/t, as the postgres user)"
    TAP_TREE="$WORK/tap"
    mkdir -p "$TAP_TREE"
    tar -C . --exclude=./.git --exclude=./build --exclude=./examples/node/node_modules --exclude='./tmp_check*' -cf - . | tar -C "$TAP_TREE" -xf -
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$TAP_TREE"
    tap_args=()
    [ -n "${PROVE_TESTS:-}" ] && tap_args+=("PROVE_TESTS=$PROVE_TESTS")
    tap_rc=0
    # fd 9 (the install lock) closed: no server a test starts may inherit it
    PG_TEST_TIMEOUT_DEFAULT=60 mcp_as_pg timeout 900 \
        make -s -C "$TAP_TREE" prove_installcheck PG_CONFIG="$MCP_PG_CONFIG" \
        enable_tap_tests=yes PROVE=prove PROVE_FLAGS=--verbose "${tap_args[@]}" 9>&- 2>&1 |
        tee "$WORK/tap.log" || tap_rc=$?
    count_results "$WORK/tap.log"
    if [ "$tap_rc" -ne 0 ] || grep -q '^not ok ' "$WORK/tap.log"; then
        FAILED=1
        # a script that died or hung fails without a "not ok" line of its own
        grep -q '^not ok ' "$WORK/tap.log" || FAILED_COUNT=$((FAILED_COUNT + 1))
        for f in "$TAP_TREE"/tmp_check/log/*; do
            [ -f "$f" ] && { echo "----- $f (last 150 lines)"; tail -n 150 "$f"; }
        done
    fi
fi

# Adds the closing "N passed, M failed" line of a nested run's log (LOG, exit status RC) to the
# totals; a run that failed without counting a failure (it died first) counts as one.
add_run_counts() {
    local log=$1 rc=$2 counts failed=0
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    if [ -n "$counts" ]; then
        failed=${counts#*passed, }
        failed=${failed%% failed}
        PASSED_COUNT=$((PASSED_COUNT + ${counts%% passed*}))
        FAILED_COUNT=$((FAILED_COUNT + failed))
    fi
    if [ "$rc" -ne 0 ]; then
        FAILED=1
        [ "$failed" -ne 0 ] || FAILED_COUNT=$((FAILED_COUNT + 1))
    fi
    RUN_COUNTS=${counts:-no count}
}

# The Citus suite (scripts/citus_test.sh, docs/citus.md): a coordinator and two workers, when
# Citus is installed in this PostgreSQL; otherwise it says in one line that it was skipped.
# The extension is installed and the install lock held here (fd 9 closed for its servers);
# twice: on a fresh install, and on a cluster upgraded from release 1.0.
if [ "${SKIP_CITUS:-0}" != 1 ]; then
    mcp_log "Citus suite (scripts/citus_test.sh)"
    for citus_from in "" 1.0; do
        citus_rc=0
        MCP_CITUS_NO_BUILD=1 MCP_CITUS_FROM=$citus_from bash scripts/citus_test.sh 9>&- 2>&1 |
            tee "$WORK/citus.log" || citus_rc=$?
        grep -q '^Citus suite skipped' "$WORK/citus.log" && break
        add_run_counts "$WORK/citus.log" "$citus_rc"
    done
fi

# The same suite on PostgreSQL 17 (Debian 13's) in a fresh Debian 13 root, on a copy of this
# tree; the subsets and skips above apply there too. The install lock is released first: the
# root installs into its own directories. Not there: the node example (the run above covers
# it, and it would fetch its npm packages through the workplace's TLS proxy, whose CA the
# fresh root lacks) and the full fuzzing time (src/core does not depend on PostgreSQL: the
# fuzzers are built with that release's clang and run 5 s each).
if [ "${SKIP_PG17:-0}" != 1 ]; then
    exec 9>&-
    mcp_log "the suite on PostgreSQL 17 in a fresh Debian 13 root (SKIP_PG17=1 skips it)"
    inner_env="SKIP_PG17=1 SKIP_DEB=1 SKIP_NODE=1 FUZZ_SECONDS=5"
    for v in REGRESS ISOLATION PROVE_TESTS SKIP_UNIT SKIP_FUZZ SKIP_STRESS STRESS_SECONDS SKIP_TAP; do
        [ -n "${!v+x}" ] && inner_env+=" $v=$(printf '%q' "${!v}")"
    done
    inner_rc=0
    inner_start=$SECONDS
    bash scripts/debian_root.sh trixie "env $inner_env bash scripts/test.sh" 2>&1 |
        tee "$WORK/pg17.log" || inner_rc=$?
    add_run_counts "$WORK/pg17.log" "$inner_rc"
    mcp_log "PostgreSQL 17 (Debian 13): $RUN_COUNTS, exit $inner_rc, $((SECONDS - inner_start)) s"
fi

# The Debian package: built here, installed on a fresh root, the demo run against it.
if [ "${SKIP_DEB:-0}" != 1 ]; then
    exec 9>&-
    mcp_log "the Debian package on a fresh root (scripts/deb_test.sh; SKIP_DEB=1 skips it)"
    deb_rc=0
    deb_start=$SECONDS
    bash scripts/deb_test.sh 2>&1 | tee "$WORK/deb.log" || deb_rc=$?
    add_run_counts "$WORK/deb.log" "$deb_rc"
    mcp_log "the Debian package: $RUN_COUNTS, exit $deb_rc, $((SECONDS - deb_start)) s"
fi

echo
echo "$PASSED_COUNT passed, $FAILED_COUNT failed"
if [ "$FAILED" -ne 0 ]; then
    exit 1
fi
