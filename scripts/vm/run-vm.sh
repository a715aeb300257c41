#!/bin/bash
# usage: scripts/vm/run-vm.sh --image DIR --out DIR [--bin DIR] [--timeout SECONDS]
#                             [--memory MiB] [--cpus N] [--quiet] SCRIPT [ARG...]
#
# Boots the cgroup-v2 test VM (an image restored by build-image.sh --out DIR) and runs
# SCRIPT inside it with bash, as root, in the cgroup /sys/fs/cgroup/berth-ci (see
# image/berth-vm-init for everything the script gets). The VM has no network interface
# besides loopback, boots with cgroup v1 disabled, and writes to a throwaway snapshot
# of the image.
#
#   --out DIR   shared read-write, mounted at /mnt/out and the script's working
#               directory: results go here. The console is saved as DIR/serial.log,
#               the guest's kernel log as DIR/dmesg.log.
#   --bin DIR   shared read-only at /mnt/bin (host-built binaries). Share a real
#               directory: 9p passes symlinks through unresolved.
#   --timeout   hard limit for the whole VM, boot included (default 1200 s).
#   --quiet     do not copy the console to stdout while the VM runs.
#
# Exit status: the script's, as the VM reported it in DIR/vm-exit-status; 124 if the
# VM hit the timeout; 125 if it stopped without reporting a status (kernel panic,
# crash of its init) or QEMU itself failed.
#
# Environment: BERTH_VM_ACCEL (default tcg; kvm where real VT-x/AMD-V KVM is usable,
# which it is not on the project's CI machine), BERTH_VM_QEMU (default
# qemu-system-x86_64).
set -euo pipefail

image= out= bin= timeout_s=1200 memory=1536 cpus=1 quiet=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --image) image=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --) shift; break ;;
    -*) echo "run-vm: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ -z $image || -z $out || $# -lt 1 ]]; then
  echo "usage: $0 --image DIR --out DIR [--bin DIR] [--timeout S] [--memory MiB] [--cpus N] [--quiet] SCRIPT [ARG...]" >&2
  exit 2
fi
script=$1
shift

say() { echo "run-vm: $*" >&2; }
for f in vmlinux initramfs.cpio.gz rootfs.ext4; do
  [[ -f $image/$f ]] || { say "$image/$f is missing (run build-image.sh --out $image)"; exit 125; }
done
[[ -f $script ]] || { say "no script $script"; exit 2; }
[[ -z $bin || -d $bin ]] || { say "no directory $bin"; exit 2; }

image=$(readlink -f "$image")
mkdir -p "$out"
out=$(readlink -f "$out")
rm -rf "$out/.vm" "$out/vm-exit-status" "$out/dmesg.log"
mkdir "$out/.vm"
cp "$script" "$out/.vm/run"
if [[ $# -gt 0 ]]; then printf '%s\n' "$@" > "$out/.vm/args"; fi
log=$out/serial.log
: > "$log"

cmdline=(
  console=ttyS0 quiet loglevel=3 panic=-1 oops=panic
  systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all
  berth.root=vda berth.init=/sbin/berth-vm-init
)
qemu=(
  "${BERTH_VM_QEMU:-qemu-system-x86_64}" -accel "${BERTH_VM_ACCEL:-tcg}"
  -nodefaults -no-user-config -display none -monitor none -no-reboot
  -m "$memory" -smp "$cpus" -nic none
  -kernel "$image/vmlinux" -initrd "$image/initramfs.cpio.gz" -append "${cmdline[*]}"
  -drive "file=$image/rootfs.ext4,if=virtio,format=raw,snapshot=on"
  -chardev "file,id=console,path=$log" -serial chardev:console
  -virtfs "local,path=$out,mount_tag=berthout,security_model=none"
)
if [[ -n $bin ]]; then
  qemu+=(-virtfs "local,path=$(readlink -f "$bin"),mount_tag=berthbin,security_model=none,readonly=on")
fi

start=$SECONDS
timeout --kill-after=10 "$timeout_s" "${qemu[@]}" &
vm=$!
trap 'kill "$vm" 2>/dev/null' EXIT INT TERM
tail_pid=
if [[ $quiet == 0 ]]; then
  tail -n +1 -F --pid="$vm" "$log" 2>/dev/null &
  tail_pid=$!
fi
set +e
wait "$vm"
qemu_rc=$?
set -e
trap - EXIT INT TERM
[[ -n $tail_pid ]] && wait "$tail_pid" 2>/dev/null
elapsed=$((SECONDS - start))

if [[ $qemu_rc == 124 || $qemu_rc == 137 ]]; then
  say "the VM hit the timeout of ${timeout_s} s; console in $log"
  exit 124
fi
if [[ $qemu_rc != 0 ]]; then
  say "QEMU failed with exit status $qemu_rc after ${elapsed} s; console in $log"
  exit 125
fi
if [[ ! -s $out/vm-exit-status ]]; then
  say "the VM stopped after ${elapsed} s without reporting an exit status; console in $log"
  exit 125
fi
status=$(cat "$out/vm-exit-status")
if [[ ! $status =~ ^[0-9]+$ ]]; then
  say "the VM reported a malformed exit status '$status'"
  exit 125
fi
say "VM finished in ${elapsed} s, script exit status $status"
exit "$status"
