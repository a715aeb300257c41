#!/bin/bash
# usage: scripts/ci-vm-stage.sh [--build-berth] [--keep]
#
# CI stage: runs the test binaries listed in scripts/vm/tests.txt inside a
# cgroup-v2-only Debian 12 VM (QEMU, software emulation), with the binaries this host
# already built. Run it as root after the host tests, from any directory.
#
#  1. installs the system packages (scripts/install-deps.sh);
#  2. restores the VM image from the cache, building it on a miss (scripts/vm/build-image.sh);
#  3. finds each listed test executable with `cargo test --no-run --message-format=json`
#     (dev profile, the workspace's target directory: the build CI already made, so this
#     compiles nothing new) and copies them, with target/debug/berth if present, into
#     a read-only share;
#  4. boots the VM and runs each binary with --test-threads=1 (scripts/vm/guest-run-tests.sh);
#  5. fails if the VM failed or timed out, if any binary failed, or if any entry ran no
#     test; prints a summary with timings.
#
#   --build-berth  run `cargo build -p berth` first (dev profile) so that a stale
#                  target/debug/berth is never tested; CI has just built it anyway
#   --keep         keep the work directory (kept anyway on failure)
#
# Environment: BERTH_VM_TESTS (list file, default scripts/vm/tests.txt),
# BERTH_VM_TIMEOUT (whole VM, default 1800 s), BERTH_VM_TEST_TIMEOUT (per binary,
# default 900 s), BERTH_VM_WORK (work directory, default a new one under $TMPDIR),
# BERTH_SKIP_INSTALL_DEPS=1, BERTH_PROFILE (cargo profile of the build to test, default
# dev; CI uses release), and those of build-image.sh and run-vm.sh
# (BERTH_CACHE_DIR, BERTH_VM_ACCEL, ...).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tests_file=${BERTH_VM_TESTS:-$root/scripts/vm/tests.txt}
vm_timeout=${BERTH_VM_TIMEOUT:-1800}
test_timeout=${BERTH_VM_TEST_TIMEOUT:-900}
build_berth=0 keep=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-berth) build_berth=1; shift ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--build-berth] [--keep]" >&2; exit 2 ;;
  esac
done

stage_start=$SECONDS
say() { echo "ci-vm-stage: $*"; }
fail() { echo "ci-vm-stage: FAILED: $*" >&2; exit 1; }
declare -A took=()

if [[ -n ${BERTH_VM_WORK:-} ]]; then
  work=$BERTH_VM_WORK
  rm -rf "${work:?}/bin" "${work:?}/out"
  mkdir -p "$work"
  keep=1
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/berth-vm-stage.XXXXXX")
fi
work=$(readlink -f "$work")
on_exit() {
  local rc=$?
  if [[ $rc != 0 || $keep == 1 ]]; then
    say "work directory kept: $work (console: $work/out/serial.log)"
  else
    rm -rf "$work"
  fi
}
trap on_exit EXIT

# 1. system packages
t=$SECONDS
if [[ ${BERTH_SKIP_INSTALL_DEPS:-0} != 1 ]]; then
  "$root/scripts/install-deps.sh"
fi
took[deps]=$((SECONDS - t))

# 2. VM image
t=$SECONDS
"$root/scripts/vm/build-image.sh" --out "$work/image"
took[image]=$((SECONDS - t))

