#!/usr/bin/env bash
# Warm start-to-exit of a one-container task running `true`, and memory per task.
#
#   bench/run.sh            (as root; RUNS=40 timed runs per command, TASKS=5 for memory)
#   RUNS=20 TASKS=8 BERTH_BIN=target/release/berth bench/run.sh
#   BERTH_BASE=/path/to/older/berth bench/run.sh   (also times an older build, side by side,
#                                                    with its own daemon: before/after figures)
#
# Timed, in ONE hyperfine invocation per pass (so the figures share the host's load), in two
# passes: back to back, and spaced (100 ms idle before each start; see the comment there):
#   * `berth run bH-none`    a registered task definition, networkMode none
#   * `berth run bH-awsvpc`  the same with the default awsvpc network (netns + veth + address)
#   * `crun run`, `runc run` of an equivalent bundle: the OCI spec berth itself generated for
#     the same task definition (taken from a running task: the same capabilities, seccomp
#     profile, masked paths, mounts, rlimits, device rules, memory / cpu / pids limits),
#     with the busybox rootfs, the runtime's own cgroup and a new network namespace
#   * `crun run` of `runc spec`'s minimal bundle with the same limits (no seccomp profile,
#     3 capabilities, no /etc binds): what a bare runtime costs, for reference
#   * `podman run --rm --network=none` of the same image with the same limits
# The image is cached and the definitions are registered before timing (warm start); a warm-up
# run of each command is not counted. Prints min/median/max and the median ratios
# berth/crun, berth/runc, berth/podman.
#
# Memory: TASKS detached `sleep` tasks, then RSS / PSS / USS (private clean + dirty) of each
# shim from /proc/<pid>/smaps_rollup, and of the daemon; podman's conmon for the same number of
# `podman run -d` containers, side by side.
#
# Each daemon runs in its own fake-host network namespace (bH-…); every cgroup (berth's, crun's,
# runc's, podman's) lies under the bench's own cgroup subtree. crun refuses this host's hybrid
# cgroup layout, so all timed commands run in a private mount namespace without the cgroup2
# `unified` mount (perf-baselines.md). Everything is removed at the end: tasks, containers,
# daemon (by PID), mounts, network namespace, cgroups, the work directory.
# Not a test: nothing here passes or fails on a time.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/busybox-layout.sh"

