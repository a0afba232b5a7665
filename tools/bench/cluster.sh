#!/usr/bin/env bash
# natter as a cluster on this machine: a throwaway PostgreSQL and nats-server, 1 to 3 natter
# nodes (release BINARY), and `natter bench fanout` with its clients spread over the nodes.
# Everything of the server side (the nodes, PostgreSQL, NATS) is pinned to core 0 and the
# load generator to core 1. Prints one JSON line per run on stdout: the bench's report, the
# CPU time the nodes, PostgreSQL (all its processes) and NATS used during it, and the setup.
#
#   tools/bench/cluster.sh BINARY [RUNS]
#
# SETUPS="2 3" runs only those full-speed setups (and no latency runs).
# PACED=1 runs only the realistic paced workload of tools/bench/paced.sh (fanout -n 100 -s 10
# -m 1000 --rate 1000) on single, 1 node and 2 nodes (clients spread over them).
#
# Setups, each RUNS times, interleaved (docs/benchmarks.md, "Cluster"):
#   single    one natter on SQLite, no cluster (the baseline)
#   nodes=N   N natter nodes on PostgreSQL + NATS, the clients spread over them (N = 1, 2, 3)
# Workloads: fanout -n 100 -s 10 -m 2000 (full speed); and for latency, paced: -n 2 -s 1
# -m 2000 --rate 500 with both clients on one node, then on two nodes (every delivery crosses).
# Every run is bounded (--timeout); every process started here is stopped by PID.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin="$(realpath "$1")"
runs="${2:-2}"
work="$(mktemp -d)"
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${pgbin:-}" ] && runuser -u nobody -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL with its defaults (fsync on, synchronous_commit on: an ack means stored).
pgport="$(free_port)"
mkdir -p "$work/pg" "$work/pgsock"
chown nobody "$work/pg" "$work/pgsock"
runuser -u nobody -- "$pgbin/initdb" -D "$work/pg" -U natter --auth=trust >/dev/null
runuser -u nobody -- taskset -c 0 "$pgbin/pg_ctl" -D "$work/pg" -w -l "$work/pgsock/pg.log" \
    -o "-p $pgport -k $work/pgsock -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
pgpid="$(head -1 "$work/pg/postmaster.pid")"

natsport="$(free_port)"
taskset -c 0 nats-server -a 127.0.0.1 -p "$natsport" >"$work/nats.log" 2>&1 &
natspid=$!
pids+=("$natspid")
# nats-server is ready when it greets a client.
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$natsport" && head -c 4 <&3 | grep -q INFO) 2>/dev/null && break
    sleep 0.05 # polling the bus's greeting: a script, not a test
done

# CPU ticks (user + system) of a process and its children that ended.
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# ... of PostgreSQL: the postmaster and every backend.
pg_ticks() {
    local total=0 p
    for p in "$pgpid" $(pgrep -P "$pgpid" || true); do total=$((total + $(ticks "$p"))); done
    echo "$total"
}
hz="$(getconf CLK_TCK)"

db_n=0
# Starts natter: `single` on SQLite, or node NAME on a fresh database DB; sets STARTED (PID)
# and ADDR.
start_natter() {
    local name="$1" db="$2"
    if [ "$name" = single ]; then
        natter_start "$bin" "$work" "$name" tcp --tcp 127.0.0.1:0 --udp off --irc off --http off \
            --db "$work/single.db" --msg-rate 0 --outbox 1000000 --outbox-kib 4000000
    else
        natter_start "$bin" "$work" "$name" tcp --tcp 127.0.0.1:0 --udp off --irc off --http off \
            --db "$db" --cluster "nats://127.0.0.1:$natsport" --node-name "$name" \
            --msg-rate 0 --outbox 1000000 --outbox-kib 4000000
    fi
    STARTED=$PID
    pids+=("$STARTED")
}

# One run of SETUP (single, or a number of nodes) with the bench arguments after it; NODES_FOR
# says which nodes the clients use (all, or "one" for the same-node latency run).
run() {
    local setup="$1" spread="$2" workload="$3"
    shift 3
    local node_pids=() addrs=() db
    rm -f "$work"/single.db*
    if [ "$setup" = single ]; then
        start_natter single ""
        node_pids+=("$STARTED")
        addrs+=("$ADDR")
    else
        db_n=$((db_n + 1))
        db="postgres://natter@127.0.0.1:$pgport/bench$db_n"
        "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U natter "bench$db_n"
        for i in $(seq 1 "$setup"); do
            start_natter "n$i" "$db"
            node_pids+=("$STARTED")
            addrs+=("$ADDR")
        done
    fi
    local use
    case "$spread" in
        all) use="$(IFS=,; echo "${addrs[*]}")" ;;
        one) use="${addrs[0]}" ;;
    esac
    local pg0 nats0 pg1 nats1 out
    pg0="$(pg_ticks)"
    nats0="$(ticks "$natspid")"
    out="$(taskset -c 1 "$bin" bench --addr "$use" --server-pid "$(IFS=,; echo "${node_pids[*]}")" \
        --json --quiet "$@")" || { echo "run failed ($setup $workload)" >&2; cat "$work"/*.err >&2; out=null; }
    if [ "$out" != null ] && ! grep -q '"lost":0,' <<<"$out"; then
        echo "deliveries lost ($setup $workload); the nodes said:" >&2
        grep -hv " INFO " "$work"/*.err | tail -n 40 >&2 || true
    fi
    pg1="$(pg_ticks)"
    nats1="$(ticks "$natspid")"
    for p in "${node_pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
    printf '{"setup":"%s","spread":"%s","workload":"%s","pg_cpu_s":%s,"nats_cpu_s":%s,"load":"%s","report":%s}\n' \
        "$setup" "$spread" "$workload" \
        "$(awk -v a="$pg0" -v b="$pg1" -v hz="$hz" 'BEGIN{print (b-a)/hz}')" \
        "$(awk -v a="$nats0" -v b="$nats1" -v hz="$hz" 'BEGIN{print (b-a)/hz}')" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$out"
}

if [ -n "${PACED:-}" ]; then
    for _ in $(seq 1 "$runs"); do
        for setup in single 1 2; do
            run "$setup" all paced990k --timeout 60 fanout -n 100 -s 10 -m 1000 --rate 1000
        done
    done
    exit 0
fi
for _ in $(seq 1 "$runs"); do
    for setup in ${SETUPS:-single 1 2 3}; do
        run "$setup" all fanout --timeout 120 fanout -n 100 -s 10 -m 2000
    done
done
[ -n "${SETUPS:-}" ] && exit 0
for _ in $(seq 1 "$runs"); do
    run single all paced --timeout 60 fanout -n 2 -s 1 -m 2000 --rate 500
    run 2 one paced-same-node --timeout 60 fanout -n 2 -s 1 -m 2000 --rate 500
    run 2 all paced-cross-node --timeout 60 fanout -n 2 -s 1 -m 2000 --rate 500
done
