#!/usr/bin/env bash
# A stand-in for SAM's provided.al2023 invoke image, for CI machines that can
# reach no container registry (a CI detail: with registry access, `sam local`
# pulls its default image and needs none of this).
#
#   bash infra/sam-local-image.sh <tag> <bootstrap>...
#
# The image is a root filesystem of this machine's own files, imported with
# `docker import`: the dynamic loader and the libraries the given bootstraps link,
# and the shell, mv and chmod that `sam local` runs while it layers its Runtime
# Interface Emulator on top. The bootstraps themselves are not in it: sam local
# mounts each function's code at /var/task, as Lambda does.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <tag> <bootstrap>..." >&2; exit 2; }
tag=$1
shift

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT

copy() {
  mkdir -p "$rootfs$(dirname "$1")"
  cp -L "$1" "$rootfs$1"
}
libraries_of() {
  # `ldd` prints "name => /path (addr)" and "/path (addr)"; keep the paths.
  ldd "$1" | grep -o '/[^ ]*' || true
}

for program in /bin/sh /bin/mv /bin/chmod /bin/cp /bin/rm; do
  copy "$program"
  for library in $(libraries_of "$program"); do copy "$library"; done
done
for bootstrap in "$@"; do
  [ -x "$bootstrap" ] || { echo "$bootstrap: not an executable" >&2; exit 1; }
  for library in $(libraries_of "$bootstrap"); do copy "$library"; done
done
mkdir -p "$rootfs"/var/task "$rootfs"/var/runtime "$rootfs"/opt "$rootfs"/tmp "$rootfs"/etc
chmod 1777 "$rootfs"/tmp
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs"/etc/passwd

tar -C "$rootfs" -c . | docker import \
  --change 'WORKDIR /var/task' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime' \
  - "$tag" >/dev/null
echo "$tag"
