#!/bin/sh
# ECS API benchmark: latency and throughput of DescribeTasks, ListTasks and RunTask
# under 50 concurrent clients, and the time until 100 concurrently started tasks are
# RUNNING — next to podman starting 100 containers concurrently (`podman run -d`, the
# flags that work on this host per docs/perf notes), when podman is installed.
#
#   bench/api.sh [CLIENTS] [SECONDS]      (defaults 50 and 5; run as root)
#
# The daemon (release build) runs in a fresh network namespace (a fake host) with its
# data and run roots in a temporary directory, its own cgroup name, and an image built
# here from the host's busybox-static with umoci. The driver
# (tests/examples/api_bench.rs) keeps one HTTP/1.1 connection per client, on the unix
# socket and, for one DescribeTasks row, on TCP with SigV4 signatures as the SDKs
# send them. Everything is stopped and removed at the end (processes by PID).
# Goals: all 100 tasks RUNNING within 10 s; DescribeTasks p99 under 20 ms.
# Not a test: nothing here passes or fails on a time.
set -eu

CLIENTS=${1:-50}
SECONDS_EACH=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/busybox-layout.sh"
[ "$(id -u)" = 0 ] || { echo "api.sh: run as root" >&2; exit 1; }
for tool in umoci jq ip nsenter; do
  command -v "$tool" >/dev/null || { echo "api.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "api.sh: /bin/busybox (busybox-static) is missing" >&2; exit 1; }

W=$(mktemp -d /tmp/bE-bench-api.XXXXXX)
NS=bE-bench-$$
DAEMON_PID=""
PODMAN_ROOT=""
PODMAN_PARENT=""
PODMAN_SECS=""
cleanup() {
  set +e
  if [ -n "$DAEMON_PID" ]; then
    kill "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  if [ -n "$PODMAN_ROOT" ]; then
    podman_cmd rm -f -t 0 --all >/dev/null 2>&1
    podman_cmd rmi -a -f >/dev/null 2>&1
  fi
  if [ -n "$PODMAN_PARENT" ]; then
    for c in /sys/fs/cgroup/*/; do
      d="$c${PODMAN_PARENT#/}"
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  fi
  # What the daemon leaves at shutdown: its executable's bind mount and netns dir mount.
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

echo "== building berth and the driver (release)"
(cd "$ROOT" && cargo build -q --release -p berth && cargo build -q --release -p berth-tests --example api_bench)
BERTH="$ROOT/target/release/berth"
DRIVER="$ROOT/target/release/examples/api_bench"

echo "== building a busybox image with umoci"
cd "$W"
busybox_layout img latest /bin/busybox sh sleep true
IMAGE="oci-layout:$W/img:latest"

echo "== starting berth daemon in network namespace $NS"
ip netns add "$NS"
ip -n "$NS" link set lo up
BERTH_LOG=warn nsenter --net="/run/netns/$NS" -- "$BERTH" --data-root "$W/data" --run-root "$W/run" \
  daemon --cgroup-name "$NS" >"$W/daemon.log" 2>&1 &
DAEMON_PID=$!
i=0
until [ -S "$W/run/berth.sock" ] && [ -f "$W/data/auth/credentials.json" ]; do
  i=$((i + 1))
  [ $i -lt 400 ] || { echo "daemon did not start" >&2; cat "$W/daemon.log" >&2; exit 1; }
  kill -0 "$DAEMON_PID" 2>/dev/null || { echo "daemon exited" >&2; cat "$W/daemon.log" >&2; exit 1; }
  sleep 0.05
done
sleep 0.2
KEY=$(jq -r .accessKeyId "$W/data/auth/credentials.json")
SECRET=$(jq -r .secretAccessKey "$W/data/auth/credentials.json")

echo "== berth ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
nsenter --net="/run/netns/$NS" -- "$DRIVER" --socket "$W/run/berth.sock" --tcp 127.0.0.1:5450 \
  --key "$KEY" --secret "$SECRET" --image "$IMAGE" --clients "$CLIENTS" --seconds "$SECONDS_EACH" \
  | tee "$W/berth.out"
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
echo "daemon peak RSS: $((RSS / 1024)) MiB"
if grep -qiE 'panicked|ERROR' "$W/daemon.log"; then
  echo "daemon log has errors:"; grep -iE 'panicked|ERROR' "$W/daemon.log" | head -20
fi
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""

# ---------- peer: podman run -d, 100 at once ----------
podman_cmd() {
  CONTAINERS_CONF="$PODMAN_ROOT/containers.conf" CONTAINERS_STORAGE_CONF="$PODMAN_ROOT/storage.conf" \
    nsenter --net="/run/netns/$NS" -- podman --cgroup-manager=cgroupfs --events-backend=file --runtime runc "$@"
}
if command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1; then
  echo
  echo "== peer: podman run -d --network=none (runc), 100 at once"
  PODMAN_ROOT="$W/podman"
  mkdir -p "$PODMAN_ROOT"
  own=$(awk -F: '$2 == "memory" || $2 == "" {print $3; exit}' /proc/self/cgroup)
  PODMAN_PARENT="${own%/}/bE-bench-podman-$$"
  cat >"$PODMAN_ROOT/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_ROOT/storage"
runroot = "$PODMAN_ROOT/run"
EOF
  cat >"$PODMAN_ROOT/containers.conf" <<EOF
[containers]
cgroupns = "host"
log_driver = "k8s-file"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_ROOT/events.log"
tmp_dir = "$PODMAN_ROOT/tmp"
runtime = "runc"
[network]
network_backend = "cni"
network_config_dir = "$PODMAN_ROOT/cni"
EOF
  # Into podman's private store under a plain name (podman would name an oci: image
  # after its path).
  if skopeo copy -q "oci:$W/img:latest" \
    "containers-storage:[overlay@$PODMAN_ROOT/storage+$PODMAN_ROOT/run]localhost/bench:latest" \
    >/dev/null 2>"$PODMAN_ROOT/pull.log"; then
    run_one() {
      podman_cmd run -d --network=none --cgroup-parent="$PODMAN_PARENT" \
        --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 localhost/bench:latest sleep 600 >/dev/null 2>>"$PODMAN_ROOT/run.log"
    }
    run_one # warm-up (storage, layers)
    podman_cmd rm -f -t 0 --all >/dev/null 2>&1
    start=$(date +%s%N)
    n=0
    while [ $n -lt 100 ]; do run_one & n=$((n + 1)); done
    wait
    end=$(date +%s%N)
    up=$(podman_cmd ps -q | wc -l)
    echo "podman: $up/100 running after $(( (end - start) / 1000000 )) ms"
    PODMAN_SECS=$(echo "$start $end" | awk '{printf "%.3f", ($2 - $1) / 1e9}')
    s=$(date +%s%N)
    podman_cmd rm -f -t 0 --all >/dev/null 2>&1
    echo "podman: removed in $(( ($(date +%s%N) - s) / 1000000 )) ms"
  else
    echo "podman's store cannot take the image here; skipped"; cat "$PODMAN_ROOT/pull.log"
  fi
fi

echo
echo "== summary"
B=$(sed -n 's/^BURST_RUNNING_SECS=//p' "$W/berth.out")
echo "100 concurrent starts until all running: berth ${B} s (goal < 10 s); podman run -d: ${PODMAN_SECS:-n/a} s"
grep -E '^DescribeTasks 1 task \(unix\)' "$W/berth.out" | awk '{print "DescribeTasks p99 (unix): " $(NF-1) " ms (goal < 20 ms)"}'