# ---------------------------------------------------------------------------------------------
# The measuring part runs inside the private mount namespace (re-executed by the outer part).
if [ "${1:-}" = "__measure" ]; then
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    P="podman --root $W/podman/root --runroot $R/podman --storage-driver overlay --cgroup-manager=cgroupfs --events-backend=file --runtime runc"
    PODMAN_LIMITS="--network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --pids-limit 4096 --cgroup-parent=$CG/podman"
    # BERTHS: "name binary daemon-pid" per line; "main" is the build under test, "base" an
    # older one; each has its own roots ($W/berth$sfx, $R/berth$sfx).
    cmds=()
    labels=()
    while read -r name bin _; do
        sfx=""; [ "$name" = main ] || sfx="-$name"
        B="$bin --data-root $W/berth$sfx/data --run-root $R/berth$sfx"
        cmds+=(-n "berth$sfx run (none)" "$B run bH-none" -n "berth$sfx run (awsvpc)" "$B run bH-awsvpc")
        labels+=("berth$sfx")
    done <<<"$BERTHS"

    # Two passes. "back to back": each start follows the previous one at once (hyperfine's
    # default). "spaced": 100 ms of idle before each start. The first cgroup migration
    # after an idle spell waits one RCU grace period (~10-20 ms here: the kernel switches
    # cgroup_threadgroup_rwsem to its slow mode); a migration within a grace period of
    # the previous one does not. Back to back, an 8 ms `crun run` always finds the
    # previous run's migration still that recent; berth's longer start never does.
    # Spaced, every command pays the wait, as any single start does.
    for pass in back-to-back spaced; do
        prepare=()
        [ "$pass" = spaced ] && prepare=(--prepare "sleep 0.1")
        echo "== timing ($pass): $RUNS runs each (+1 warm-up), one hyperfine invocation"
        hyperfine -N --style basic --runs "$RUNS" --warmup 1 "${prepare[@]}" --export-json "$W/start-$pass.json" \
            "${cmds[@]}" \
            -n "crun run" "crun --root $R/crun run --bundle $W/bundle-crun bHcrun" \
            -n "runc run" "runc --root $R/runc run --bundle $W/bundle-runc bHrunc" \
            -n "crun run (runc spec)" "crun --root $R/crun run --bundle $W/bundle-minimal bHmin" \
            -n "podman run --rm" "$P run --rm $PODMAN_LIMITS --memory 256m --cpu-shares 512 localhost/bh-busybox:latest /bin/true" \
            >"$W/hyperfine-$pass.log" 2>&1 || { cat "$W/hyperfine-$pass.log" >&2; exit 1; }

        echo
        printf '%-26s %9s %9s %9s\n' "command (ms)" min median max
        jq -r '.results[] | "\(.command)\t\(.min)\t\(.median)\t\(.max)"' "$W/start-$pass.json" |
            awk -F'\t' '{ printf "%-26s %9.1f %9.1f %9.1f\n", $1, $2 * 1000, $3 * 1000, $4 * 1000 }'
        echo
        for l in "${labels[@]}"; do
            jq -r --arg l "$l" '
                (.results | map({key: .command, value: .median}) | from_entries) as $m
                | ["\($l) run (none)", "\($l) run (awsvpc)"][] as $b
                | def r(x): (x * 100 | round) / 100;
                  "\($b):  /crun \(r($m[$b] / $m["crun run"]))   /runc \(r($m[$b] / $m["runc run"]))   /podman \(r($m[$b] / $m["podman run --rm"]))   (/crun with runc spec \(r($m[$b] / $m["crun run (runc spec)"])))"
            ' "$W/start-$pass.json"
        done
        echo
    done
    echo "(goal: berth's median within 2x of crun run and under 0.5x of podman run)"

    echo
    echo "== memory: $TASKS detached tasks / containers running sleep, per build"
    : >"$W/pids"
    stop_ids=()
    while read -r name bin pid; do
        sfx=""; [ "$name" = main ] || sfx="-$name"
        B="$bin --data-root $W/berth$sfx/data --run-root $R/berth$sfx"
        ids=()
        for _ in $(seq "$TASKS"); do ids+=("$($B run -d bH-sleep)"); done
        for id in "${ids[@]}"; do
            for _ in $(seq 400); do
                st=$($B describe "$id" 2>/dev/null | jq -r '.tasks[0].lastStatus')
                [ "$st" = RUNNING ] && break
                [ "$st" = STOPPED ] && { echo "task $id stopped instead of running" >&2; exit 1; }
                sleep 0.05
            done
            echo "shim$sfx $(cat "$R/berth$sfx/tasks/$id/shim.pid")" >>"$W/pids"
            stop_ids+=("$bin ${sfx:-.} $id")
        done
        echo "daemon$sfx $pid" >>"$W/pids"
    done <<<"$BERTHS"
    cids=()
    for i in $(seq "$TASKS"); do
        cids+=("$($P run -d --name "bh-sleep-$i" $PODMAN_LIMITS --memory 64m --cpu-shares 64 localhost/bh-busybox:latest /bin/sleep 3600)")
    done
    # Also more than the second after its last container start at which a shim drops the
    # pages that start faulted in (runtime/src/shim/footprint.rs): idle figures.
    sleep 1.5
    for c in "${cids[@]}"; do
        echo "conmon $(pgrep -f "^/usr/bin/conmon .*-c $c" | head -1)" >>"$W/pids"
    done
    printf '%-12s %6s %10s %10s %10s %10s\n' process pid "RSS KiB" "PSS KiB" "USS KiB" "anon KiB"
    while read -r what pid; do
        [ -r "/proc/$pid/smaps_rollup" ] || continue
        awk -v what="$what" -v pid="$pid" '
            /^Rss:/ { rss = $2 } /^Pss:/ { pss = $2 } /^Private_Clean:/ { pc = $2 }
            /^Private_Dirty:/ { pd = $2 } /^Anonymous:/ { an = $2 }
            END { printf "%-12s %6d %10d %10d %10d %10d\n", what, pid, rss, pss, pc + pd, an }' \
            "/proc/$pid/smaps_rollup"
    done <"$W/pids" | tee "$W/mem.txt"
    echo
    awk '$1 !~ /^daemon/ { n[$1]++; r[$1] += $3; p[$1] += $4; u[$1] += $5 }
         END { for (k in n) printf "%-12s mean of %d: RSS %.0f KiB, PSS %.0f KiB, USS %.0f KiB\n", k, n[k], r[k] / n[k], p[k] / n[k], u[k] / n[k] }' \
        "$W/mem.txt" | sort
    echo "(goal: shim under 2 MiB; podman's conmon is ~2.4 MiB RSS. PSS shares the berth"
    echo " binary's pages among every berth process, the daemon included; USS is what one more"
    echo " task adds)"

    for x in "${stop_ids[@]}"; do
        read -r bin sfx id <<<"$x"
        [ "$sfx" = . ] && sfx=""
        "$bin" --data-root "$W/berth$sfx/data" --run-root "$R/berth$sfx" stop -t 0 "$id" >/dev/null
    done
    $P rm -f -t 0 "${cids[@]}" >/dev/null 2>&1 || true
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# The outer part: build, images, bundles, fake host, daemon; then cleanup.
RUNS=${RUNS:-40}
TASKS=${TASKS:-5}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
for tool in hyperfine jq umoci crun runc podman skopeo nsenter unshare ip busybox; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || BUSYBOX=/bin/busybox

