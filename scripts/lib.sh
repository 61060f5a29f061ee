# Shared by scripts/demo.sh, scripts/test.sh and bench/*.sh: dependencies, build, and a
# throwaway PostgreSQL cluster run as the `postgres` OS user (Postgres refuses root).
# Source it; it defines functions and the variables below.
#
# The PostgreSQL it builds and tests against: PG_CONFIG when set (any installation, its
# bindir holding initdb and pg_ctl; its packages are not installed for it), else Debian's
# postgresql-$MCP_PG_VERSION when MCP_PG_VERSION is set, else the newest major installed in
# /usr/lib/postgresql, else the one the release's `postgresql` package depends on (15 on
# Debian 12, 17 on Debian 13).

mcp_log() { printf '\n=== %s\n' "$*"; }

# apt-cache finds nothing before the first apt-get update of a fresh root.
mcp_apt_lists() {
    if [ "$(id -u)" -eq 0 ] && ! ls /var/lib/apt/lists/ 2>/dev/null | grep -q '_Packages'; then
        apt-get update -qq >/dev/null
    fi
}

# The major version that the release's PACKAGE depends on (its candidate version):
# mcp_dep_major PACKAGE PREFIX (postgresql postgresql-: 15 on Debian 12).
mcp_dep_major() {
    mcp_apt_lists
    { apt-cache show --no-all-versions "$1" 2>/dev/null || true; } |
        sed -n "s/^Depends:.*\b$2\([0-9][0-9]*\)\b.*/\1/p" | head -n 1
}

if [ -n "${PG_CONFIG:-}" ]; then
    MCP_PG_CONFIG=$PG_CONFIG
    MCP_PG_BIN=$("$PG_CONFIG" --bindir)
    MCP_PG_VERSION=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
else
    if [ -z "${MCP_PG_VERSION:-}" ]; then
        MCP_PG_VERSION=$(for f in /usr/lib/postgresql/*/bin/postgres; do echo "$f"; done |
            sed -n 's|^/usr/lib/postgresql/\([0-9][0-9]*\)/bin/postgres$|\1|p' | sort -n | tail -n 1)
        [ -n "$MCP_PG_VERSION" ] || MCP_PG_VERSION=$(mcp_dep_major postgresql postgresql-)
        if [ -z "$MCP_PG_VERSION" ]; then
            echo "no PostgreSQL found: set MCP_PG_VERSION or PG_CONFIG" >&2
            return 1 2>/dev/null || exit 1
        fi
    fi
    MCP_PG_BIN=/usr/lib/postgresql/$MCP_PG_VERSION/bin
    MCP_PG_CONFIG=$MCP_PG_BIN/pg_config
fi
export MCP_PG_VERSION

# The fuzzers link clang's libFuzzer, packaged with the runtime of the clang the release
# installs (libclang-rt-14-dev on Debian 12, libclang-rt-19-dev on Debian 13).
mcp_clang_rt_package() {
    local major=""
    command -v clang >/dev/null 2>&1 && major=$(clang -dumpversion | cut -d. -f1)
    [ -n "$major" ] || major=$(mcp_dep_major clang clang-)
    echo "libclang-rt-${major:?no clang version found}-dev"
}

# The Debian packages the scripts need; the server's only for Debian's own PostgreSQL.
# perl and libipc-run-perl: the TAP tests (prove, PostgreSQL::Test::Cluster). With
# MCP_NO_BUILD=1 (the extension is installed already, from its package say) only what runs a
# cluster and psql.
mcp_deb_packages() {
    if [ "${MCP_NO_BUILD:-0}" = 1 ]; then
        echo "postgresql-$MCP_PG_VERSION postgresql-client-$MCP_PG_VERSION util-linux procps iproute2"
        return 0
    fi
    case $MCP_PG_BIN in
        /usr/lib/postgresql/*)
            echo "postgresql-$MCP_PG_VERSION postgresql-server-dev-$MCP_PG_VERSION postgresql-client-$MCP_PG_VERSION" ;;
    esac
    echo "libssl-dev libgtest-dev g++ make clang $(mcp_clang_rt_package) util-linux procps iproute2
      ca-certificates perl libipc-run-perl"
}

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
    for p in $(mcp_deb_packages) "$@"; do
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
# the same server directories: one lock per PostgreSQL installation). Holds the lock until the
# calling shell exits.
mcp_take_install_lock() {
    local lock=/tmp/mcp_platform.install.lock
    case $MCP_PG_BIN in
        /usr/lib/postgresql/*) ;;
        *) lock=/tmp/mcp_platform.install.$(echo "$MCP_PG_BIN" | md5sum | cut -c1-8).lock ;;
    esac
    exec 9>"$lock"
    if ! flock -n 9; then
        echo "waiting for another checkout's install/test run to finish ..." >&2
        flock 9
    fi
}

# Builds (warnings are errors) and installs the extension into the server's directories.
mcp_build_install() {
    mcp_log "build and install (PostgreSQL $("$MCP_PG_CONFIG" --version | cut -d' ' -f2))"
    make -s WERROR=1 PG_CONFIG="$MCP_PG_CONFIG"
    make -s install PG_CONFIG="$MCP_PG_CONFIG" >/dev/null
}

# The common start of the demo and the benchmarks: dependencies, PATH, a work directory
# (WORK) whose cluster is stopped and which is removed on exit, the install lock, the build
# (none with MCP_NO_BUILD=1: the installed extension is used as it is).
# A caller that needs more on exit defines mcp_cleanup_extra.
mcp_prepare() {
    mcp_install_deps
    export PATH=$MCP_PG_BIN:$PATH
    WORK=$(mktemp -d "/tmp/mcp_platform-$1.XXXXXX")
    chmod 755 "$WORK"
    trap 'declare -F mcp_cleanup_extra >/dev/null && mcp_cleanup_extra; mcp_cluster_stop; rm -rf "$WORK"' EXIT
    if [ "${MCP_NO_BUILD:-0}" = 1 ]; then
        mcp_log "using the installed extension ($(ls "$MCP_PG_BIN"/../lib/mcp_platform.so 2>/dev/null || echo 'mcp_platform.so not found'))"
    else
        mcp_take_install_lock
        mcp_build_install
    fi
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
