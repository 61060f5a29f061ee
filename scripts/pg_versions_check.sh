#!/usr/bin/env bash
# The checks on PostgreSQL 16 and 18 that CI does not run (CI runs 15 and 17: scripts/test.sh);
# their results are in README.md, "Supported versions". Needs root.
#   bash scripts/pg_versions_check.sh                    # 18 (and 16 when PG16_CONFIG is set)
#   PG16_CONFIG=/opt/pg16/bin/pg_config bash scripts/pg_versions_check.sh
# 18: the whole suite (scripts/test.sh) on Debian's postgresql-18, in a fresh Debian sid root
#     (scripts/debian_root.sh sid).
# 16: no Debian release ships it (Ubuntu 24.04 does): the whole suite runs here against the
#     installation PG16_CONFIG names (Ubuntu's postgresql-16 with postgresql-server-dev-16, or
#     a build from source configured with --enable-tap-tests --with-openssl, with
#     src/test/isolation and src/test/perl installed too). Skipped when PG16_CONFIG is unset.
#     Use 16.4 or later: before 16.2 pg_dump writes the extension's RLS policies into a dump
#     (the dump/restore TAP checks fail), and before 16.4 BackgroundPsql's query() keeps a
#     trailing newline (a crash-recovery TAP check fails). The README's 16 result is 16beta2
#     with those two upstream fixes applied.
# In both runs the node example is skipped (the CI runs cover it) and each fuzzer runs 5 s.
# Other variables of scripts/test.sh (REGRESS, SKIP_TAP, ...) apply to both.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
results=()
run() {
    local label=$1; shift
    local start=$SECONDS rc=0 log
    log=$(mktemp /tmp/mcp_platform-versions.XXXXXX)
    printf '\n=== %s\n' "$label"
    "$@" 2>&1 | tee "$log" || rc=$?
    results+=("$label: $(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true), exit $rc, $((SECONDS - start)) s")
    [ "$rc" -eq 0 ] || status=1
    rm -f "$log"
}

pass=""
for v in REGRESS ISOLATION PROVE_TESTS SKIP_UNIT SKIP_FUZZ SKIP_STRESS STRESS_SECONDS SKIP_TAP; do
    [ -n "${!v+x}" ] && pass+=" $v=$(printf '%q' "${!v}")"
done

run "PostgreSQL 18 (Debian sid root)" \
    bash scripts/debian_root.sh sid "env SKIP_PG17=1 SKIP_DEB=1 SKIP_NODE=1 FUZZ_SECONDS=5 $pass bash scripts/test.sh"
if [ -n "${PG16_CONFIG:-}" ]; then
    run "PostgreSQL 16 ($("$PG16_CONFIG" --version), $PG16_CONFIG)" \
        env PG_CONFIG="$PG16_CONFIG" SKIP_PG17=1 SKIP_DEB=1 SKIP_NODE=1 FUZZ_SECONDS=5 bash scripts/test.sh
else
    results+=("PostgreSQL 16: skipped (set PG16_CONFIG)")
fi

printf '\n'
printf '%s\n' "${results[@]}"
exit "$status"
