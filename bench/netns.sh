#!/usr/bin/env bash
# Benchmark: set up and tear down one task's network — namespace + veth pair on the bridge +
# address + default route + NAT + one published port — with
#   * berth's netlink code (netns/examples/netns_bench.rs), both veth teardown modes, and with
#     5 ms idle between cycles, with and without a spare namespace made in that time;
#   * the same steps done with `ip` and `nft` commands (one process per step, and batched);
#   * podman's network stack, netavark 1.4 (what `podman run` calls per container), iptables
#     backend, with the namespace created the way podman does before calling it.
# Each variant runs in its own throwaway network + mount namespace (a fake host), so the
# machine's own network is never touched. Prints medians side by side, the ratio to berth, and
# whether the cost grows with the number of live tasks (first 20 vs last 20 of LIVE).
#
# Usage: bench/netns.sh            (as root; N=200 cycles, LIVE=200 live tasks)
#        N=50 LIVE=100 bench/netns.sh
set -euo pipefail

N=${N:-200}
LIVE=${LIVE:-200}
NETAVARK=${NETAVARK:-/usr/lib/podman/netavark}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

# ---------------------------------------------------------------------------------------------
# helpers, used inside the fake hosts

# stats NAME < microseconds-one-per-line  ->  ROW NAME n median p90 first20 last20 (ms)
stats() {
    awk -v name="$1" '
        function med(a, lo, hi,   n, i, j, t, b) {
            n = 0; for (i = lo; i <= hi; i++) b[++n] = a[i]
            for (i = 2; i <= n; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j + 1] = b[j]; b[j + 1] = t }
            return b[int(n / 2) + 1]
        }
        { v[NR] = $1 / 1000 }
        END {
            n = NR; k = (n < 20) ? n : 20
            for (i = 1; i <= n; i++) s[i] = v[i]
            for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
            p90 = int(n * 9 / 10) + 1; if (p90 > n) p90 = n
            printf "ROW %s %d %.3f %.3f %.3f %.3f\n", name, n, s[int(n / 2) + 1], s[p90], med(v, 1, k), med(v, n - k + 1, n)
        }'
}


# the bridge, forwarding and berth's nft table, as berth would leave them (not timed)
host_prep() {
    ip link set lo up
    mount -t tmpfs bB-run /run                       # `ip netns` state stays in this namespace
    ip link add berth0 type bridge
    ip addr add 10.229.0.1/20 dev berth0
    ip link set berth0 up
    echo 1 > /proc/sys/net/ipv4/ip_forward
    echo 1 > /proc/sys/net/ipv4/conf/berth0/route_localnet
    nft -f - <<'EOF'
table ip berth {
    map publish { type inet_proto . inet_service : ipv4_addr . inet_service; }
    chain guard { type filter hook prerouting priority raw; policy accept;
        iifname != "lo" ip daddr 127.0.0.0/8 counter drop; }
    chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
    chain output { type nat hook output priority -100; policy accept;
        ip daddr 127.0.0.1 dnat ip to meta l4proto . th dport map @publish; }
    chain postrouting { type nat hook postrouting priority srcnat; policy accept;
        ip saddr 10.229.0.0/20 oifname != "berth0" masquerade
        ip saddr 127.0.0.0/8 oifname "berth0" masquerade; }
    chain forward { type filter hook forward priority filter; policy accept;
        oifname "berth0" ct state established,related accept
        oifname "berth0" ct status dnat accept
        oifname "berth0" iifname != "berth0" drop; }
}
EOF
}

# task I at address 10.229.A.B with published port P, step by step
ip_setup() {
    local i=$1 ip=$2 port=$3
    ip netns add "t$i"
    ip link add "bth$i" master berth0 up type veth peer name eth0 netns "t$i"
    ip -n "t$i" link set lo up
    ip -n "t$i" link set eth0 up
    ip -n "t$i" addr add "$ip/20" dev eth0
    ip -n "t$i" route add default via 10.229.0.1
    nft add element ip berth publish "{ tcp . $port : $ip . $port }"
}
ip_teardown() {
    local i=$1 port=$3
    nft delete element ip berth publish "{ tcp . $port }"
    ip link set "bth$i" nomaster down                # berth's default: detach now, destroyed with the ns
    ip netns del "t$i"
}
# the same, batched: 3 processes to set up, 2 to tear down
batch_setup() {
    local i=$1 ip=$2 port=$3
    printf 'netns add t%s\nlink add bth%s master berth0 up type veth peer name eth0 netns t%s\n' "$i" "$i" "$i" | ip -batch -
    printf 'link set lo up\nlink set eth0 up\naddr add %s/20 dev eth0\nroute add default via 10.229.0.1\n' "$ip" \
        | ip -n "t$i" -batch -
    nft add element ip berth publish "{ tcp . $port : $ip . $port }"
}
batch_teardown() {
    local i=$1 port=$3
    nft delete element ip berth publish "{ tcp . $port }"
    printf 'link set bth%s nomaster down\nnetns del t%s\n' "$i" "$i" | ip -batch -
}

nv_opts() {
    local i=$1 ip=$2 port=$3 kind
    case ${i:0:1} in c) kind=1 ;; l) kind=2 ;; w) kind=3 ;; *) kind=4 ;; esac
    printf '{"container_id":"%064d","container_name":"b%s","port_mappings":[{"host_ip":"127.0.0.1","container_port":%s,"host_port":%s,"range":1,"protocol":"tcp"}],"networks":{"podman":{"static_ips":["%s"],"interface_name":"eth0"}},"network_info":{"podman":{"name":"podman","id":"2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9","driver":"bridge","network_interface":"podman0","subnets":[{"subnet":"10.229.0.0/20","gateway":"10.229.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"host-local"}}}}' \
        "$kind${i//[!0-9]/}" "$i" "$port" "$port" "$ip"
}
nv_setup() {
    local i=$1
    ip netns add "n$i"                              # podman creates the namespace, then calls netavark
    nv_opts "$@" | "$NETAVARK" --config "$WORK/nv" setup "/run/netns/n$i" > /dev/null
}
nv_teardown() {
    local i=$1
    nv_opts "$@" | "$NETAVARK" --config "$WORK/nv" teardown "/run/netns/n$i"
    ip netns del "n$i"
}