# 3. test executables (and berth) into the read-only share
t=$SECONDS
cd "$root"
target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
profile=${BERTH_PROFILE:-dev}
profile_dir=$profile
[[ $profile == dev ]] && profile_dir=debug
mkdir -p "$work/bin/tests"
: > "$work/bin/tests.list"
n=0
while read -r -a fields; do
  [[ ${#fields[@]} -eq 0 || ${fields[0]} == \#* ]] && continue
  [[ ${#fields[@]} -ge 2 ]] || fail "$tests_file: '${fields[*]}': expected <package> <target> [args...]"
  pkg=${fields[0]} target=${fields[1]} args=("${fields[@]:2}")
  if [[ $target == --lib ]]; then select=(--lib); else select=(--test "$target"); fi
  if ! json=$(cargo test --profile "$profile" --no-run --message-format=json -p "$pkg" "${select[@]}" \
    < /dev/null 2> "$work/cargo.log"); then
    tail -n 40 "$work/cargo.log" >&2
    fail "cannot build the test executable of $pkg $target"
  fi
  mapfile -t exes < <(jq -r 'select(.reason == "compiler-artifact" and .profile.test == true
                                    and .executable != null) | .executable' <<<"$json")
  [[ ${#exes[@]} == 1 ]] || fail "$pkg $target: expected one test executable, cargo reported ${#exes[@]}"
  exe=$(basename "${exes[0]}")
  [[ -e $work/bin/tests/$exe ]] || cp -l "${exes[0]}" "$work/bin/tests/$exe" 2>/dev/null ||
    cp "${exes[0]}" "$work/bin/tests/$exe"
  n=$((n + 1))
  id=$(printf '%02d-%s-%s' "$n" "$pkg" "${target#--}")
  (IFS=$'\t'; echo "${id}"$'\t'"${exe}${args[*]:+$'\t'${args[*]}}") >> "$work/bin/tests.list"
  say "$id: ${exes[0]#"$root"/} ${args[*]}"
done < "$tests_file"
[[ $n -gt 0 ]] || fail "$tests_file lists no test"

if [[ $build_berth == 1 ]]; then
  cargo build --profile "$profile" -p berth 2> "$work/cargo.log" || { tail -n 40 "$work/cargo.log" >&2; fail "cargo build -p berth"; }
fi
berth=$target_dir/$profile_dir/berth
if [[ -x $berth ]]; then
  cp -l "$berth" "$work/bin/berth" 2>/dev/null || cp "$berth" "$work/bin/berth"
  echo "$berth" > "$work/bin/berth.host-path"
  say "berth: $berth (BERTH_BIN=/mnt/bin/berth in the VM)"
else
  say "no $berth: the VM tests run without BERTH_BIN"
fi
took[executables]=$((SECONDS - t))

# 4. the VM
t=$SECONDS
set +e
"$root/scripts/vm/run-vm.sh" --image "$work/image" --bin "$work/bin" --out "$work/out" \
  --timeout "$vm_timeout" "$root/scripts/vm/guest-run-tests.sh" "$test_timeout"
vm_rc=$?
set -e
took[vm]=$((SECONDS - t))

# 5. verdict
problems=()
case $vm_rc in
  0 | 1) ;;
  124) problems+=("the VM timed out after $vm_timeout s") ;;
  *) problems+=("the VM failed (run-vm.sh exit status $vm_rc)") ;;
esac
boot=$(sed -n 's/.*running \.vm\/run.*(up \([0-9.]*\) s).*/\1/p' "$work/out/serial.log" | head -n 1)
total_passed=0
echo
printf '%-44s %-6s %7s %7s %8s %9s\n' "in-VM test binary" result passed failed ignored seconds
while IFS=$'\t' read -r id _; do
  log=$work/out/tests/$id.log
  rc=$(awk -F'\t' -v id="$id" '$1 == id { print $2 }' "$work/out/results.tsv" 2>/dev/null || true)
  ms=$(awk -F'\t' -v id="$id" '$1 == id { print $3 }' "$work/out/results.tsv" 2>/dev/null || true)
  # libtest: "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ..."
  summary=$(grep -E '^test result: ' "$log" 2>/dev/null | tail -n 1 || true)
  passed=$(sed -n 's/.* \([0-9][0-9]*\) passed;.*/\1/p' <<<"$summary")
  failed=$(sed -n 's/.* \([0-9][0-9]*\) failed;.*/\1/p' <<<"$summary")
  ignored=$(sed -n 's/.* \([0-9][0-9]*\) ignored;.*/\1/p' <<<"$summary")
  result=ok
  if [[ -z $rc ]]; then
    result=notrun; problems+=("$id did not run")
  elif [[ $rc != 0 || $summary != "test result: ok."* ]]; then
    result=FAILED; problems+=("$id failed (exit status $rc)")
  elif [[ ${passed:-0} == 0 ]]; then
    result=EMPTY; problems+=("$id ran no test (check its filter in $tests_file)")
  fi
  total_passed=$((total_passed + ${passed:-0}))
  printf '%-44s %-6s %7s %7s %8s %9s\n' "$id" "$result" "${passed:--}" "${failed:--}" \
    "${ignored:--}" "$([[ -n $ms ]] && printf '%d.%03d' $((ms / 1000)) $((ms % 1000)) || echo -)"
done < "$work/bin/tests.list"
[[ $total_passed -gt 0 ]] || problems+=("no test passed in the VM")

echo
say "timings: deps ${took[deps]} s, image ${took[image]} s, test executables ${took[executables]} s," \
  "VM ${took[vm]} s (boot to first test ${boot:-?} s), stage $((SECONDS - stage_start)) s"
if [[ ${#problems[@]} -gt 0 ]]; then
  for p in "${problems[@]}"; do echo "ci-vm-stage: - $p" >&2; done
  fail "cgroup v2 VM stage"
fi
say "OK: $total_passed tests passed on cgroup v2"
