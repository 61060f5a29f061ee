#!/usr/bin/env bash
# The upgrade test: a database created at 1.0 and populated through the 1.0 API, then
# ALTER EXTENSION mcp_platform UPDATE, must equal a fresh install of the current version
# (every relation, column, constraint, index, policy, trigger, function signature and body,
# privilege, comment and pg_dump registration), and every value written before the upgrade
# must read back after it. Then a mutation check: an upgraded database missing one object's
# comment must be reported as different (the comparison can fail).
#
# Runs against the running test cluster (PGHOST/PGPORT/PGUSER of a superuser); prints
# "ok - upgrade: …" / "not ok - upgrade: …" lines; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")"
WORK=$(mktemp -d /tmp/mcp_upgrade.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILED=0
result() {  # result "what" STATUS
    if [ "$2" -eq 0 ]; then echo "ok - upgrade: $1"; else echo "not ok - upgrade: $1"; FAILED=1; fi
}
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# The schema of database $1 as pg_dump --binary-upgrade writes it (extension members one by
# one), normalised only for OIDs and the audit log's day partitions (which depend on the data),
# plus the tables registered for pg_dump.
schema_of() {
    pg_dump --schema-only --binary-upgrade --no-sync -d "$1" | python3 normalize_dump.py
    psql -X -At -d "$1" -c "SELECT c::regclass::text, e.extcondition[i]
                              FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS x(c, i)
                             WHERE e.extname = 'mcp_platform' ORDER BY 1"
    psql -X -At -d "$1" -c "SELECT extversion FROM pg_extension WHERE extname = 'mcp_platform'"
}

for db in mcp_up_fresh mcp_up_upgraded mcp_up_mutant; do
    dropdb --if-exists "$db" && createdb "$db" || exit 1
done
q -d mcp_up_fresh -c "CREATE EXTENSION mcp_platform" || exit 1
q -d mcp_up_upgraded -c "CREATE EXTENSION mcp_platform VERSION '1.0'" || exit 1
q -d mcp_up_upgraded -f populate_1.0.sql >/dev/null
result "1.0 populated through the 1.0 API with the new library" $?
q -d mcp_up_upgraded -f check_values.sql > "$WORK/before.out" 2>&1
result "values read on 1.0" $?
q -d mcp_up_upgraded -c "ALTER EXTENSION mcp_platform UPDATE"
result "ALTER EXTENSION mcp_platform UPDATE" $?
q -d mcp_up_upgraded -f check_values.sql > "$WORK/after.out" 2>&1
result "values read after the upgrade" $?
diff -u "$WORK/before.out" "$WORK/after.out"
result "every value written on 1.0 reads back the same after the upgrade" $?
grep -qE '^ *(ghp_upgrade_canary_0123456789|.*refresh-token-def.*)' "$WORK/after.out" &&
    grep -q 'counter_rows_differing' "$WORK/after.out" &&
    grep -A2 'counter_rows_differing' "$WORK/after.out" | grep -qE '^ +0$' &&
    grep -A2 'summary_rows_differing' "$WORK/after.out" | grep -qE '^ +0$'
result "credentials decrypt, counters verify, summary equals the raw aggregate" $?
# 1.0's OAuth tokens joined the refresh lifecycle: state ok, scheduled (due margin before
# expiry), and a worker can claim and settle them
q -At -d mcp_up_upgraded -c "
    SELECT count(*) FILTER (WHERE refresh_token IS NOT NULL) > 0
       AND bool_and(refresh_state = 'ok' AND refresh_failures = 0 AND failure_days = 0)
       AND bool_and((refresh_due_at IS NOT NULL) = (refresh_token IS NOT NULL))
       AND bool_and(refresh_due_at IS NULL OR refresh_due_at <= token_expires_at)
      FROM mcp.mcp_credentials" > "$WORK/lifecycle.out" 2>&1 &&
  q -At -d mcp_up_upgraded -c "SET mcp_platform.refresh_clock_offset = '400d'" -c "SET ROLE mcp_worker" \
    -c "SELECT count(mcp.complete_refresh(lease_token, 'access-after-upgrade', NULL, now() + interval '401 days')) FROM mcp.claim_refreshes(100)" \
    >> "$WORK/lifecycle.out" 2>&1 &&
  [ "$(tr '\n' ' ' < "$WORK/lifecycle.out")" = "t 1 " ]
rc=$?
[ $rc -ne 0 ] && cat "$WORK/lifecycle.out"
result "1.0's OAuth tokens are scheduled for refresh and a worker refreshes them" $rc

schema_of mcp_up_fresh > "$WORK/fresh.schema"
schema_of mcp_up_upgraded > "$WORK/upgraded.schema"
diff -u "$WORK/fresh.schema" "$WORK/upgraded.schema" > "$WORK/schema.diff"
rc=$?
[ $rc -ne 0 ] && head -100 "$WORK/schema.diff"
result "upgraded catalog equals a fresh install ($(grep -c '' "$WORK/fresh.schema") lines compared)" $rc
# Mutation check: an upgrade that forgot one object (here the comment of mcp.set_api_key) must
# be reported.
q -d mcp_up_mutant -c "CREATE EXTENSION mcp_platform VERSION '1.0'" -c "ALTER EXTENSION mcp_platform UPDATE" \
  -c "COMMENT ON FUNCTION mcp.set_api_key(uuid, text, uuid) IS NULL" || exit 1
schema_of mcp_up_mutant > "$WORK/mutant.schema"
! diff -q "$WORK/fresh.schema" "$WORK/mutant.schema" >/dev/null
result "the comparison reports an upgrade that forgot an object" $?

for db in mcp_up_fresh mcp_up_upgraded mcp_up_mutant; do dropdb --if-exists "$db"; done
exit $FAILED
