#!/usr/bin/env bash
# Runs a command as root inside a fresh Debian root (debootstrap --variant=minbase SUITE from
# Debian's archive: nothing installed beyond the minimal base), on a copy of this tree at
# /srv/project (the files git tracks plus untracked ones it does not ignore):
#   bash scripts/debian_root.sh trixie 'SKIP_PG17=1 bash scripts/test.sh'
# scripts/test.sh runs the suite on PostgreSQL 17 this way (Debian 13), scripts/deb_test.sh
# installs the package on a root of the machine's release, scripts/pg_versions_check.sh runs
# PostgreSQL 18 (sid).
#
# Needs root (debootstrap is installed when missing). The base root is cached in
# $MCP_ROOT_CACHE/SUITE (default /tmp/mcp_platform-roots; the first run takes a minute or
# two) with the .deb files apt downloads, so later runs fetch nothing twice; each run works
# on a throwaway copy that is removed at the end. The archive is the one the machine's apt
# uses (deb.debian.org when none is found); signatures are checked, the Valid-Until date of
# the Release files is not (a mirror that serves a snapshot is older than a week).
# Environment: MCP_ROOT_FILES: files copied into /srv/files (a .deb to install, say).
# The command's environment is empty but for HOME, PATH, LANG, CI and the variables it sets.
set -euo pipefail
SUITE=${1:?usage: debian_root.sh SUITE 'command run in /srv/project'}
CMD=${2:?usage: debian_root.sh SUITE 'command run in /srv/project'}
TREE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MCP_ROOT_CACHE:-/tmp/mcp_platform-roots}
BASE=$CACHE/$SUITE
ARCHIVES=$CACHE/$SUITE-archives

if [ "$(id -u)" -ne 0 ]; then
    echo "debian_root.sh: needs root (debootstrap, chroot, mounts)" >&2
    exit 1
fi

# the archive the machine's apt uses (either file may be missing)
mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
    head -n 1 || true)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \([^ ]*\/debian\) [a-z-]* .*/\1/p' /etc/apt/sources.list 2>/dev/null |
    head -n 1 || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

mkdir -p "$CACHE" "$ARCHIVES"
# One base per suite, made once even when several runs start together.
(
    flock 8
    if [ ! -e "$BASE/.mcp_platform-base-ok" ]; then
        command -v debootstrap >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
        echo "building a fresh Debian $SUITE root in $BASE ($mirror) ..." >&2
        rm -rf "$BASE"
        if ! debootstrap --variant=minbase "$SUITE" "$BASE" "$mirror" >"$CACHE/$SUITE-debootstrap.log" 2>&1; then
            tail -n 30 "$CACHE/$SUITE-debootstrap.log" >&2
            exit 1
        fi
        {
            echo "deb $mirror $SUITE main"
            # a stable release's point updates and security updates, as a real machine has
            # them (a package built on an updated machine depends on their versions)
            case $SUITE in
                sid | unstable | testing) ;;
                *)
                    echo "deb $mirror $SUITE-updates main"
                    echo "deb ${mirror%/debian}/debian-security $SUITE-security main"
                    ;;
            esac
        } >"$BASE/etc/apt/sources.list"
        echo 'Acquire::Check-Valid-Until "false";' >"$BASE/etc/apt/apt.conf.d/99mcp-platform"
        touch "$BASE/.mcp_platform-base-ok"
    fi
) 8>"$CACHE/$SUITE.lock"

RUN=$(mktemp -d "$CACHE/run-$SUITE.XXXXXX")
mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[$i]}" 2>/dev/null || umount -lR "${mounted[$i]}" 2>/dev/null || true
    done
    # never remove a tree that still has something mounted in it (/dev is the host's)
    if grep -q " $RUN/" /proc/mounts; then
        echo "debian_root.sh: $RUN still has mounts; left in place" >&2
    else
        rm -rf "$RUN"
    fi
}
trap cleanup EXIT
cp -a "$BASE/." "$RUN/"
mkdir -p "$RUN/srv/project" "$RUN/srv/files"
if git -C "$TREE" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$TREE" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$RUN/srv/project" -xf -
else
    tar -C "$TREE" --exclude=./build --exclude=./examples/node/node_modules -cf - . |
        tar -C "$RUN/srv/project" -xf -
fi
for f in ${MCP_ROOT_FILES:-}; do cp "$f" "$RUN/srv/files/"; done
cp /etc/resolv.conf "$RUN/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$RUN/proc" && mounted+=("$RUN/proc")
# rslave: unmounting the copies at the end must not propagate to the host's own mounts
mount --rbind /sys "$RUN/sys" && mounted+=("$RUN/sys") && mount --make-rslave "$RUN/sys"
mount --rbind /dev "$RUN/dev" && mounted+=("$RUN/dev") && mount --make-rslave "$RUN/dev"
# The .deb files earlier runs downloaded, hard-linked in (not a shared mount: runs of several
# checkouts at once must not contend for apt's lock), and the new ones kept for the next run.
find "$ARCHIVES" -maxdepth 1 -name '*.deb' -exec ln -f -t "$RUN/var/cache/apt/archives/" {} + 2>/dev/null || true
rc=0
chroot "$RUN" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    CI="${CI:-}" DEBIAN_FRONTEND=noninteractive \
    bash -c "cd /srv/project && $CMD" || rc=$?
find "$RUN/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec ln -t "$ARCHIVES/" {} + 2>/dev/null || true
exit "$rc"
