#!/usr/bin/env bash
# Credential-encryption benchmark (README "Credentials" → Performance):
#   bash bench/crypto_bench.sh
# Builds and installs the extension, starts a throwaway cluster with a fresh keyring, and
# prints calls/s of mcp.encrypt / mcp.decrypt and of the credential API for a 120-byte and a
# 4 KiB secret against pgcrypto (pgp_sym_encrypt/decrypt, raw encrypt/decrypt with AES-CBC)
# and a trivial C function call, with ratios (bench/crypto_bench.sql); then the rotation
# throughput of mcp.rotate_credentials (ROTATE_ROWS rows, default 200000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mcp_prepare bench
KEYRING="$WORK/cluster/keyring"
K1=$(mcp_random_key)
K2=$(mcp_random_key)
mcp_cluster_start "$WORK/cluster" "mcp_platform.key_file = '$KEYRING'" \
    "shared_buffers = 512MB" "max_wal_size = 4GB" "log_min_messages = warning"
mcp_write_keyring "$KEYRING" "1 $K1"
mcp_cluster_reload
psql -X -q -c "CREATE EXTENSION mcp_platform"

mcp_log "encrypt / decrypt: mcp_platform vs pgcrypto (this takes a few minutes)"
psql -X -q -f bench/crypto_bench.sql

ROTATE_ROWS=${ROTATE_ROWS:-200000}
mcp_log "rotation: $ROTATE_ROWS credential rows from key version 1 to 2"
psql -X -q -v ON_ERROR_STOP=1 -v rows="$ROTATE_ROWS" <<'SQL'
SET client_min_messages = warning;
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type) VALUES ('rot_gh', 'GitHub', 7601, 'api_key');
INSERT INTO mcp.users (id, email) VALUES ('ee000000-0000-0000-0000-00000000000a', 'rotation@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL WHERE user_id = 'ee000000-0000-0000-0000-00000000000a';
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id, status)
SELECT 'ee000000-0000-0000-0000-00000000000a', mcp_service_id, 'inactive'
  FROM generate_series(1, :rows), mcp.mcp_table WHERE mcp_service_name = 'rot_gh';
-- the rows the API would write (sealed in C under version 1), inserted in bulk
INSERT INTO mcp.mcp_credentials (user_id, instance_id, api_key, key_version)
SELECT user_id, instance_id, mcp_internal.seal_field(user_id, instance_id, 'api_key', 'sk-live-' || md5(instance_id::text)), 1
  FROM mcp.mcp_service_table WHERE user_id = 'ee000000-0000-0000-0000-00000000000a';
VACUUM ANALYZE mcp.mcp_credentials;
SQL
mcp_write_keyring "$KEYRING" "1 $K1" "2 $K2"
mcp_cluster_reload
sleep 1
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SELECT key_version, is_active, stored_values FROM mcp.key_status();
SQL
# Each batch its own transaction, as an operator would run it: time the whole loop.
T0=$(date +%s.%N)
TOTAL=0
while :; do
    N=$(psql -X -At -c "SELECT mcp.rotate_credentials(10000)")
    [ "$N" -eq 0 ] && break
    TOTAL=$((TOTAL + N))
done
T1=$(date +%s.%N)
psql -X -q -c "SELECT key_version, is_active, stored_values FROM mcp.key_status()"
awk -v n="$TOTAL" -v a="$T0" -v b="$T1" \
    'BEGIN { printf "rotation: %d rows in %.2f s = %.0f rows/s (batches of 10000, one transaction each)\n", n, b - a, n / (b - a) }'
