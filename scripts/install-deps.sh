#!/bin/sh
# Installs everything berth needs to build, run and test on Debian 12 / Ubuntu 24.04, as root.
# The one place system packages are listed. Idempotent.
set -eu

PACKAGES="
  build-essential pkg-config libseccomp-dev libelf-dev zlib1g-dev
  iproute2 nftables
  busybox-static docker-registry skopeo umoci jq sqlite3
  qemu-system-x86 debootstrap debian-archive-keyring zstd e2fsprogs
  python3 python3-pip python3-venv
"

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root" >&2
  exit 1
fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  # Another apt user may hold the lock for a while on a shared machine: wait for it.
  i=0
  while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi

# Rust toolchain: the machine's rustup toolchain if present, otherwise install one.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
  else
    apt-get install -y -qq --no-install-recommends curl ca-certificates
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  fi
fi

# The API tests drive berth with the real AWS CLI and boto3 (from PyPI). Debian 12's
# python3 is "externally managed", hence the fallback flag.
if ! python3 -c 'import boto3, botocore' >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
  python3 -m pip install --quiet boto3 awscli ||
    python3 -m pip install --quiet --break-system-packages boto3 awscli
fi