if [ -z "${BERTH_BIN:-}" ]; then
    echo "== building berth (release)"
    (cd "$ROOT" && cargo build -q --release -p berth)
    BERTH_BIN="$ROOT/target/release/berth"
fi
BERTH=$(realpath "$BERTH_BIN")
BUILDS=("main $BERTH")
[ -n "${BERTH_BASE:-}" ] && BUILDS+=("base $(realpath "$BERTH_BASE")")

# As installed: persistent state (database, images, writable layers, logs) on disk, volatile
# state (sockets, mount points, bundles, runtime state) on the tmpfs /run — for every runtime.
W=$(mktemp -d /tmp/bH-bench-run.XXXXXX)
R=$(mktemp -d /run/bH-bench-run.XXXXXX)
TAG=$$
# The bench's own cgroup: the deepest of this shell's v1 cgroups (berth uses the same rule),
# or its v2 cgroup.
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo "run.sh: cgroup v2 hosts are not handled by this script yet (crun/runc paths)" >&2
    exit 1
fi
OWN=$(awk -F: '$2 != "" && $2 !~ /^name=/ { print $3 }' /proc/self/cgroup | awk '{ print length, $0 }' | sort -n | tail -1 | cut -d' ' -f2-)
OWN=${OWN%/}
CG="$OWN/bH-bench-$TAG"
HIERARCHIES=(cpu cpuacct cpuset memory pids blkio devices freezer systemd)
# Parent directories of $CG that do not exist yet in some hierarchy are removed at the end
# if they are empty then.
created_parents=()
for h in "${HIERARCHIES[@]}"; do
    d=/sys/fs/cgroup/$h$OWN
    while [ "$d" != "/sys/fs/cgroup/$h" ] && [ ! -d "$d" ]; do created_parents+=("$d"); d=$(dirname "$d"); done
done
BERTHS=""   # "name binary daemon-pid" per started daemon

