# Shared by the benchmark scripts (sourced, not run): a natter server started pinned to core 0
# and waited for by the line it prints once it listens, and stopped by PID.

# natter_start BINARY WORKDIR DOOR [SERVE OPTIONS...]: starts `BINARY serve` on a fresh
# database in WORKDIR, its output in WORKDIR/server.out and errors in WORKDIR/server.err; sets
# PID, and ADDR to the address DOOR (tcp, irc) listens on. Exits the script, with the server's
# errors, when it does not listen within 10 s.
natter_start() {
    local bin="$1" work="$2" door="$3"
    shift 3
    rm -f "$work"/bench.db* "$work/server.out" "$work/server.err"
    taskset -c 0 "$bin" serve --db "$work/bench.db" "$@" >"$work/server.out" 2>"$work/server.err" &
    PID=$!
    for _ in $(seq 1 200); do
        # The file may not exist yet (the background shell opens it when it gets to run): a
        # failed sed must not end a script under pipefail.
        ADDR="$(sed -n "s/^listening $door //p" "$work/server.out" 2>/dev/null | head -1 || true)"
        [ -n "$ADDR" ] && return 0
        sleep 0.05 # polling the server's own "listening" line: a script, not a test
    done
    echo "the server did not start:" >&2
    cat "$work/server.err" >&2
    exit 1
}

# server_stop PID: stops a server started here, and waits for it to end.
server_stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