# run_variant NAME SETUP TEARDOWN : N cycles of one task, then LIVE tasks up and down
run_variant() {
    # timestamps come from $EPOCHREALTIME (microseconds), which costs no fork
    local name=$1 setup=$2 teardown=$3 s e i
    for i in 1 2 3; do "$setup" "w$i" 10.229.1.1 8080; "$teardown" "w$i" 10.229.1.1 8080; done
    for ((i = 0; i < N; i++)); do
        s=${EPOCHREALTIME/./}
        "$setup" "c$i" 10.229.1.2 8080
        "$teardown" "c$i" 10.229.1.2 8080
        e=${EPOCHREALTIME/./}
        echo $((e - s))
    done | stats "$name/cycle"
    for ((i = 0; i < LIVE; i++)); do
        s=${EPOCHREALTIME/./}
        "$setup" "l$i" "10.229.$((2 + i / 250)).$((2 + i % 250))" $((10000 + i))
        e=${EPOCHREALTIME/./}
        echo $((e - s))
    done > "$WORK/$name.up"
    for ((i = 0; i < LIVE; i++)); do
        s=${EPOCHREALTIME/./}
        "$teardown" "l$i" "10.229.$((2 + i / 250)).$((2 + i % 250))" $((10000 + i))
        e=${EPOCHREALTIME/./}
        echo $((e - s))
    done > "$WORK/$name.down"
    stats "$name/live-setup" < "$WORK/$name.up"
    stats "$name/live-teardown" < "$WORK/$name.down"
}

if [ "${1:-}" = "--inside" ]; then
    WORK=$3
    case $2 in
        ip)
            host_prep
            run_variant ip-nft ip_setup ip_teardown
            run_variant ip-nft-batched batch_setup batch_teardown
            ;;
        netavark)
            ip link set lo up
            mount -t tmpfs bB-run /run
            # an anchor container keeps podman's bridge up, as a running podman host would
            nv_setup anchor 10.229.15.250 9999
            run_variant netavark nv_setup nv_teardown
            ;;
    esac
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# driver

[ "$(id -u)" = 0 ] || { echo "bench/netns.sh: run as root" >&2; exit 1; }
for t in ip nft unshare; do command -v $t > /dev/null || { echo "bench/netns.sh: $t missing" >&2; exit 1; }; done
(cd "$ROOT" && cargo build --release -q -p berth-netns --example netns_bench)
BIN=$ROOT/target/release/examples/netns_bench
WORK=$(mktemp -d /tmp/bBbench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROWS=$WORK/rows

echo "netns benchmark: N=$N cycles, LIVE=$LIVE live tasks; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)" >&2
"$BIN" "$WORK/berth" "$N" "$LIVE" detach >> "$ROWS"
"$BIN" "$WORK/berth-del" "$(( N < 50 ? N : 50 ))" 0 delete >> "$ROWS"
unshare --net --mount --propagation private bash "$0" --inside ip "$WORK" >> "$ROWS"
if [ -x "$NETAVARK" ] && command -v iptables > /dev/null; then
    unshare --net --mount --propagation private bash "$0" --inside netavark "$WORK" >> "$ROWS" \
        || echo "netavark run failed; its rows are missing" >&2
else
    echo "netavark or iptables not installed: podman's network stack not measured" >&2
fi

awk '
    $1 == "ROW" { split($2, p, "/"); v = p[1]; s = p[2]; med[v, s] = $4; p90[v, s] = $5; f[v, s] = $6; l[v, s] = $7
                  if (!(v in seen)) { seen[v] = 1; order[++n] = v } }
    END {
        base = med["berth-detach", "cycle"]
        printf "\n%-20s %10s %8s %9s   %-22s %-22s\n", "variant", "cycle ms", "p90", "x berth", "live setup 1st20->last20", "live teardown 1st20->last20"
        printf "%-20s %10s %8s %9s   %-22s %-22s\n", "", "(median)", "", "", "(median ms)", "(median ms)"
        for (i = 1; i <= n; i++) {
            v = order[i]
            up = ((v, "live-setup") in med) ? sprintf("%.2f -> %.2f", f[v, "live-setup"], l[v, "live-setup"]) : "-"
            dn = ((v, "live-teardown") in med) ? sprintf("%.2f -> %.2f", f[v, "live-teardown"], l[v, "live-teardown"]) : "-"
            printf "%-20s %10.2f %8.2f %9.1f   %-24s %-24s\n", v, med[v, "cycle"], p90[v, "cycle"], med[v, "cycle"] / base, up, dn
        }
        printf "\ncycle = set up one task (namespace, veth on the bridge, address, lo/eth0 up, default route,\n"
        printf "one published port in berth'"'"'s nft map) and tear it down again; berth-delete deletes the host veth\n"
        printf "synchronously instead of detaching it. +idle and +spare: 5 ms idle (untimed) before each\n"
        printf "cycle; +spare asks for a spare namespace then, as the daemon does once a task has begun, and\n"
        printf "the setup binds it instead of making one. Ratios are to berth-detach.\n"
    }' "$ROWS"
