#!/usr/bin/env bash
# Interleaved A/B runs of two natter release binaries: the same workloads, alternating A and B,
# a freshly started server for every run, server pinned to core 0 and the load generator to
# core 1. Prints one JSON line per run (binary, workload, figures) on stdout.
#
#   tools/bench/ab.sh OLD_BINARY NEW_BINARY [PAIRS]
#   PROTOCOL=ws tools/bench/ab.sh OLD_BINARY NEW_BINARY [PAIRS]
#
# Workloads (docs/benchmarks.md): fanout N=100 S=10 M=1000 (PAIRS pairs); idle 15,000
# connections held 2 s (not parked yet), parked 10,000 connections each in two rooms, read
# after 12 s (parked), and connect 20,000 registrations (PAIRS/2 pairs each, at least 2).
# PROTOCOL (native by default; ws, irc, ws-irc) is what the load generator speaks. Every run is
# bounded: the bench stops by itself, and the server is stopped by PID.
set -euo pipefail
a="$1"
b="$2"
pairs="${3:-6}"
protocol="${PROTOCOL:-native}"
door=tcp
[ "$protocol" = irc ] && door=irc
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ulimit -n 20000 2>/dev/null || true
source "$(dirname "$0")/lib.sh"

# Runs one workload against BINARY's server with BINARY's own load generator; prints JSON.
run() {
    local label="$1" bin="$2" workload="$3"
    shift 3
    rm -f "$work"/bench.db*
    natter_start "$bin" "$work" server "$door" --tcp 127.0.0.1:0 --irc 127.0.0.1:0 --udp off \
        --db "$work/bench.db" --msg-rate 0 --outbox 1000000
    local out
    out="$(taskset -c 1 "$bin" bench --addr "$ADDR" --server-pid "$PID" --protocol "$protocol" --json "$@")"
    server_stop "$PID"
    printf '{"binary":"%s","protocol":"%s","workload":"%s","report":%s}\n' "$label" "$protocol" "$workload" "$out"
}

for i in $(seq 1 "$pairs"); do
    # Alternate which goes first, so that a drift of the machine does not favour one.
    if [ $((i % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
    for who in $order; do
        bin="$a"; [ "$who" = B ] && bin="$b"
        run "$who" "$bin" fanout fanout -n 100 -s 10 -m 1000
    done
done
small=$(( pairs / 2 > 2 ? pairs / 2 : 2 ))
for i in $(seq 1 "$small"); do
    if [ $((i % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
    for who in $order; do
        bin="$a"; [ "$who" = B ] && bin="$b"
        run "$who" "$bin" idle --timeout 180 idle -n 15000 --hold 2
        run "$who" "$bin" parked --timeout 180 idle -n 10000 --room '#idle' --wait 12
        run "$who" "$bin" connect connect -n 20000 -c 64
    done
done
