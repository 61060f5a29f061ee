# Shared by scripts/demo.sh, scripts/test.sh and bench/*.sh: dependencies, build, and a
# throwaway PostgreSQL 15 cluster run as the `postgres` OS user (Postgres refuses root).
# Source it; it defines functions only.

MCP_PG_VERSION=15
MCP_SYSTEM_PG_BIN=/usr/lib/postgresql/$MCP_PG_VERSION/bin
# MCP_PG_BIN may name the bin directory of a private, relocated copy of the server (for
# example /usr/lib/postgresql/15 and /usr/share/postgresql/15 copied under one prefix, with
# usr/include/postgresql linked to the system's): the extension is then installed there, and
# no machine-wide install lock is needed.
MCP_PG_BIN=${MCP_PG_BIN:-$MCP_SYSTEM_PG_BIN}
# perl and libipc-run-perl: the TAP tests (prove, PostgreSQL::Test::Cluster)
MCP_DEB_PACKAGES="postgresql-$MCP_PG_VERSION postgresql-server-dev-$MCP_PG_VERSION postgresql-client-$MCP_PG_VERSION
  libssl-dev libgtest-dev g++ make clang libclang-rt-14-dev util-linux procps iproute2 ca-certificates
  perl libipc-run-perl"

mcp_log() { printf '\n=== %s\n' "$*"; }

# The Debian packages of the Node.js example (examples/node), only for what is missing: a node
# (and npm) installed some other way is used as it is. On Debian 12 they give Node 18.
mcp_node_packages() {
    command -v node >/dev/null 2>&1 || echo nodejs
    command -v npm >/dev/null 2>&1 || echo npm
    return 0
}

# Installs the Debian packages the project needs, and those named as arguments (as root); a
# non-root user must have them.
mcp_install_deps() {
    local missing=() p
    for p in $MCP_DEB_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
        return 1
    fi
    mcp_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Serialises install-and-test runs of several checkouts on one machine (they all install into
# the same server directories). Holds the lock until the calling shell exits.
mcp_take_install_lock() {
    [ "$MCP_PG_BIN" = "$MCP_SYSTEM_PG_BIN" ] || return 0  # a private server copy: no one shares it
    exec 9>/tmp/mcp_platform.install.lock
    if ! flock -n 9; then
        echo "waiting for another checkout's install/test run to finish ..." >&2
        flock 9
    fi
}

# Builds (warnings are errors) and installs the extension into the server's directories.
mcp_build_install() {
    mcp_log "build and install"
    make -s WERROR=1 PG_CONFIG="$MCP_PG_BIN/pg_config"
    make -s install PG_CONFIG="$MCP_PG_BIN/pg_config" >/dev/null
}

# The common start of the demo and the benchmarks: dependencies, PATH, a work directory
# (WORK) whose cluster is stopped and which is removed on exit, the install lock, the build.
# A caller that needs more on exit defines mcp_cleanup_extra.
mcp_prepare() {
    mcp_install_deps
    export PATH=$MCP_PG_BIN:$PATH
    WORK=$(mktemp -d "/tmp/mcp_platform-$1.XXXXXX")
    chmod 755 "$WORK"
    trap 'declare -F mcp_cleanup_extra >/dev/null && mcp_cleanup_extra; mcp_cluster_stop; rm -rf "$WORK"' EXIT
    mcp_take_install_lock
    mcp_build_install
}

# Runs a command as the postgres OS user (when root), or as ourselves.
mcp_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mcp_free_port() {
    local port
    for port in $(seq 55432 55532); do
        if ! (ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$port\$"); then echo "$port"; return; fi
    done
    echo "no free port" >&2; return 1
}

# mcp_cluster_start DIR [postgresql.conf lines...]: initdb + start; exports PGHOST/PGPORT/PGUSER.
# mcp_platform is in shared_preload_libraries unless a line sets a *_preload_libraries itself.
# The directory is owned by the postgres user; a keyring for tests can be written there.
mcp_cluster_start() {
    local dir=$1; shift
    MCP_CLUSTER_DIR=$dir
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    mcp_as_pg "$MCP_PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log"; return 1; }
    local port; port=$(mcp_free_port)
    {
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "max_connections = 60"
        echo "log_line_prefix = '%m [%p] %q%a '"
        local line preload=shared
        for line in "$@"; do
            echo "$line"
            case $line in *preload_libraries*) preload=given ;; esac
        done
        # the extension uses its key settings only when it is preloaded
        if [ "$preload" = shared ]; then echo "shared_preload_libraries = 'mcp_platform'"; fi
    } | mcp_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 9>&- ||
        { cat "$dir/server.log"; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

mcp_cluster_stop() {
    [ -n "${MCP_CLUSTER_DIR:-}" ] && [ -d "$MCP_CLUSTER_DIR/data" ] || return 0
    mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$MCP_CLUSTER_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

mcp_cluster_reload() {
    mcp_as_pg "$MCP_PG_BIN/pg_ctl" -D "$MCP_CLUSTER_DIR/data" reload >/dev/null
}

# Writes a keyring file readable only by the postgres user: mcp_write_keyring FILE "1 hex..." ...
mcp_write_keyring() {
    local file=$1; shift
    printf '%s\n' "# mcp_platform test keyring" "$@" > "$file"
    chmod 600 "$file"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$file"
    return 0
}

mcp_random_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
