#!/usr/bin/env bash
# Realistic paced load, in the same minutes, over every door and beside ngircd: 100 clients in
# one room, 10 of them sending 1,000 messages a second each (990,000 deliveries a second), a
# freshly started server for every run, server pinned to core 0 and the load generator to
# core 1. Prints one JSON line per run on stdout ({"door":..., "report":{...}}), then a
# Markdown table of the ranges on stderr.
#
#   tools/bench/paced.sh BINARY [RUNS] [WORKLOAD...]
#
# Doors (DOORS="native irc ngircd tls ws" by default): natter's native JSON frames, natter's
# IRC door, ngircd 26 (Debian's package, tools/bench/ngircd.conf) over IRC, native over TLS
# (`natter cert`'s ECDSA P-256), native over WebSocket. WORKLOAD defaults to
# `fanout -n 100 -s 10 -m 1000 --rate 1000`. The cluster's figure for the same workload is
# tools/bench/cluster.sh with PACED=1. Every run is bounded (--timeout) and every process
# started here is stopped by PID.
set -euo pipefail
bin="$(realpath "$1")"
runs="${2:-3}"
shift $(($# < 2 ? $# : 2))
workload=("$@")
[ ${#workload[@]} -eq 0 ] && workload=(fanout -n 100 -s 10 -m 1000 --rate 1000)
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
work="$(mktemp -d)"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true
"$bin" cert --host 127.0.0.1 --cert "$work/cert.pem" --key "$work/key.pem" >/dev/null

# Starts the server for DOOR; sets PID and ADDR once it listens.
start() {
    local door="$1"
    if [ "$door" = ngircd ]; then
        rm -f "$work/server.out"
        taskset -c 0 ngircd -n -f "$here/ngircd.conf" >"$work/server.out" 2>&1 &
        PID=$!
        ADDR=127.0.0.1:6699
        for _ in $(seq 1 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/6699") 2>/dev/null && return 0
            sleep 0.05 # polling the server's port: a script, not a test
        done
        echo "ngircd did not start" >&2
        exit 1
    fi
    local tls=() which=tcp
    [ "$door" = tls ] && tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --irc-tls off)
    [ "$door" = irc ] && which=irc
    rm -f "$work"/bench.db*
    natter_start "$bin" "$work" server "$which" --db "$work/bench.db" --tcp 127.0.0.1:0 --irc 127.0.0.1:0 --udp off --msg-rate 0 \
        --outbox 1000000 --outbox-kib 4000000 "${tls[@]}"
}

stop() {
    server_stop "$PID"
    PID=""
}

run() {
    local door="$1" flags=()
    case "$door" in
        native) flags=(--protocol native) ;;
        irc | ngircd) flags=(--protocol irc --room '#bench') ;;
        tls) flags=(--protocol native --tls) ;;
        ws) flags=(--protocol ws) ;;
    esac
    start "$door"
    local out
    out="$(taskset -c 1 "$bin" bench --addr "$ADDR" --server-pid "$PID" --timeout 60 --json --quiet \
        "${flags[@]}" "${workload[@]}")" || out=null
    stop
    printf '{"door":"%s","load":"%s","report":%s}\n' "$door" "$(cut -d' ' -f1-3 /proc/loadavg)" "$out"
}

for _ in $(seq 1 "$runs"); do
    for door in ${DOORS:-native irc ngircd tls ws}; do
        run "$door"
    done
done | tee "$work/runs.jsonl"

python3 - "$work/runs.jsonl" <<'EOF' >&2
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["door"], []).append(r["report"])
def span(xs, fmt):
    return fmt(min(xs)) if min(xs) == max(xs) else f"{fmt(min(xs))}–{fmt(max(xs))}"
print("| door | runs | deliveries per server CPU-s | p50 ms | p99 ms | lost |")
print("|---|---|---|---|---|---|")
for door, reps in rows.items():
    ok = [r for r in reps if r]
    if not ok:
        print(f"| {door} | {len(reps)} | failed | | | |")
        continue
    per = [r["deliveries_per_server_sched_cpu_s"] / 1e6 for r in ok]
    p50 = [r["latency"]["p50_ms"] for r in ok]
    p99 = [r["latency"]["p99_ms"] for r in ok]
    lost = sum(r["lost"] for r in ok)
    print(f"| {door} | {len(ok)} | {span(per, lambda x: f'{x:.2f}M')} | {span(p50, lambda x: f'{x:.2f}')} | {span(p99, lambda x: f'{x:.2f}')} | {lost} |")
EOF
