# Shared by the benchmark scripts (sourced, not run): a natter server started pinned to core 0
# and waited for by the line it prints once it listens, and stopped by PID.

# natter_start BINARY WORKDIR NAME DOOR [SERVE OPTIONS...]: starts `BINARY serve` with the
# options (a `--db` among them), its output in WORKDIR/NAME.out and its errors in
# WORKDIR/NAME.err; sets PID, and ADDR to the address DOOR (tcp, irc) listens on. Exits the
# script, with the server's errors, when it does not listen within 10 s.
natter_start() {
    local bin="$1" work="$2" name="$3" door="$4"
    shift 4
    rm -f "$work/$name.out" "$work/$name.err"
    taskset -c 0 "$bin" serve "$@" >"$work/$name.out" 2>"$work/$name.err" &
    PID=$!
    for _ in $(seq 1 200); do
        # The file may not exist yet (the background shell opens it when it gets to run): a
        # failed sed must not end a script under pipefail.
        ADDR="$(sed -n "s/^listening $door //p" "$work/$name.out" 2>/dev/null | head -1 || true)"
        [ -n "$ADDR" ] && return 0
        sleep 0.05 # polling the server's own "listening" line: a script, not a test
    done
    echo "natter $name did not start:" >&2
    cat "$work/$name.err" >&2
    exit 1
}

# server_stop PID: stops a server started here, and waits for it to end.
server_stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
