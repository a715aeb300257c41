#!/bin/sh
# berth quick start, offline: installs what berth needs, builds berth, builds a small
# image from the distribution's busybox-static package, starts `berth daemon` (unless
# one is running), loads the image and runs the ECS sample app from
# examples/sample-app.json, then fetches its page from the published port.
#
# usage (as root, from the repository): scripts/quickstart.sh
# Environment: BERTH_DATA_ROOT, BERTH_RUN_ROOT (default /var/lib/berth, /run/berth),
# BERTH_QUICKSTART_PROFILE (cargo profile, default release).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
profile=${BERTH_QUICKSTART_PROFILE:-release}
data_root=${BERTH_DATA_ROOT:-/var/lib/berth}
run_root=${BERTH_RUN_ROOT:-/run/berth}
export BERTH_DATA_ROOT="$data_root" BERTH_RUN_ROOT="$run_root"
say() { printf '\n==> %s\n' "$*"; }

say "installing system packages"
scripts/install-deps.sh
PATH="$HOME/.cargo/bin:$PATH"

say "building berth ($profile)"
if [ "$profile" = dev ]; then
  cargo build -p berth
  berth="$repo/target/debug/berth"
else
  cargo build --profile "$profile" -p berth
  berth="$repo/target/$profile/berth"
fi

say "building the example image from busybox-static"
mkdir -p "$data_root"
image="$data_root/examples-busybox.tar"
scripts/build-example-image.sh "$image"

if "$berth" info >/dev/null 2>&1; then
  say "a berth daemon is already running"
else
  say "starting berth daemon (log: $run_root/daemon.log)"
  mkdir -p "$run_root"
  nohup "$berth" daemon >"$run_root/daemon.log" 2>&1 &
  echo $! >"$run_root/quickstart-daemon.pid"
  i=0
  until "$berth" info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$(cat "$run_root/quickstart-daemon.pid")" 2>/dev/null; then
      echo "berth daemon did not start; its log:" >&2
      cat "$run_root/daemon.log" >&2
      exit 1
    fi
    sleep 0.1
  done
fi

say "loading the image"
"$berth" load -i "$image"

say "running examples/sample-app.json"
task=$("$berth" run -d examples/sample-app.json)
echo "task $task"
i=0
until "$berth" ps | grep -q "^$task .*RUNNING"; do
  i=$((i + 1))
  if [ $i -gt 300 ]; then
    "$berth" describe "$task" >&2 || true
    exit 1
  fi
  sleep 0.1
done
"$berth" ps

say "the sample app answers on http://127.0.0.1:8080/"
i=0
until page=$(busybox wget -q -O - http://127.0.0.1:8080/ 2>/dev/null); do
  i=$((i + 1))
  [ $i -gt 100 ] && { echo "no answer on 127.0.0.1:8080" >&2; "$berth" logs "$task" >&2; exit 1; }
  sleep 0.1
done
echo "$page"
echo "$page" | grep -q "Your application is now running" || { echo "unexpected page" >&2; exit 1; }

cat <<NEXT

berth is running the sample app as task $task.
  $berth ps                 # tasks
  $berth logs -f $task      # its log
  $berth stop $task         # stop it
  $berth credentials        # an AWS CLI profile for http://127.0.0.1:5450
NEXT
