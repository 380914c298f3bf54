#!/usr/bin/env bash
# Build the base images the PaaSTech builder uses, locally (the machine has no
# container registry). Each tag is built once and then cached: an existing tag
# is rebuilt only when it lacks this script's revision label (REVISION below;
# bump it when an image's content changes), else never (`docker rmi TAG` forces
# a rebuild).
#
#   paastech/python:bookworm  debootstrap minbase + python3 (3.11), pip, venv, /opt/venv
#   paastech/python:trixie    debootstrap minbase + python3 (3.13), pip, venv, /opt/venv
#   paastech/node:bookworm    debootstrap minbase + nodejs (Debian's, v18), npm
#   paastech/node:trixie      debootstrap minbase + nodejs (Debian's, v20), npm
#   paastech/busybox:latest   scratch rootfs with Debian's busybox-static
#   paastech/postgres:15      debootstrap minbase (bookworm) + postgresql (15), add-on server
#   paastech/redis:7          debootstrap minbase (bookworm) + redis-server (7), add-on server
#
# The runtime versions the buildpacks offer (backend/settings.py python_runtimes,
# node_runtimes) must name these tags.
#
# Env: PAASTECH_DEBIAN_MIRROR (default: read from the apt sources),
#      PAASTECH_STATE_DIR (work/cache dir root, default /var/cache/paastech).
set -euo pipefail

die() { echo "base-images.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/docker.sh"

# Issue 14: images carry org.opencontainers.image.version=paastech-base-<REVISION> (the
# builder keeps only org.opencontainers.* labels), so images of an older revision are rebuilt.
REVISION=3
# An image family whose content changed alone gets a revision of its own, so that only its images
# are rebuilt: python 4 carries the buildpacks' virtualenv (/opt/venv) pre-made.
revision_of() { # tag
    case $1 in
    paastech/python:*) echo 4 ;;
    *) echo "$REVISION" ;;
    esac
}
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
STATE=${PAASTECH_STATE_DIR:-/var/cache/paastech}
CACHE=$STATE/debootstrap-cache
mkdir -p "$STATE" "$CACHE"

# One run at a time (a second run waits, then finds the tags cached).
exec 9>"$STATE/base-images.lock"
flock 9

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
current_image() { # tag: built by this revision of the script
    [ "$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' \
        "$1" 2>/dev/null)" = "paastech-base-$(revision_of "$1")" ]
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || die "apt-get update failed"
    fi
    if ! apt-get install -y -qq "$@" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || die "apt-get update failed"
        apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
    fi
}

# Debian mirror from the machine's apt configuration (deb822 or one-line format).
debian_mirror() {
    if [ -n "${PAASTECH_DEBIAN_MIRROR:-}" ]; then echo "$PAASTECH_DEBIAN_MIRROR"; return; fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" \
              | grep -v -- '-security' | grep -E '^https?://' | head -n1 || true)
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(sed -E 's/\[[^]]*\]//' "$f" \
              | awk '$1=="deb" && $3 !~ /-security/ && $2 ~ /^https?:\/\// { print $2; exit }')
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    echo http://deb.debian.org/debian
}

