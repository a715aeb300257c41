#!/bin/sh
# berth's whole test suite, as root on Debian 12 / Ubuntu 24.04: lint, one release
# build that every test uses, unit and end-to-end tests on this host (cgroup v1 or v2),
# the offline quick start exactly as the README shows it (inside a fake-host network
# namespace), and the cgroup-v2 VM stage. Fails on any failure.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [ "$(id -u)" != 0 ]; then
  echo "test.sh: run as root (the tests create namespaces, cgroups and mounts)" >&2
  exit 1
fi
stage() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }
start=$(date +%s)

stage "installing dependencies"
scripts/install-deps.sh
PATH="$HOME/.cargo/bin:$PATH"
export BERTH_TEST_ROOT=1

stage "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked --release -- -D warnings

stage "building (release, once for every test)"
cargo build --workspace --all-targets --locked --release

stage "unit and end-to-end tests"
cargo test --workspace --locked --release --no-fail-fast

stage "offline quick start (README), in a fake host"
scripts/ci-quickstart.sh

stage "cgroup v2 VM"
BERTH_PROFILE=release scripts/ci-vm-stage.sh

stage "all tests passed"
