#!/usr/bin/env python3
"""Password guessing against a running natter server, for a bounded time: how many guesses the
server checks per second (answered "wrong password") and how many it holds back unchecked
(answered "too many wrong passwords").

    tools/guess.py hello --addr 127.0.0.1:7979 --seconds 30
    tools/guess.py pass  --addr 127.0.0.1:7980 --seconds 30
    tools/guess.py oper  --addr 127.0.0.1:7980 --seconds 30

`hello`: native `hello` frames with wrong passwords on one connection at a time (reconnecting
when the server ends it for too many invalid requests), 64 in flight. `pass`: IRC registrations
with a wrong `PASS`, `--conns` at once (the server closes each after its answer). `oper`: wrong
`OPER boss guess` lines on one registered IRC connection, 64 in flight. Start the server with
`--password sesame` for `hello` and `pass`, `--oper boss:secret` for `oper`. Every loop ends
after `--seconds`; nothing is sent anywhere but `--addr`.
"""

import argparse
import socket
import threading
import time

IN_FLIGHT = 64


def connect(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, s.makefile("rb")


def hello(addr, deadline, counts):
    i = 0
    while time.monotonic() < deadline:
        s, f = connect(addr)
        try:
            sent = answered = 0
            while time.monotonic() < deadline:
                burst = b"".join(
                    b'{"type":"hello","nick":"ann","password":"guess%d","id":%d}\n' % (i + k, i + k)
                    for k in range(IN_FLIGHT - (sent - answered))
                )
                i += IN_FLIGHT
                s.sendall(burst)
                sent += burst.count(b"\n")
                while answered < sent:
                    line = f.readline()
                    if not line:
                        raise ConnectionError
                    if b'"bad_password"' in line:
                        counts["checked"] += 1
                        answered += 1
                    elif b'"too_many_attempts"' in line:
                        counts["held back"] += 1
                        answered += 1
                    elif b'"bye"' in line:
                        raise ConnectionError
        except (ConnectionError, OSError):
            counts["connections ended"] += 1
        finally:
            s.close()


def irc_pass(addr, deadline, counts, lock):
    while time.monotonic() < deadline:
        try:
            s, f = connect(addr)
        except OSError:
            continue
        try:
            s.sendall(b"PASS guess\r\nNICK ann\r\nUSER ann 0 * :Ann\r\n")
            for line in f:
                with lock:
                    if b" 464 " in line:
                        counts["checked"] += 1
                        break
                    if b" 263 " in line:
                        counts["held back"] += 1
                        break
                    if b" 001 " in line:
                        counts["logged in (no password?)"] += 1
                        break
        except OSError:
            pass
        finally:
            s.close()


def oper(addr, deadline, counts):
    s, f = connect(addr)
    s.sendall(b"NICK guesser\r\nUSER g 0 * :G\r\n")
    for line in f:
        if b" 376 " in line or b" 422 " in line:
            break
    sent = answered = 0
    while time.monotonic() < deadline:
        n = IN_FLIGHT - (sent - answered)
        s.sendall(b"OPER boss guess\r\n" * n)
        sent += n
        while answered < sent:
            line = f.readline()
            if not line:
                return
            if b" 464 " in line:
                counts["checked"] += 1
                answered += 1
            elif b" 263 " in line:
                counts["held back"] += 1
                answered += 1
    s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["hello", "pass", "oper"])
    p.add_argument("--addr", required=True, help="HOST:PORT (the IRC port for pass and oper)")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--conns", type=int, default=16, help="connections at once (pass)")
    args = p.parse_args()
    counts = {"checked": 0, "held back": 0, "connections ended": 0, "logged in (no password?)": 0}
    start = time.monotonic()
    deadline = start + args.seconds
    if args.mode == "hello":
        hello(args.addr, deadline, counts)
    elif args.mode == "oper":
        oper(args.addr, deadline, counts)
    else:
        lock = threading.Lock()
        threads = [
            threading.Thread(target=irc_pass, args=(args.addr, deadline, counts, lock)) for _ in range(args.conns)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    took = time.monotonic() - start
    print(
        f"{args.mode}: {took:.1f} s, {counts['checked']} guesses checked ({counts['checked'] / took:,.1f}/s), "
        f"{counts['held back']} held back unchecked ({counts['held back'] / took:,.0f}/s)"
        + "".join(f", {k} {v}" for k, v in counts.items() if k not in ("checked", "held back") and v)
    )


if __name__ == "__main__":
    main()
