#!/usr/bin/env bash
# pg_dump / pg_restore round trip of a populated database (SPEC §8), run by scripts/test.sh
# against its running cluster (PGHOST/PGPORT set, keyring file in $KEYRING):
#  1. every table of schema mcp (tenants, plans, instances, ciphertexts, audit log with its day
#     partitions, rollups, key check) is identical after the README's restore recipe;
#  2. restored ciphertexts decrypt with the same keyring;
#  3. with another key under the same version they fail cleanly (MC102), never decrypt.
# Prints "ok - …" / "not ok - …" lines; exits non-zero on any failure.
set -uo pipefail
: "${KEYRING:?KEYRING must name the keyring file of the cluster}"
cd "$(dirname "$0")/.."
. scripts/lib.sh
WORK=$(mktemp -d /tmp/mcp_platform-dump.XXXXXX)
chmod 755 "$WORK"
failures=0
check() {   # check "what" COMMAND...
    local what=$1; shift
    if "$@"; then echo "ok - dump/restore: $what"; else echo "not ok - dump/restore: $what"; failures=$((failures + 1)); fi
}
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

dropdb --if-exists mcp_dump_src >/dev/null 2>&1; dropdb --if-exists mcp_dump_dst >/dev/null 2>&1
createdb mcp_dump_src
q -d mcp_dump_src >/dev/null <<'SQL'
CREATE EXTENSION mcp_platform;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'github', 'GitHub', 7101, 'api_key'),
    ('00000000-0000-0000-0000-0000000000c2', 'gmail', 'Gmail', 7102, 'oauth');
INSERT INTO mcp.users (id, email) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'a@example.com'),
    ('00000000-0000-0000-0000-00000000000b', 'b@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id = '00000000-0000-0000-0000-00000000000b';
INSERT INTO mcp.user_billing_details (user_id, razorpay_customer_id, card_last_four)
VALUES ('00000000-0000-0000-0000-00000000000b', 'cust_b', '4242');
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1'),
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c1'),
    ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c2');
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000a', true);
SELECT mcp.set_api_key('00000000-0000-0000-0000-0000000000a1', 'sk-dump-a-0123456789');
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', true);
SELECT mcp.set_api_key('00000000-0000-0000-0000-0000000000b1', 'sk-dump-b-9876543210');
SELECT mcp.set_oauth_client('00000000-0000-0000-0000-0000000000b2', 'client-b', 'secret-b');
SELECT mcp.store_oauth_tokens('00000000-0000-0000-0000-0000000000b2', 'access-b', 'refresh-b',
                              now() + interval '1 hour', 'mail.read');
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000b2', 'refresh', 'failure', 'oauth',
                               'timeout', 'provider did not answer', '{"attempt": 2}');
COMMIT;
-- history in day partitions of the past, migrated with a plain INSERT … SELECT
SELECT mcp.ensure_audit_partitions(now() - interval '20 days', now() + interval '1 day');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT '00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-00000000000b',
       'validate', CASE WHEN g % 5 = 0 THEN 'failure' ELSE 'success' END, 'oauth',
       now() - g * interval '1 hour'
  FROM generate_series(1, 400) g;
SELECT mcp.run_maintenance();
SQL

# Every table of schema mcp as one digest per table (rows in a stable order).
digest() {
    q -d "$1" <<'SQL'
SELECT string_agg(format('%s=%s', c.relname,
         (xpath('/row/d/text()', query_to_xml(format(
            'SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS d FROM %s t',
            '|', '', c.oid::regclass), false, false, '')))[1]::text), E'\n' ORDER BY c.relname)
  FROM pg_class c
 WHERE c.relnamespace = 'mcp'::regnamespace AND c.relkind IN ('r', 'p');
SQL
}
creds() {   # the decrypted credentials of both tenants
    q -d "$1" <<'SQL'
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000a', true) IS NULL;
SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000a1');
COMMIT;
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', true) IS NULL;
SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000b1');
SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000b2');
COMMIT;
SQL
}

# The README's restore recipe: data loaded with triggers off (the dumped counters and plans are
# already consistent), day-partition indexes left to ATTACH.
pg_dump -Fc -d mcp_dump_src -f "$WORK/app.dump"
createdb mcp_dump_dst
pg_restore -l "$WORK/app.dump" | grep -vE ' (INDEX|CONSTRAINT|INDEX ATTACH) mcp token_audit_log_p[0-9]{8}' > "$WORK/app.list"
restore_ok=0
PGOPTIONS='-c session_replication_role=replica' \
    pg_restore --exit-on-error -L "$WORK/app.list" -d mcp_dump_dst "$WORK/app.dump" > "$WORK/restore.log" 2>&1 && restore_ok=1
check "pg_restore succeeds" test "$restore_ok" -eq 1 || cat "$WORK/restore.log"

src_digest=$(digest mcp_dump_src); dst_digest=$(digest mcp_dump_dst)
ntables=$(printf '%s\n' "$src_digest" | wc -l)
check "every table of schema mcp is identical: $ntables tables" test "$src_digest" = "$dst_digest"
[ "$src_digest" = "$dst_digest" ] || diff <(echo "$src_digest") <(echo "$dst_digest")
check "the day partitions came back" test \
    "$(q -d mcp_dump_src -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass")" = \
    "$(q -d mcp_dump_dst -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass")"
check "the summary is the same" test \
    "$(q -d mcp_dump_src -c "SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', false) IS NULL; SELECT * FROM mcp.token_audit_summary ORDER BY 1, 3, 4")" = \
    "$(q -d mcp_dump_dst -c "SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', false) IS NULL; SELECT * FROM mcp.token_audit_summary ORDER BY 1, 3, 4")"

src_creds=$(creds mcp_dump_src); dst_creds=$(creds mcp_dump_dst 2>&1)
check "restored ciphertexts decrypt with the same keyring" test "$src_creds" = "$dst_creds"
check "and hold the secrets that were stored" grep -q 'sk-dump-b-9876543210' <<<"$dst_creds"

# Another key under the same version: refused up front, cleanly, with MC102.
cp -p "$KEYRING" "$WORK/keyring.orig"
mcp_write_keyring "$KEYRING" "1 $(mcp_random_key)"
mcp_cluster_reload; sleep 1
wrong=$(psql -X -q -A -t -d mcp_dump_dst -v VERBOSITY=default 2>&1 <<'SQL'
\set VERBOSITY default
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-00000000000b', false) IS NULL;
SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000b1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SQL
)
check "another keyring fails with MC102" grep -q 'SQLSTATE MC102' <<<"$wrong"
check "and reveals no secret" bash -c '! grep -q "sk-dump" <<<"$1"' _ "$wrong"
cp -p "$WORK/keyring.orig" "$KEYRING"
mcp_cluster_reload; sleep 1
check "the original keyring works again" test "$(creds mcp_dump_dst 2>&1)" = "$src_creds"

dropdb mcp_dump_src; dropdb mcp_dump_dst
rm -rf "$WORK"
[ "$failures" -eq 0 ]