# Remove what a container never needs from a debootstrapped rootfs.
trim_rootfs() {
    local r=$1
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
           "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
           "$r"/usr/share/locale/* "$r"/usr/share/lintian "$r"/var/log/*.log \
           "$r"/var/log/apt/* "$r"/var/lib/dpkg/*-old "$r"/tmp/* "$r"/root/.cache
    find "$r"/usr/lib -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
    : >"$r"/etc/resolv.conf
    rm -f "$r"/etc/hostname
}

import_rootfs() { # rootfs tag extra-change...
    local r=$1 tag=$2; shift 2
    local changes=(--change "$PATH_ENV" --change "LABEL org.opencontainers.image.version=paastech-base-$(revision_of "$tag")")
    local c
    for c in "$@"; do changes+=(--change "$c"); done
    tar --numeric-owner -C "$r" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
}

build_debian() { # tag name suite packages
    local tag=$1 name=$2 suite=$3 pkgs=$4 root="$WORK/$2-$3"
    mkdir -p "$CACHE/$name-$suite"
    debootstrap --variant=minbase --include="$pkgs" --cache-dir="$CACHE/$name-$suite" \
        "$suite" "$root" "$MIRROR"
    # debootstrap resolves only plain Depends (npm's `a | b` ones are left out): let apt
    # complete the dependency tree, then check that the tools start.
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q -f --no-install-recommends
    case $name in
    node) chroot "$root" npm --version ;;
    python)
        # The buildpacks' virtualenv (backend/pomegranate/buildpacks.py VENV), made here once
        # rather than by each project's first build (ensurepip: 5 s of CPU, 10-35 s on a loaded
        # machine, and a 25 MB layer per project); before trim_rootfs, which drops the stdlib
        # bytecode this writes.
        chroot "$root" python3 -m venv /opt/venv
        chroot "$root" /opt/venv/bin/pip --version ;;
    postgres) chroot "$root" /usr/lib/postgresql/15/bin/postgres --version ;;
    redis) chroot "$root" redis-server --version ;;
    esac
    trim_rootfs "$root"
    case $name in
    python)
        ln -sf python3 "$root/usr/bin/python"
        # Buildpacks install apps into a virtualenv (python3 -m venv): the system Python stays
        # Debian's, as PEP 668 asks, so no pip --break-system-packages (/opt/venv, made above).
        import_rootfs "$root" "$tag" 'ENV PYTHONUNBUFFERED=1' \
            'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
            'ENV PIP_NO_CACHE_DIR=1' 'ENV PIP_ROOT_USER_ACTION=ignore' 'CMD ["python3"]' ;;
    node)
        import_rootfs "$root" "$tag" 'ENV NODE_ENV=production' 'CMD ["node"]' ;;
    postgres)
        # Issue 15 add-on server: the data directory is a named volume mounted on
        # /var/lib/paastech/data (docker copies this directory's owner into a new volume,
        # so the non-root server can write it). The package's own cluster is not used.
        rm -rf "$root"/var/lib/postgresql/15/main "$root"/etc/postgresql/15/main
        mkdir -p "$root/var/lib/paastech/data"
        chroot "$root" chown postgres:postgres /var/lib/paastech/data
        chmod 700 "$root/var/lib/paastech/data"
        install -m 0755 "$HERE/addon-images/postgres-entrypoint.sh" "$root/usr/local/bin/paastech-postgres"
        import_rootfs "$root" "$tag" 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            'ENV PGDATA=/var/lib/paastech/data/pg' 'ENV PGHOST=/tmp' 'USER postgres' \
            'ENTRYPOINT ["/usr/local/bin/paastech-postgres"]' ;;
    redis)
        mkdir -p "$root/var/lib/paastech/data"
        chroot "$root" chown redis:redis /var/lib/paastech/data
        chmod 700 "$root/var/lib/paastech/data"
        install -m 0755 "$HERE/addon-images/redis-entrypoint.sh" "$root/usr/local/bin/paastech-redis"
        import_rootfs "$root" "$tag" 'USER redis' 'WORKDIR /var/lib/paastech/data' \
            'ENTRYPOINT ["/usr/local/bin/paastech-redis"]' ;;
    esac
}

build_busybox() { # tag
    local tag=$1 root="$WORK/busybox" bb=/bin/busybox p
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,srv,var,tmp,home}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    # Symlink every applet to /bin/busybox (no chroot/proc needed).
    for p in $("$bb" --list-full); do
        [ "$p" = bin/busybox ] && continue
        mkdir -p "$root/$(dirname "$p")"
        ln -sf /bin/busybox "$root/$p"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    import_rootfs "$root" "$tag" 'CMD ["sh"]'
}

TODO=()
for tag in paastech/python:bookworm paastech/python:trixie paastech/node:bookworm \
           paastech/node:trixie paastech/busybox:latest paastech/postgres:15 paastech/redis:7; do
    if have_image "$tag" && { [ "$tag" = paastech/busybox:latest ] || current_image "$tag"; }; then
        echo "cached  $tag"
    else
        TODO+=("$tag")
    fi
done
[ ${#TODO[@]} -eq 0 ] && exit 0

NEED=()
case " ${TODO[*]} " in *python*|*node*|*postgres*|*redis*) command -v debootstrap >/dev/null 2>&1 || NEED+=(debootstrap);; esac
case " ${TODO[*]} " in *busybox*)
    # Must be the static build: it runs in an empty image.
    if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then NEED+=(busybox-static); fi;;
esac
[ ${#NEED[@]} -gt 0 ] && apt_install "${NEED[@]}"

MIRROR=$(debian_mirror)
WORK=$(mktemp -d "$STATE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

declare -A PIDS START
build=()
for tag in "${TODO[@]}"; do
    name=${tag#paastech/}; name=${name/:/-}
    START[$tag]=$(date +%s)
    case $tag in
    paastech/python:*) build=(build_debian "$tag" python "${tag#*:}" python3,python3-pip,python3-venv,ca-certificates) ;;
    paastech/node:*)   build=(build_debian "$tag" node "${tag#*:}" nodejs,npm,ca-certificates) ;;
    paastech/busybox:*) build=(build_busybox "$tag") ;;
    paastech/postgres:15) build=(build_debian "$tag" postgres bookworm postgresql) ;;
    paastech/redis:7) build=(build_debian "$tag" redis bookworm redis-server) ;;
    *) die "unknown image $tag" ;;
    esac
    ( "${build[@]}" && echo $(( $(date +%s) - START[$tag] )) >"$WORK/$name.secs" ) >"$WORK/$name.log" 2>&1 &
    PIDS[$tag]=$!
done

failed=0
for tag in "${TODO[@]}"; do
    name=${tag#paastech/}; name=${name/:/-}
    if wait "${PIDS[$tag]}" && have_image "$tag"; then
        size=$(docker image inspect -f '{{.Size}}' "$tag")
        echo "built   $tag ($(cat "$WORK/$name.secs")s, $(( size / 1000000 )) MB)"
    else
        echo "base-images.sh: FAILED to build $tag (mirror $MIRROR); last log lines:" >&2
        tail -n 25 "$WORK/$name.log" >&2 || true
        failed=1
    fi
done
exit $failed
