#!/usr/bin/env bash
# Lays out the root file system of the server's image: the binary, every
# shared library it links (as ldd resolves them on the build machine), a
# passwd entry for the unprivileged user 65532, and an empty /tmp.
# Usage: rootfs.sh BINARY ROOTFS
set -euo pipefail
binary=$1
rootfs=$2
rm -rf "$rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/var/cache/miniworker"
chmod 1777 "$rootfs/tmp"
cp "$binary" "$rootfs/usr/local/bin/miniworker"
# The loader and each library, at the paths the binary asks for them.
ldd "$binary" | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }' | sort -u | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$rootfs/etc/passwd"
echo 'nonroot:x:65532:' > "$rootfs/etc/group"
chown -R 65532:65532 "$rootfs/var/cache/miniworker"
