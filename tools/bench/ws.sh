#!/usr/bin/env bash
# WebSocket against native TCP, interleaved: the same natter release binary, the same
# workloads, alternating native (A) and WebSocket (B) runs, a freshly started server for every
# run, server pinned to core 0 and the load generator to core 1. Prints one JSON line per run
# on stdout, in the format of tools/bench/ab.sh (so tools/bench/ab_summary.py summarises it:
# its column A is native, B is WebSocket).
#
#   tools/bench/ws.sh BINARY [PAIRS] [IDLE_CONNECTIONS]
#
# Workloads (docs/benchmarks.md, "WebSocket"): fanout N=100 S=10 M=5000 (PAIRS pairs), idle
# IDLE_CONNECTIONS connections (default 5,000; PAIRS/2 pairs, at least 2). Every run is
# bounded: the bench stops by itself (--timeout), and the server is stopped by PID.
set -euo pipefail
bin="$1"
pairs="${2:-3}"
idle="${3:-5000}"
port=7979
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ulimit -n 20000 2>/dev/null || true

# Starts the server; sets PID once it listens.
start() {
    # Removed first: the new server truncates it only once it runs, after the wait below began.
    rm -f "$work"/bench.db* "$work/server.out"
    taskset -c 0 "$bin" serve --tcp "127.0.0.1:$port" --udp off --irc off --db "$work/bench.db" \
        --msg-rate 0 --outbox 1000000 --outbox-kib 4000000 >"$work/server.out" 2>"$work/server.err" &
    PID=$!
    for _ in $(seq 1 200); do
        grep -q "listening tcp" "$work/server.out" 2>/dev/null && return 0
        sleep 0.05 # polling the server's own "listening" line: this is a script, not a test
    done
    echo "server did not start" >&2
    cat "$work/server.err" >&2
    kill "$PID"
    exit 1
}

stop() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
}

# Runs one workload with PROTOCOL (native = A, ws = B) against a fresh server; prints JSON.
run() {
    local protocol="$1" workload="$2"
    shift 2
    local label=A
    [ "$protocol" = ws ] && label=B
    start
    local out
    if ! out="$(taskset -c 1 "$bin" bench --addr "127.0.0.1:$port" --server-pid "$PID" --protocol "$protocol" \
        --json --quiet "$@")"; then
        echo "run failed ($protocol $workload); server's stderr:" >&2
        cat "$work/server.err" >&2
        stop
        return 0
    fi
    stop
    printf '{"binary":"%s","protocol":"%s","workload":"%s","load":"%s","report":%s}\n' \
        "$label" "$protocol" "$workload" "$(cut -d' ' -f1-3 /proc/loadavg)" "$out"
}

for i in $(seq 1 "$pairs"); do
    # Alternate which goes first, so that a drift of the machine does not favour one.
    if [ $((i % 2)) -eq 1 ]; then order="native ws"; else order="ws native"; fi
    for protocol in $order; do
        run "$protocol" fanout --timeout 120 fanout -n 100 -s 10 -m 5000
    done
done
small=$(( pairs / 2 > 2 ? pairs / 2 : 2 ))
for i in $(seq 1 "$small"); do
    if [ $((i % 2)) -eq 1 ]; then order="native ws"; else order="ws native"; fi
    for protocol in $order; do
        run "$protocol" idle --timeout 180 idle -n "$idle" --hold 1
    done
done
