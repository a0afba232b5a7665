#!/usr/bin/env python3
"""Account logins against a running natter server, for a bounded time: how many argon2id
password checks the server answers per second, and how long each login waits for its answer.

    natter user add bench --db DB <<< 'bench password'     # once, or --register below
    tools/logins.py --addr 127.0.0.1:7979 --conns 8 --seconds 20

Each of `--conns` native connections logs in as a guest nick, then repeats `login` (the right
password) and `logout` until `--seconds` have passed; every login is checked by the server
(argon2id, off the hub's task). Start the server with `--command-rate 0`: otherwise each
session's command budget (a login costs 20 units of 10 a second) paces it to one login every
two seconds. With `--register`, the first connection registers the account first. Nothing is
sent anywhere but `--addr`; every loop ends after `--seconds`.
"""

import argparse
import json
import socket
import threading
import time


def connect(addr, nick):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    # Out of the lobby at once: a login client must not be flooded with the room's traffic
    # (a latency benchmark may be filling it).
    s.sendall(b'{"type":"hello","nick":"%s"}\n{"type":"part","room":"#lobby"}\n' % nick.encode())
    return s, f


def wait_for(f, request_id):
    """The frame answering `request_id`."""
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        frame = json.loads(line)
        if frame.get("id") == request_id:
            return frame


def worker(addr, index, name, password, deadline, results):
    s, f = connect(addr, "logins%d" % index)
    login = json.dumps({"type": "login", "name": name, "password": password, "id": "l"}).encode() + b"\n"
    logout = b'{"type":"logout","id":"o"}\n'
    waits = []
    try:
        while time.monotonic() < deadline:
            start = time.monotonic()
            s.sendall(login)
            frame = wait_for(f, "l")
            if frame.get("type") != "account":
                results.append(("refused", frame.get("code")))
                continue
            waits.append(time.monotonic() - start)
            s.sendall(logout)
            wait_for(f, "o")
    finally:
        s.close()
    results.append(("waits", waits))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", default="127.0.0.1:7878")
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--name", default="bench")
    p.add_argument("--password", default="bench password")
    p.add_argument("--register", action="store_true", help="register --name first (as its nick)")
    args = p.parse_args()
    if args.register:
        s, f = connect(args.addr, args.name)
        s.sendall(json.dumps({"type": "register", "password": args.password, "id": "r"}).encode() + b"\n")
        print("register:", wait_for(f, "r"))
        s.close()
    deadline = time.monotonic() + args.seconds
    results = []
    threads = [
        threading.Thread(target=worker, args=(args.addr, i, args.name, args.password, deadline, results))
        for i in range(args.conns)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    waits = sorted(w for kind, ws in results if kind == "waits" for w in ws)
    refused = [code for kind, code in results if kind == "refused"]
    if not waits:
        print("no login succeeded; refused:", refused[:5])
        return
    pct = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))] * 1000
    print(
        "%d logins in %.1f s: %.0f logins/s; wait p50 %.0f ms, p99 %.0f ms; %d refused %s"
        % (len(waits), elapsed, len(waits) / elapsed, pct(0.5), pct(0.99), len(refused), sorted(set(refused)))
    )


if __name__ == "__main__":
    main()
