#!/bin/bash
# usage: scripts/vm/build-image.sh [--out DIR] [--rebuild]
#
# Makes sure the cgroup-v2 test VM image is in the cache and, with --out, restores it
# into DIR as vmlinux, initramfs.cpio.gz and rootfs.ext4 (what run-vm.sh boots).
#
# The image is a Debian minbase root filesystem (debootstrap), the kernel of Debian's
# linux-image-amd64 unpacked with dpkg -x (never installed on this host), an initramfs
# with the virtio, ext4 and 9p modules, and the kernel as an uncompressed ELF so that
# QEMU can boot it through the PVH entry point.
#
# Cache: ${BERTH_CACHE_DIR:-/var/cache/berth}/vm/<key>/, zstd-compressed, where <key>
# hashes this script and everything under scripts/vm/image/. The image is rebuilt only
# when that recipe changes, the entry is missing, or --rebuild (BERTH_VM_REBUILD=1) is
# given. Builds are serialised with a lock in the cache directory. The kernel package
# is fetched with a private apt state (lists and status of its own), so the build never
# takes the host's dpkg lock and does not depend on the host's apt sources.
#
# Building needs root, debootstrap, debian-archive-keyring, apt, dpkg, python3, gzip,
# zstd, mkfs.ext4 (e2fsprogs >= 1.43) and the Debian mirror. Restoring needs zstd only.
#
# Environment: BERTH_CACHE_DIR, BERTH_VM_MIRROR (default http://deb.debian.org/debian),
# BERTH_VM_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
# BERTH_VM_REBUILD=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
image_size=768M
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mirror=${BERTH_VM_MIRROR:-http://deb.debian.org/debian}
security_mirror=${BERTH_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${BERTH_CACHE_DIR:-/var/cache/berth}/vm
rebuild=${BERTH_VM_REBUILD:-0}
out=

while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    *) echo "usage: $0 [--out DIR] [--rebuild]" >&2; exit 2 ;;
  esac
done

say() { echo "vm-image: $*"; }
die() { echo "vm-image: error: $*" >&2; exit 1; }

# The cache key: the suite, the image size and the content of every file of the recipe.
recipe_key() {
  {
    echo "suite=$suite size=$image_size"
    cd "$here"
    for f in build-image.sh $(find image -type f | LC_ALL=C sort); do
      echo "$f $(sha256sum < "$f" | cut -d' ' -f1)"
    done
  } | sha256sum | cut -c1-16
}

# Kernel modules kept in the image: everything a container host may load (filesystems,
# netfilter, bridge, veth, overlay, ...), but no sound, GPU, USB, media or NIC drivers.
module_dirs=(
  arch block crypto fs kernel lib mm net security
  drivers/block drivers/char drivers/md drivers/net drivers/virtio
)
module_excludes=(
  drivers/net/wireless drivers/net/ethernet drivers/net/usb drivers/net/can
  drivers/net/wwan drivers/net/ieee802154 drivers/net/hamradio drivers/net/arcnet
  drivers/net/fddi drivers/net/plip drivers/net/slip drivers/net/appletalk
  drivers/net/hippi drivers/net/wan drivers/net/hyperv
  net/wireless net/mac80211 net/bluetooth net/nfc net/ieee802154 net/mac802154
)

# build DIR: builds the image in DIR (empty, on the cache's filesystem); the result is
# DIR/out, ready to be renamed into the cache.
build() {
  local dir=$1 start=$SECONDS
  [[ $(id -u) == 0 ]] || die "building the image needs root (debootstrap, chroot)"
  [[ -r $keyring ]] || die "$keyring is missing (package debian-archive-keyring)"
  mkdir -p "$dir/out"

  say "fetching the kernel package (private apt state in $dir/apt)"
  local apt=$dir/apt
  mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$dir/debs"
  : > "$apt/status"
  cat > "$apt/sources.list" <<EOF
deb [signed-by=$keyring] $mirror $suite main
deb [signed-by=$keyring] $security_mirror $suite-security main
EOF
  local apt_opts=(
    -o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::Etc::PreferencesParts=$apt/parts" -o "Dir::Etc::Preferences=$apt/parts/none"
    -o "Dir::State=$apt/state" -o "Dir::State::status=$apt/status" -o "Dir::Cache=$apt/cache"
    -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Languages=none
    -o APT::Sandbox::User=root
  )
  apt-get "${apt_opts[@]}" -qq update
  local kpkg kver
  kpkg=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [[ -n $kpkg ]] || die "cannot resolve linux-image-amd64 in $suite"
  kver=${kpkg#linux-image-}
  (cd "$dir/debs" && apt-get "${apt_opts[@]}" -qq download "$kpkg")
  local kdeb
  kdeb=$(echo "$dir"/debs/"$kpkg"_*.deb)
  dpkg -x "$kdeb" "$dir/kernel"
  say "kernel $kpkg $(dpkg-deb -f "$kdeb" Version) ($((SECONDS - start)) s)"

  say "debootstrap $suite minbase"
  local packages rootfs=$dir/rootfs
  packages=$(sed 's/#.*//' "$here/image/packages" | xargs | tr ' ' ',')
  mkdir -p "$cache/debs"
  if ! debootstrap --variant=minbase --include="$packages" --keyring="$keyring" \
    --cache-dir="$cache/debs" "$suite" "$rootfs" "$mirror" > "$dir/debootstrap.log" 2>&1; then
    tail -n 30 "$dir/debootstrap.log" >&2
    [[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  # The VM never runs apt and nobody reads its manuals: drop ~100 MB.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  say "root filesystem $(du -sh "$rootfs" | cut -f1) ($((SECONDS - start)) s)"

  local present=() d x excludes=()
  for d in "${module_dirs[@]}"; do
    [[ -d $dir/kernel/lib/modules/$kver/kernel/$d ]] && present+=("$kver/kernel/$d")
  done
  for x in "${module_excludes[@]}"; do excludes+=("--exclude=$kver/kernel/$x"); done
  mkdir -p "$rootfs/lib/modules"
  (cd "$dir/kernel/lib/modules" && tar -cf - "${excludes[@]}" "$kver"/modules.* "${present[@]}") |
    tar -C "$rootfs/lib/modules" -xf -
  chroot "$rootfs" depmod -a "$kver"
  say "modules $(du -sh "$rootfs/lib/modules/$kver" | cut -f1)"

  install -m 755 "$here/image/berth-vm-init" "$rootfs/sbin/berth-vm-init"
  echo berth-vm > "$rootfs/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$rootfs/etc/hosts"

  "$here/image/mkinitramfs.sh" "$rootfs/lib/modules/$kver" "$rootfs/bin/busybox" \
    "$dir/out/initramfs.cpio.gz"
  python3 "$here/image/extract-vmlinux.py" "$dir/kernel/boot/vmlinuz-$kver" "$dir/vmlinux"
  mkfs.ext4 -q -F -L berth-vm -d "$rootfs" "$dir/rootfs.ext4" "$image_size"

  zstd -q -T0 -3 -o "$dir/out/vmlinux.zst" "$dir/vmlinux"
  zstd -q -T0 -3 -o "$dir/out/rootfs.ext4.zst" "$dir/rootfs.ext4"
  {
    echo "key=$key"
    echo "suite=$suite"
    echo "kernel=$kpkg $(dpkg-deb -f "$kdeb" Version)"
    echo "kernel_release=$kver"
    echo "packages=$packages"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "build_seconds=$((SECONDS - start))"
  } > "$dir/out/manifest"
  say "built in $((SECONDS - start)) s: $(cd "$dir/out" && du -sh --apparent-size ./* | tr '\t\n' '= ')"
}

key=$(recipe_key)
entry=$cache/$key
mkdir -p "$cache"

if [[ $rebuild == 1 || ! -f $entry/manifest ]]; then
  exec 9> "$cache/.lock"
  if ! flock -n 9; then
    say "waiting for another image build (lock $cache/.lock)"
    flock 9
  fi
  if [[ $rebuild == 1 || ! -f $entry/manifest ]]; then
    # Whatever a killed build left behind is garbage: nobody else holds the lock.
    rm -rf "$cache"/.build.*
    say "building image $key (cache $cache)"
    builddir=$(mktemp -d "$cache/.build.XXXXXX")
    trap 'rm -rf "$builddir"' EXIT
    build "$builddir"
    rm -rf "$entry"
    mv "$builddir/out" "$entry"
    rm -rf "$builddir"
    trap - EXIT
  fi
  exec 9>&-
else
  say "cache hit: $entry"
fi
touch "$entry"
# Entries of older recipes that nobody used for two weeks.
find "$cache" -mindepth 1 -maxdepth 1 -type d -regextype egrep -regex '.*/[0-9a-f]{16}' \
  ! -name "$key" -mtime +14 -exec rm -rf {} + 2>/dev/null || true

if [[ -n $out ]]; then
  start=$SECONDS
  mkdir -p "$out"
  zstd -q -d -f -o "$out/vmlinux" "$entry/vmlinux.zst"
  zstd -q -d -f -o "$out/rootfs.ext4" "$entry/rootfs.ext4.zst"
  cp "$entry/initramfs.cpio.gz" "$entry/manifest" "$out/"
  say "restored into $out in $((SECONDS - start)) s ($(grep '^kernel=' "$entry/manifest"))"
fi
