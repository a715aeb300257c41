#!/usr/bin/env python3
"""usage: extract-vmlinux.py BZIMAGE OUT

Writes the uncompressed ELF kernel inside an XZ-compressed x86 bzImage (Debian's
linux-image-amd64 packages are built that way). QEMU boots an ELF kernel through its
PVH entry point, which skips the firmware and the in-guest decompressor: under TCG
that saves several seconds per boot.
"""
import lzma
import sys

XZ_MAGIC = b"\xfd7zXZ\x00"


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        data = f.read()
    off = data.find(XZ_MAGIC)
    while off >= 0:
        try:
            kernel = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:])
        except lzma.LZMAError:
            kernel = b""
        if kernel.startswith(b"\x7fELF"):
            with open(dst, "wb") as f:
                f.write(kernel)
            print(f"vmlinux: {len(kernel)} bytes from the xz stream at offset {off}")
            return
        off = data.find(XZ_MAGIC, off + 1)
    sys.exit(f"extract-vmlinux: no xz-compressed ELF kernel in {src}")


if __name__ == "__main__":
    main()