cleanup() {
    set +e
    while read -r name bin pid; do
        [ -n "$pid" ] || continue
        sfx=""; [ "$name" = main ] || sfx="-$name"
        B="$bin --data-root $W/berth$sfx/data --run-root $R/berth$sfx"
        if kill -0 "$pid" 2>/dev/null; then
            for arn in $($B ps --format json 2>/dev/null | jq -r '.[].taskArn'); do
                $B stop -t 0 "${arn##*/}" >/dev/null 2>&1
            done
            for _ in $(seq 100); do
                [ -z "$($B ps --format json 2>/dev/null | jq -r '.[].taskArn')" ] && break
                sleep 0.1
            done
            kill -TERM "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
        ip netns del "bH-bench-$TAG$sfx" 2>/dev/null
    done <<<"$BERTHS"
    P="podman --root $W/podman/root --runroot $R/podman --storage-driver overlay --cgroup-manager=cgroupfs --events-backend=file --runtime runc"
    if [ -d "$W/podman" ]; then
        $P rm -af -t 0 >/dev/null 2>&1
        $P rmi -af >/dev/null 2>&1
    fi
    for r in crun runc; do
        for c in $($r --root "$R/$r" list -q 2>/dev/null); do $r --root "$R/$r" delete -f "$c" >/dev/null 2>&1; done
    done
    grep -e " $W" -e " $R" /proc/self/mountinfo | awk '{ print $5 }' | sort -r | while read -r m; do umount -l "$m"; done
    for h in "${HIERARCHIES[@]}"; do
        for d in "/sys/fs/cgroup/$h$OWN/bH-bench-$TAG"*; do
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    done
    for d in "${created_parents[@]}"; do rmdir "$d" 2>/dev/null; done
    rm -rf "$W" "$R"
}
trap cleanup EXIT INT TERM

echo "== image: busybox OCI layout (umoci, $BUSYBOX)"
cd "$W"
busybox_layout img busybox "$BUSYBOX" sh true sleep
IMAGE="oci-layout:$W/img:busybox"

echo "== minimal bundle for crun (runc spec + the task's limits)"
umoci unpack --image img:busybox rootfs-bundle >/dev/null
mkdir bundle-minimal bundle-crun bundle-runc bundle-etc
(cd bundle-minimal && runc spec)
jq --arg root "$W/rootfs-bundle/rootfs" --arg cg "$CG/minimal" '
    .process.terminal = false | .process.args = ["/bin/true"] | .process.env = ["PATH=/bin"]
    | .root = {path: $root, readonly: false}
    | .linux.cgroupsPath = $cg
    | .linux.resources.memory = {limit: 268435456}
    | .linux.resources.cpu = {shares: 512}
    | .linux.resources.pids = {limit: 4096}
' bundle-minimal/config.json >bundle-minimal/config.json.new
mv bundle-minimal/config.json.new bundle-minimal/config.json

echo "== podman: image into a private store"
export CONTAINERS_CONF="$W/containers.conf"
mkdir -p "$R/libpod" "$W/podman/cni"
cat >"$CONTAINERS_CONF" <<EOF
[containers]
cgroupns = "host"
log_driver = "k8s-file"
[engine]
tmp_dir = "$R/libpod"
events_logfile_path = "$W/podman/events.log"
[network]
network_backend = "cni"
network_config_dir = "$W/podman/cni"
EOF
skopeo copy -q "oci:$W/img:busybox" "containers-storage:[overlay@$W/podman/root+$R/podman]localhost/bh-busybox:latest"

