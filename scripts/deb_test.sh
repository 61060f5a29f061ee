#!/usr/bin/env bash
# The Debian package, tested as a user meets it:
#   bash scripts/deb_test.sh
# Builds postgresql-NN-mcp-platform (make deb: one package per PostgreSQL major installed
# here; the build packages are installed when missing), then in a fresh root of this machine's
# Debian release (scripts/debian_root.sh) installs the package for the release's PostgreSQL
# with `apt-get install ./postgresql-NN-mcp-platform_*.deb` (apt brings the server), checks
# that the package holds the extension's files, creates a 1.0 installation and updates it
# (ALTER EXTENSION mcp_platform UPDATE), and runs the demo (scripts/demo.sh, scripts/demo.sql)
# against the installed extension. Needs root. scripts/test.sh runs it unless SKIP_DEB=1.
# The last line is "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# shellcheck disable=SC1091 # /etc/os-release
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
mcp_install_deps postgresql-server-dev-all debhelper dpkg-dev build-essential
mcp_log "make deb"
make -s deb >/tmp/mcp_platform-deb-build.log 2>&1 || { tail -n 60 /tmp/mcp_platform-deb-build.log; echo "0 passed, 1 failed"; exit 1; }
# the release's PostgreSQL in the fresh root: the one its `postgresql` package depends on
PG_MAJOR=$(mcp_dep_major postgresql postgresql-)
DEB=$(ls build/deb/postgresql-"$PG_MAJOR"-mcp-platform_*.deb 2>/dev/null | grep -v dbgsym | head -n 1 || true)
if [ -z "$DEB" ]; then
    echo "no package for PostgreSQL $PG_MAJOR in build/deb (is postgresql-server-dev-$PG_MAJOR installed?)"
    echo "0 passed, 1 failed"
    exit 1
fi
mcp_log "installing $(basename "$DEB") on a fresh Debian $SUITE root"

rc=0
MCP_ROOT_FILES=$DEB bash scripts/debian_root.sh "$SUITE" '
set -euo pipefail
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); echo "ok - $*"; else failed=$((failed + 1)); echo "not ok - $*"; fi; }
apt-get update -qq
apt-get install -y -qq --no-install-recommends /srv/files/*.deb
pkg=$(dpkg-deb -f /srv/files/*.deb Package)
check dpkg-query -W "$pkg"
major=${pkg#postgresql-}; major=${major%%-*}
check test "$(dpkg -S "/usr/lib/postgresql/$major/lib/mcp_platform.so" | cut -d: -f1)" = "$pkg"
check test -f "/usr/share/postgresql/$major/extension/mcp_platform--1.0--1.1.sql"
# 1.0, then the update a newer package brings: ALTER EXTENSION ... UPDATE
export MCP_NO_BUILD=1
. scripts/lib.sh
mcp_install_deps
WORK=$(mktemp -d /tmp/mcp_platform-deb.XXXXXX); chmod 755 "$WORK"
export PATH=$MCP_PG_BIN:$PATH
mcp_cluster_start "$WORK/cluster"
update_check() {
    psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE upd" &&
    psql -X -q -v ON_ERROR_STOP=1 -d upd -c "CREATE EXTENSION mcp_platform VERSION '\''1.0'\''" \
        -c "ALTER EXTENSION mcp_platform UPDATE" &&
    test "$(psql -X -At -d upd -c "SELECT extversion FROM pg_extension WHERE extname = '\''mcp_platform'\''")" = 1.1
}
check update_check
mcp_cluster_stop
rm -rf "$WORK"
check bash scripts/demo.sh
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
' || rc=$?
exit "$rc"
