#!/usr/bin/env bash
# Build Asterisk from an upstream source tarball once, cached outside the checkout.
# Usage: build.sh TARBALL  -> prints the install prefix (holding sbin/asterisk) on its last line.
# The cache key is the tarball's SHA-256, so another tarball gets its own build.
set -euo pipefail
tarball=$(readlink -f "$1")
sha=$(sha256sum "$tarball" | cut -c1-16)
cache=${IVR_ASTERISK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ivr-guard}
prefix=$cache/asterisk-$sha
if [ -x "$prefix/sbin/asterisk" ] && [ -f "$prefix/.complete" ]; then
    echo "$prefix"
    exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/asterisk-$sha.lock"
flock 9
if [ -x "$prefix/sbin/asterisk" ] && [ -f "$prefix/.complete" ]; then
    echo "$prefix"
    exit 0
fi
deps="build-essential pkg-config libjansson-dev libxml2-dev libsqlite3-dev uuid-dev libedit-dev
libssl-dev libncurses-dev"
missing=""
for pkg in $deps; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "installing Asterisk's build dependencies:$missing" >&2
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi
work=$(mktemp -d "$cache/build-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building Asterisk from $tarball into $prefix (about 3 minutes)" >&2
tar -xzf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)
cd "$src"
rm -rf "$prefix"
{
    ./configure --prefix="$prefix" --without-pjproject-bundled --without-pjproject \
        --with-jansson-bundled=no --disable-xmldoc
    make menuselect.makeopts
    # Sound packages are downloaded by make install; there is no network here.
    menuselect/menuselect --disable res_stir_shaken --disable chan_pjsip --disable BUILD_NATIVE \
        --disable CORE-SOUNDS-EN-GSM --disable MOH-OPSOUND-WAV menuselect.makeopts
    make -j"$(nproc)"
    make install
} >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
touch "$prefix/.complete"
echo "$prefix"
