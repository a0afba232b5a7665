#!/usr/bin/env bash
# Interleaved A/B runs of two natter release binaries: the same workloads, alternating A and B,
# a freshly started server for every run, server pinned to core 0 and the load generator to
# core 1. Prints one JSON line per run (binary, workload, figures) on stdout.
#
#   tools/bench/ab.sh OLD_BINARY NEW_BINARY [PAIRS]
#
# Workloads (docs/benchmarks.md): fanout N=100 S=10 M=1000 native (PAIRS pairs), idle 15,000
# connections and connect 20,000 registrations (PAIRS/2 pairs each, at least 2). Every run is
# bounded: the bench stops by itself, and the server is stopped by PID.
set -euo pipefail
a="$1"
b="$2"
pairs="${3:-6}"
port=7979
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ulimit -n 20000 2>/dev/null || true

# Starts BINARY as a server; sets PID once it listens.
start() {
    local bin="$1"
    # Removed first: the new server truncates it only once it runs, after the wait below began.
    rm -f "$work"/bench.db* "$work/server.out"
    taskset -c 0 "$bin" serve --tcp "127.0.0.1:$port" --udp off --irc off --db "$work/bench.db" \
        --msg-rate 0 --outbox 1000000 >"$work/server.out" 2>/dev/null &
    PID=$!
    for _ in $(seq 1 200); do
        grep -q "listening tcp" "$work/server.out" 2>/dev/null && return 0
        sleep 0.05 # polling the server's own "listening" line: this is a script, not a test
    done
    echo "server did not start" >&2
    kill "$PID"
    exit 1
}

stop() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
}

# Runs one workload against BINARY's server with BINARY's own load generator; prints JSON.
run() {
    local label="$1" bin="$2" workload="$3"
    shift 3
    start "$bin"
    local out
    out="$(taskset -c 1 "$bin" bench --addr "127.0.0.1:$port" --server-pid "$PID" --json "$@")"
    stop
    printf '{"binary":"%s","workload":"%s","report":%s}\n' "$label" "$workload" "$out"
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
        run "$who" "$bin" connect connect -n 20000 -c 64
    done
done
