#!/bin/sh
# Builds berth's example image offline, from the distribution's busybox-static package:
# a one-layer image with /bin/busybox and its applets, written as a `docker save`
# archive named berth.local/examples/busybox:latest (what examples/*.json run).
#
# usage: scripts/build-example-image.sh OUTPUT.tar
# Needs: busybox-static, umoci, skopeo (scripts/install-deps.sh installs them).
set -eu

out=${1:?usage: $0 OUTPUT.tar}
busybox=$(command -v busybox || true)
[ -x /bin/busybox ] && busybox=/bin/busybox
if [ -z "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
  echo "build-example-image: no static busybox (apt install busybox-static)" >&2
  exit 1
fi
case $(file -b "$busybox" 2>/dev/null || echo static) in
  *dynamic*) echo "build-example-image: $busybox is dynamically linked; install busybox-static" >&2; exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
umoci init --layout layout >/dev/null
umoci new --image layout:latest >/dev/null
umoci unpack --rootless --image layout:latest bundle >/dev/null 2>&1 || umoci unpack --image layout:latest bundle >/dev/null
root=bundle/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/www" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
www-data:x:33:
nogroup:x:65534:
GROUP
umoci repack --image layout:latest bundle >/dev/null
umoci config --image layout:latest --config.cmd /bin/sh --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin >/dev/null
umoci gc --layout layout
rm -f "$out"
skopeo copy -q oci:layout:latest "docker-archive:$out:berth.local/examples/busybox:latest"
echo "$out"