container() { # cpu memory command...
    jq -nc --arg image "$IMAGE" --argjson cpu "$1" --argjson mem "$2" --args \
        '{name: "main", image: $image, essential: true, cpu: $cpu, memory: $mem, command: $ARGS.positional[2:]}' "$@"
}
jq -n --argjson c "$(container 512 256 /bin/true)" '{family: "bH-none", networkMode: "none", containerDefinitions: [$c]}' >td-none.json
jq -n --argjson c "$(container 512 256 /bin/true)" '{family: "bH-awsvpc", containerDefinitions: [$c]}' >td-awsvpc.json
jq -n --argjson c "$(container 512 256 /bin/sleep 600)" '{family: "bH-spec", networkMode: "none", containerDefinitions: [$c]}' >td-spec.json
# Small reservations, so that TASKS of them fit the host's CPU units.
jq -n --argjson c "$(container 64 64 /bin/sleep 3600)" '{family: "bH-sleep", networkMode: "none", containerDefinitions: [$c]}' >td-sleep.json
# One daemon per build, each in its own fake host with its own roots and cgroup name.
for build in "${BUILDS[@]}"; do
    read -r name bin <<<"$build"
    sfx=""; [ "$name" = main ] || sfx="-$name"
    ns="bH-bench-$TAG$sfx"
    echo "== fake host $ns and berth daemon ($bin)"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    nsenter --net="/run/netns/$ns" -- "$bin" --data-root "$W/berth$sfx/data" --run-root "$R/berth$sfx" \
        daemon --cgroup-name "bH-bench-$TAG-berth$sfx" --listen none >"$W/daemon$sfx.log" 2>&1 &
    BERTHS+="$name $bin $!"$'\n'
    for _ in $(seq 400); do [ -S "$R/berth$sfx/berth.sock" ] && break; sleep 0.05; done
    [ -S "$R/berth$sfx/berth.sock" ] || { cat "$W/daemon$sfx.log" >&2; exit 1; }
    B="$bin --data-root $W/berth$sfx/data --run-root $R/berth$sfx"
    for f in none awsvpc sleep spec; do $B register "td-$f.json" >/dev/null; done
    $B run bH-none >/dev/null   # loads the image into this daemon's store
done
BERTHS=${BERTHS%$'\n'}

echo "== equivalent bundles for crun and runc: the spec berth generated for bH-spec"
# bH-spec is bH-none running sleep: berth's spec for it, with the rootfs, cgroup, network
# namespace and /etc files made the runtime's own, and `true` as the command.
read -r _ MAIN_BIN _ <<<"${BERTHS%%$'\n'*}"
B="$MAIN_BIN --data-root $W/berth/data --run-root $R/berth"
spec_id=$($B run -d bH-spec)
for _ in $(seq 400); do
    [ -f "$R/berth/tasks/$spec_id/containers/main/config.json" ] &&
        [ "$($B describe "$spec_id" | jq -r '.tasks[0].lastStatus')" = RUNNING ] && break
    sleep 0.05
done
# berth loads the seccomp profile it compiled ahead itself (the bundle's seccomp.json
# and seccomp.bpf, not in config.json): the runtimes get it in their spec.
main_bundle="$R/berth/tasks/$spec_id/containers/main"
if [ -f "$main_bundle/seccomp.json" ]; then
    jq --slurpfile s "$main_bundle/seccomp.json" '.linux.seccomp = $s[0]' "$main_bundle/config.json" >berth-spec.json
else
    cp "$main_bundle/config.json" berth-spec.json
fi
for f in hosts resolv.conf hostname; do
    cp "$R/berth/tasks/$spec_id/containers/main/etc/$f" "bundle-etc/$f"
done
$B stop -t 0 "$spec_id" >/dev/null
for r in crun runc; do
    jq --arg root "$W/rootfs-bundle/rootfs" --arg cg "$CG/$r" --arg etc "$W/bundle-etc" --arg run "$R/berth/" '
        .process.terminal = false | .process.args = ["/bin/true"]
        | .root = {path: $root, readonly: false}
        | .linux.cgroupsPath = $cg
        | .linux.namespaces |= map(del(.path))
        | del(.annotations)
        | .mounts |= map(if (.source // "" | startswith($run))
                         then .source = ($etc + "/" + (.destination | split("/") | last)) else . end)
    ' berth-spec.json >"bundle-$r/config.json"
done
if grep -q "$R/berth/" bundle-crun/config.json; then
    echo "run.sh: the equivalent bundle still refers to berth's run directory" >&2
    exit 1
fi

export W R CG RUNS TASKS BERTHS
unshare -m --propagation private -- bash "$HERE/run.sh" __measure
