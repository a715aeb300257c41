# Sourced by the bench scripts (POSIX sh).
#
# busybox_layout LAYOUT TAG BUSYBOX APPLET...
#   Adds LAYOUT:TAG to the OCI layout directory LAYOUT (created if missing): one layer
#   with the static BUSYBOX as /bin/busybox, a /bin/APPLET link for each applet and an
#   empty /tmp; Cmd /bin/sh, PATH=/bin.
busybox_layout() {
    bl_layout=$1 bl_tag=$2 bl_busybox=$3
    shift 3
    [ -d "$bl_layout" ] || umoci init --layout "$bl_layout" >/dev/null
    umoci new --image "$bl_layout:$bl_tag" >/dev/null
    bl_bundle="$bl_layout.$bl_tag.unpack"
    umoci unpack --image "$bl_layout:$bl_tag" "$bl_bundle" >/dev/null
    mkdir -p "$bl_bundle/rootfs/bin" "$bl_bundle/rootfs/tmp"
    cp "$bl_busybox" "$bl_bundle/rootfs/bin/busybox"
    for bl_applet in "$@"; do ln -sf busybox "$bl_bundle/rootfs/bin/$bl_applet"; done
    umoci repack --image "$bl_layout:$bl_tag" "$bl_bundle" >/dev/null
    umoci config --image "$bl_layout:$bl_tag" --config.cmd /bin/sh --config.env PATH=/bin >/dev/null
    rm -rf "$bl_bundle"
}
