#!/bin/bash
# Runs inside the test VM (run-vm.sh SCRIPT): executes the test binaries listed in
# $VM_BIN_DIR/tests.list, one line per entry, tab-separated:
#     <id> <executable, relative to $VM_BIN_DIR/tests> [<test binary argument>...]
# each with --test-threads=1, as root, with
#     BERTH_TEST_ROOT=1 BERTH_TEST_CGROUP_V2=1 BERTH_BIN=$VM_BIN_DIR/berth (if shared)
#
# cgroups: this script starts in a cgroup of its own (berth-ci, see berth-vm-init). It
# moves itself into the leaf berth-ci/runner, enables every controller for berth-ci's
# children, and starts each test binary alone in a fresh berth-ci/<id>: the binary is
# the only process there, every controller is available to it and none is enabled yet,
# as for a systemd service with Delegate=yes. Like berth's daemon, a test that wants
# limits on child cgroups first moves itself into a leaf below its own cgroup. After
# the binary exits, anything left in berth-ci/<id> (processes or child cgroups) fails
# the entry: tests clean up what they create.
#
# Output goes to $VM_OUT_DIR/tests/<id>.log and is copied to the console; exit status and
# duration to $VM_OUT_DIR/results.tsv. The host judges the logs; this script's exit
# status is 0 only if every binary exited 0 and left nothing behind.
#
# usage: guest-run-tests.sh [PER-BINARY-TIMEOUT-SECONDS]
set -u
per_binary_timeout=${1:-900}
bin=${VM_BIN_DIR:?} out=${VM_OUT_DIR:?}

export BERTH_TEST_ROOT=1 BERTH_TEST_CGROUP_V2=1 RUST_BACKTRACE=1
if [[ -x $bin/berth ]]; then
  export BERTH_BIN=$bin/berth
  # Tests built on the host may also find berth through the absolute path cargo baked
  # into them (CARGO_BIN_EXE_berth): make that path exist here too.
  if [[ -s $bin/berth.host-path ]]; then
    host_path=$(cat "$bin/berth.host-path")
    mkdir -p "$(dirname "$host_path")" && ln -sf "$bin/berth" "$host_path"
  fi
fi

ci=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
mkdir -p "$ci/runner"
echo $$ > "$ci/runner/cgroup.procs"
for c in $(cat "$ci/cgroup.controllers"); do
  echo "+$c" > "$ci/cgroup.subtree_control"
done

# remove_tree CGROUP: kills what runs in CGROUP and below, removes it, deepest first.
remove_tree() {
  echo 1 > "$1/cgroup.kill" 2>/dev/null
  local i=0
  while grep -q '^populated 1' "$1/cgroup.events" 2>/dev/null && [[ $i -lt 100 ]]; do
    sleep 0.1; i=$((i + 1))
  done
  find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
}

mkdir -p "$out/tests"
: > "$out/results.tsv"
overall=0
while IFS=$'\t' read -r -a entry; do
  [[ ${#entry[@]} -ge 2 ]] || continue
  id=${entry[0]} exe=$bin/tests/${entry[1]} args=("${entry[@]:2}")
  workdir=/tmp/berth-ci/$id
  mkdir -p "$workdir"
  echo "=== $id: ${entry[1]} --test-threads=1 ${args[*]} (up $(cut -d' ' -f1 /proc/uptime) s)"
  start=$(date +%s%N)
  cg=$ci/$id
  mkdir "$cg"
  log=$out/tests/$id.log
  : > "$log"
  # timeout stays in the runner's cgroup; the shell moves itself, then becomes the test.
  # Output goes to a file, not a pipe: a process the test leaks must not hold us up.
  (cd "$workdir" && exec timeout -k 10 "$per_binary_timeout" \
    bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" \
    "$exe" --test-threads=1 "${args[@]}") < /dev/null > "$log" 2>&1 &
  test_pid=$!
  tail -n +1 -s 0.5 -F --pid="$test_pid" "$log" 2>/dev/null &
  tail_pid=$!
  wait "$test_pid"
  rc=$?
  wait "$tail_pid"
  ms=$((($(date +%s%N) - start) / 1000000))
  [[ $rc == 124 ]] && echo "=== $id: timed out after ${per_binary_timeout} s"
  # A test that starts daemons moves itself into the leaf <id>/runner first (a v2
  # cgroup with processes cannot delegate controllers); that leaf is the test's own,
  # empty once it has exited, and not a leak.
  rmdir "$cg/runner" 2>/dev/null
  leftover_procs=$(find "$cg" -name cgroup.procs -exec cat {} + | wc -l)
  leftover_cgroups=$(find "$cg" -mindepth 1 -type d -printf '%P ')
  if [[ $leftover_procs != 0 || -n $leftover_cgroups ]]; then
    echo "=== $id: FAILED to clean up: $leftover_procs processes, child cgroups [$leftover_cgroups]"
    [[ $rc == 0 ]] && rc=98
  fi
  remove_tree "$cg"
  echo "=== $id: exit status $rc in $ms ms"
  printf '%s\t%s\t%s\n' "$id" "$rc" "$ms" >> "$out/results.tsv"
  [[ $rc == 0 ]] || overall=1
done < "$bin/tests.list"
exit $overall
