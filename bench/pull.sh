#!/bin/sh
# Pull benchmark: berth's image service vs skopeo (and podman where it works), from a
# local docker-registry, an empty store each time, with `gzip -dc` of the same blob as
# the decompression floor.
#
#   bench/pull.sh [RUNS]        (default 10 runs per command; needs root for berth)
#
# Images (built here with umoci from the host's busybox-static, pushed with skopeo):
#   perf/big:v1      busybox + one layer holding 200 MiB of random data
#   perf/small20:v1  busybox + 100 KiB random, then 19 more layers of 100 KiB random
#
# Prints hyperfine's min/median/max per command and the median ratio berth/peer.
# Everything lives in a temporary directory that is removed at the end; the registry
# is stopped by its PID. Not a test: nothing here passes or fails on a time.
set -eu

RUNS=${1:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/busybox-layout.sh"
for tool in docker-registry skopeo umoci hyperfine jq gzip curl python3; do
  command -v "$tool" >/dev/null || { echo "pull.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

W=$(mktemp -d /tmp/bA-bench-pull.XXXXXX)
REG_PID=""
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

echo "== building the driver (release)"
(cd "$ROOT" && cargo build -q --release -p berth-runtime --example pull)
BERTH="$ROOT/target/release/examples/pull"

echo "== starting docker-registry"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$W/registry.yml" <<EOF
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $W/registry }, delete: { enabled: true }, cache: { blobdescriptor: inmemory } }
http: { addr: $REG }
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
i=0
until curl -sf "http://$REG/v2/" >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "registry did not start" >&2; cat "$W/registry.log" >&2; exit 1; }
  sleep 0.05
done

echo "== building images with umoci"
cd "$W"
busybox_layout img base /bin/busybox sh true cat

umoci unpack --image img:base big >/dev/null
head -c 200M /dev/urandom > big/rootfs/random.bin
umoci repack --image img:big big >/dev/null
rm -rf big

umoci unpack --image img:base s >/dev/null
for n in $(seq 1 20); do
  head -c 100K /dev/urandom > "s/rootfs/r$n.bin"
  umoci repack --refresh-bundle --image img:small20 s >/dev/null
done
rm -rf s
umoci gc --layout img >/dev/null

skopeo copy -q --dest-tls-verify=false oci:img:big "docker://$REG/perf/big:v1"
skopeo copy -q --dest-tls-verify=false oci:img:small20 "docker://$REG/perf/small20:v1"

BIG_BLOB=$(skopeo inspect --tls-verify=false --raw "docker://$REG/perf/big:v1" | jq -r '.layers | max_by(.size) | .digest')
curl -sf -o "$W/big.blob" "http://$REG/v2/perf/big/blobs/$BIG_BLOB"
LAYERS20=$(skopeo inspect --tls-verify=false --raw "docker://$REG/perf/small20:v1" | jq '.layers | length')
echo "big layer: $(stat -c %s "$W/big.blob") bytes ($BIG_BLOB); small20: $LAYERS20 layers"

# podman, with the settings perf-baselines.md found to work here; skipped if it fails.
PODMAN=""
if command -v podman >/dev/null; then
  P="podman --root $W/podman/root --runroot $W/podman/run --storage-driver overlay --cgroup-manager=cgroupfs --events-backend=file"
  if $P pull -q --tls-verify=false "$REG/perf/small20:v1" >/dev/null 2>&1; then
    PODMAN="$P"
    $P rmi -af >/dev/null 2>&1 || true
  else
    echo "(podman pull does not work here; skipping it)"
  fi
fi

run() { # name image
  name=$1 image=$2
  set -- \
    --prepare "rm -rf $W/berth" -n "berth $name" "$BERTH --data-root $W/berth --insecure-registry $REG $REG/perf/$image" \
    --prepare "rm -rf $W/skopeo-out" -n "skopeo $name" "skopeo copy -q --src-tls-verify=false docker://$REG/perf/$image oci:$W/skopeo-out:x"
  if [ -n "$PODMAN" ]; then
    set -- "$@" --prepare "$PODMAN rmi -af >/dev/null 2>&1 || true" -n "podman $name" "$PODMAN pull -q --tls-verify=false $REG/perf/$image"
  fi
  hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$W/$name.json" "$@" >/dev/null
  jq -r '.results[] | "\(.command)\t\(.min)\t\(.median)\t\(.max)"' "$W/$name.json"
}

echo "== timing ($RUNS runs each, seconds)"
{
  run big big:v1
  run small20 small20:v1
  hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$W/gzip.json" -n "gzip -dc (big blob)" "gzip -dc $W/big.blob > /dev/null" >/dev/null
  jq -r '.results[] | "\(.command)\t\(.min)\t\(.median)\t\(.max)"' "$W/gzip.json"
} > "$W/results.tsv"

printf '%-22s %8s %8s %8s\n' command min median max
awk -F'\t' '{ printf "%-22s %8.3f %8.3f %8.3f\n", $1, $2, $3, $4 }' "$W/results.tsv"
echo
echo "median ratio berth / peer (below 1: berth is faster)"
awk -F'\t' '
  { split($1, w, " "); tool = w[1]; set = w[2]; med[tool "," set] = $3; sets[set] = 1; tools[tool] = 1 }
  END {
    for (s in sets) for (t in tools) if (t != "berth" && t != "gzip" && ((t "," s) in med) && (("berth," s) in med))
      printf "  %-8s berth/%-7s %6.2f\n", s, t, med["berth," s] / med[t "," s]
    if (("gzip,-dc" in med) && ("berth,big" in med)) printf "  big      berth/gzip-dc %5.2f  (decompression floor)\n", med["berth,big"] / med["gzip,-dc"]
  }' "$W/results.tsv"
