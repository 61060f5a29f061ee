#!/usr/bin/env bash
# The demo command (README "Getting started"):
#   bash scripts/demo.sh
# Installs what it needs (Debian packages, as root), builds and installs the extension,
# starts a throwaway cluster as the postgres user on a free port, creates the extension with
# a fresh keyring, and walks through the main job (scripts/demo.sql), printing each step.
# The cluster is stopped and removed at the end. MCP_NO_BUILD=1: no build, the installed
# extension (from its Debian package, say) is used; scripts/deb_test.sh runs it so.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mcp_prepare demo

KEYRING="$WORK/cluster/keyring"
mcp_cluster_start "$WORK/cluster" "mcp_platform.key_file = '$KEYRING'"
mcp_write_keyring "$KEYRING" "1 $(mcp_random_key)"
mcp_cluster_reload
mcp_log "cluster up on port $PGPORT (socket $PGHOST); keyring $KEYRING (mode 600, owner postgres)"

psql -X -q -v ON_ERROR_STOP=1 -f scripts/demo.sql
mcp_log "demo finished: success"
