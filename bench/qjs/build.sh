#!/usr/bin/env bash
# Builds Debian's native `qjs` (source package quickjs, from trixie) for the
# benchmark's "Debian qjs" column: Debian 12 has no quickjs package, and
# trixie's binary needs a newer glibc, so the source package is fetched and
# built here with Debian's hardening flags.
#
#   bench/qjs/build.sh DEST       (make bench runs it with target/bench/qjs)
#
# apt runs with a private state folder: the machine's sources and lists are
# left alone. Needs gcc, make, dpkg-dev and xz-utils.
set -euo pipefail
dest=${1:?usage: build.sh DEST}
version=${QUICKJS_VERSION:-2025.04.26-1}
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT

# The mirror this machine's apt already uses.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "build.sh: no Debian mirror in the apt sources" >&2; exit 1; }

mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$state/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache")
apt-get "${apt_private[@]}" update -qq

rm -rf "$dest" && mkdir -p "$dest" && cd "$dest"
apt-get "${apt_private[@]}" source --download-only "quickjs=$version"
# Checks the .dsc's checksums and applies Debian's patches.
dpkg-source -x "quickjs_${version}.dsc" src
cd src
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
LDFLAGS="$(dpkg-buildflags --get LDFLAGS)"
export CFLAGS LDFLAGS
make -j"$(nproc)" qjs > "$dest/build.log" 2>&1
echo "built $(./qjs -h 2>&1 | head -1) from Debian's quickjs $version into $dest/src/qjs"
