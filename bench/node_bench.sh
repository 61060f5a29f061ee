#!/usr/bin/env bash
# get_credentials in one round trip through a node-postgres pool against the Nango pattern (one
# SELECT of the ciphertext columns, AES-256-GCM decrypt in Node's crypto), side by side in one
# run (bench/node_bench.js). The keyring is a random test key this script writes and hands to
# Node, which opens the envelopes itself (docs/credentials.md). Prints requests/s per round,
# medians and the ratio mcp / Nango (target >= 1.0).
#   bash bench/node_bench.sh     (ROUNDS=5 DURATION=5 POOL=10 INFLIGHT=50 USERS=2000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/api_setup.sh
export ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-5} POOL=${POOL:-10} INFLIGHT=${INFLIGHT:-50}
export USERS=${USERS:-2000}

# shellcheck disable=SC2046 # a list of package names, or nothing
mcp_install_deps $(mcp_node_packages)
mcp_prepare node_bench >/dev/null
KEYRING="$WORK/cluster/keyring"
mcp_cluster_start "$WORK/cluster" "mcp_platform.key_file = '$KEYRING'" "shared_buffers = 256MB" \
    "max_wal_size = 2GB" "log_min_messages = warning"
KEY=$(mcp_random_key)
mcp_write_keyring "$KEYRING" "1 $KEY"
mcp_cluster_reload
bench_api_setup postgres "$USERS"
if [ ! -d examples/node/node_modules/pg ]; then
    (cd examples/node && npm ci --no-audit --no-fund 9>&- >/dev/null)
fi
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
BENCH_KEY_HEX=$KEY PGDATABASE=postgres node bench/node_bench.js 9>&-
