#!/usr/bin/env bash
# Scale curves of one natter release binary (docs/benchmarks.md, "Scale curves"): how
# deliveries per server CPU-second and latency change with the members of a room and with the
# number of rooms, and what an idle connection costs at 1,000 to 15,000 of them. A freshly
# started server for every run, pinned to core 0, the load generator to core 1. Prints one
# JSON line per run on stdout, {"curve":..., "point":..., "workload":..., "load":...,
# "report":{...}} (report null when the run failed; the reason goes to stderr);
# tools/bench/curves_summary.py turns them into the tables of docs/benchmarks.md.
#
#   tools/bench/curves.sh BINARY [RUNS] > curves.jsonl
#   tools/bench/curves_summary.py curves.jsonl
#
# CURVES="members rooms memory" picks the curves (default: all three). SCALE=N divides every
# point's messages by N (the clients stay as many): SCALE=50 checks in a few minutes that
# every point runs, without measuring anything worth keeping. The senders are staggered
# (`fanout --stagger`: each starts its paced schedule a fraction of an interval after the
# previous one, a steady stream as from independent people); STAGGER=0 has them all send at
# the same instants instead, as plain `--rate` does.
#
# Workloads, all paced (a realistic load, far from saturating the server); each client is in
# the lobby, where every session starts, and in one bench room (#curve, or #curve-0 ...):
#   members  one room of N = 10, 100, 1,000, 10,000 members; 10 senders, 10 s of messages:
#            N=10 at 1,000 msg/s per sender (90,000 deliveries/s); N=100 at 1,000 msg/s
#            (990,000/s); N=1,000 at 100 msg/s (999,000/s); N=10,000 at 10 msg/s (999,900/s)
#   rooms    R = 1, 10, 100, 1,000 rooms of 10 members (N = 10 R), one sender per room, 10 s;
#            10,000 messages/s and 90,000 deliveries/s in total at every point (R=1: one
#            sender at 10,000 msg/s; R=1,000: 1,000 senders at 10 msg/s)
#   memory   idle -n 1,000, 10,000, 15,000, each connection in the lobby and #idle, measured
#            once they are parked (--wait 12: the server parks a connection idle for 10 s)
# Before sending, each fanout waits for the server to go quiet after the logins and joins
# (--settle), so that their tail is not counted against the deliveries.
# Each RUNS round runs every point once, so a drift of the machine touches every point alike.
# Every run is bounded (the bench's --timeout); every server started here is stopped by PID.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin="$(realpath "$1")"
runs="${2:-3}"
curves="${CURVES:-members rooms memory}"
scale="${SCALE:-1}"
stagger=--stagger
[ "${STAGGER:-1}" = 0 ] && stagger=""
work="$(mktemp -d)"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# 10,000 clients in one fanout and 15,000 idle connections: the server and the load generator
# each hold that many sockets (the limit is per process).
ulimit -n 20000 || { echo "cannot raise the file limit to 20,000 (ulimit -n 20000)" >&2; exit 1; }

# Starts the server on a free port; sets PID and ADDR once it listens. The flood limits and
# outbox caps are raised as for every benchmark in docs/benchmarks.md, and the per-address
# connection cap is off (loopback is exempt from it by default; said here so that no setting
# elsewhere can cap the 15,000). The cap on connections not yet logged in (a quarter of the
# file limit: 5,000) is far above the bench's 256 concurrent handshakes.
start() {
    rm -f "$work"/bench.db*
    natter_start "$bin" "$work" server tcp --db "$work/bench.db" --tcp 127.0.0.1:0 --udp off --irc off --msg-rate 0 \
        --outbox 1000000 --outbox-kib 4000000 --max-connections-per-address 0
}

stop() {
    server_stop "$PID"
    PID=""
}

# Runs one point: CURVE POINT TIMEOUT, then the bench's scenario and its options.
run() {
    local curve="$1" point="$2" timeout="$3"
    shift 3
    start
    local out
    if ! out="$(taskset -c 1 "$bin" bench --addr "$ADDR" --server-pid "$PID" --json --quiet \
        --timeout "$timeout" "$@" 2>"$work/bench.err")"; then
        echo "run failed ($curve $point: $*):" >&2
        cat "$work/bench.err" "$work/server.err" >&2
        out=null
    elif ! grep -q '"lost":0,' <<<"$out" && [ "$curve" != memory ]; then
        echo "deliveries lost ($curve $point: $*)" >&2
    fi
    stop
    printf '{"curve":"%s","point":%s,"workload":"%s","load":"%s","report":%s}\n' \
        "$curve" "$point" "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" "$out"
}

# Messages per sender for SECONDS at RATE messages per second, divided by SCALE (at least 1).
messages() {
    local m=$(( $1 * $2 / scale ))
    echo $(( m > 0 ? m : 1 ))
}

for _ in $(seq 1 "$runs"); do
    for curve in $curves; do
        case "$curve" in
            members)
                for point in "10 1000" "100 1000" "1000 100" "10000 10"; do
                    read -r n rate <<<"$point"
                    run members "$n" 120 --room '#curve' fanout -n "$n" -s 10 --rate "$rate" $stagger --settle 10 \
                        -m "$(messages 10 "$rate")"
                done
                ;;
            rooms)
                for rooms in 1 10 100 1000; do
                    rate=$(( 10000 / rooms ))
                    run rooms "$rooms" 120 --room '#curve' fanout -n $(( 10 * rooms )) -s "$rooms" \
                        --rooms "$rooms" --rate "$rate" $stagger --settle 10 -m "$(messages 10 "$rate")"
                done
                ;;
            memory)
                for n in 1000 10000 15000; do
                    run memory "$n" 180 --room '#idle' idle -n "$n" --hold 1 --wait 12
                done
                ;;
            *)
                echo "unknown curve $curve (members, rooms, memory)" >&2
                exit 2
                ;;
        esac
    done
done
