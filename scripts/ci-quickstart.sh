#!/bin/sh
# Runs the README's offline quick start (scripts/quickstart.sh) exactly as users do,
# but inside a fresh network namespace (a fake host) with temp data and run roots, so
# that its bridge, NAT rules and published port never touch this machine's network;
# then stops what it started and checks nothing is left.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
ns="bq$$"
tmp=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
data="$tmp/data"
run="$tmp/run"

cleanup() {
  rc=$?
  case ${BERTH_QUICKSTART_PROFILE:-release} in
    dev) berth="$repo/target/debug/berth" ;;
    *) berth="$repo/target/${BERTH_QUICKSTART_PROFILE:-release}/berth" ;;
  esac
  if [ -x "$berth" ] && [ -S "$run/berth.sock" ]; then
    for t in $(BERTH_DATA_ROOT=$data BERTH_RUN_ROOT=$run "$berth" ps 2>/dev/null | awk 'NR > 1 {print $1}'); do
      BERTH_DATA_ROOT=$data BERTH_RUN_ROOT=$run "$berth" stop --time 0 "$t" >/dev/null 2>&1 || true
    done
    # Wait until every task is STOPPED (cleaned up), not only no longer desired.
    i=0
    while BERTH_DATA_ROOT=$data BERTH_RUN_ROOT=$run "$berth" ps -a 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | grep -q . && [ $i -lt 300 ]; do
      sleep 0.1; i=$((i + 1))
    done
  fi
  if [ -f "$run/quickstart-daemon.pid" ]; then
    pid=$(cat "$run/quickstart-daemon.pid")
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  [ $rc = 0 ] || { echo "--- daemon log ---"; cat "$run/daemon.log" 2>/dev/null || true; }
  grep " $tmp" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
nsenter --net="/run/netns/$ns" -- env BERTH_DATA_ROOT="$data" BERTH_RUN_ROOT="$run" "$repo/scripts/quickstart.sh"
