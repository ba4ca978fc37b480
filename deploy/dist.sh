#!/usr/bin/env bash
# Writes the release archive: OUT/miniworker-VERSION-ARCH-linux.tar.gz and
# its .sha256, holding the binary, the two guest components (for other
# component hosts), README, LICENSE, CHANGELOG, docs, examples and clients.
#   deploy/dist.sh BINARY COMPONENTS_DIR OUT
set -euo pipefail
binary=$1
components=$2
out=$3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
name="miniworker-$version-$(uname -m)-linux"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/bin" "$dir/components"
install -m 755 "$binary" "$dir/bin/miniworker"
# The plain components (for other component hosts), and the snapshots and
# their machine code (for MINIWORKER_GUEST_DIR: a library build that starts fast).
cp "$components"/miniworker_{worker,main}.wasm "$dir/components/"
cp "$components"/miniworker_{worker,main}.{init.wasm,cwasm} "$dir/components/" 2>/dev/null || true
cp "$root/README.md" "$root/LICENSE" "$root/CHANGELOG.md" "$dir/"
cp -r "$root/docs" "$root/examples" "$dir/"
if [ -d "$root/clients" ]; then
  (cd "$root" && git ls-files -z clients 2>/dev/null | xargs -0 -r cp --parents -t "$dir") \
    || cp -r "$root/clients" "$dir/"
fi
mkdir -p "$out"
# Sorted names, fixed owner and times: the same inputs give the same bytes.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - "$name" \
  | gzip -n > "$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
