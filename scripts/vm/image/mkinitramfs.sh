#!/bin/bash
# usage: mkinitramfs.sh MODULES_DIR BUSYBOX OUT.cpio.gz
#
# Packs a static busybox, initramfs-init (as /init) and the modules named in
# initramfs-modules, each preceded by what it depends on according to
# MODULES_DIR/modules.dep, so that /init can insmod them in file order.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
moddir=$(readlink -f "$1")
busybox=$(readlink -f "$2")
out=$(readlink -f "$3")

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/modules"
cp "$busybox" "$stage/bin/busybox"
install -m 755 "$here/initramfs-init" "$stage/init"

declare -A added=()
load_order=()

# add_module PATH: PATH is relative to MODULES_DIR, as in modules.dep.
add_module() {
  local path=$1 deps dep
  [[ -n ${added[$path]:-} ]] && return
  added[$path]=1
  deps=$(awk -F': *' -v p="$path" '$1 == p { print $2 }' "$moddir/modules.dep")
  # modules.dep lists a module's dependencies so that the last must be loaded first
  for dep in $(tr ' ' '\n' <<<"$deps" | tac); do
    add_module "$dep"
  done
  load_order+=("$path")
}

while read -r name _; do
  [[ -z $name || $name == \#* ]] && continue
  path=$(awk -F: -v n="$name" '{ f = $1; sub(".*/", "", f); sub("\\.ko(\\.[a-z]+)?$", "", f) }
                             f == n { print $1; exit }' "$moddir/modules.dep")
  if [[ -z $path ]]; then
    echo "mkinitramfs: module $name is not in $moddir/modules.dep" >&2
    exit 1
  fi
  add_module "$path"
done < "$here/initramfs-modules"

: > "$stage/modules/load-order"
for path in "${load_order[@]}"; do
  name=$(basename "$path" .ko)
  cp "$moddir/$path" "$stage/modules/$name.ko"
  echo "$name" >> "$stage/modules/load-order"
done

(cd "$stage" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -6) > "$out"
echo "initramfs: $(wc -l < "$stage/modules/load-order") modules: $(tr '\n' ' ' < "$stage/modules/load-order")"
