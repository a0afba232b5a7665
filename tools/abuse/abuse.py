#!/usr/bin/env python3
"""Replays the attacks of issue #11 against a running natter server and prints, for each, the
server's memory and CPU and what the attack did to everyone else (the p99 latency of a quiet
pair of users talking meanwhile).

    tools/abuse/abuse.py --pid PID [--host 127.0.0.1] [--port 7878] [--udp-port 7878]
                         [--seconds 5] [--only NAME,NAME]

Start the server first, e.g. `natter serve --db :memory:`, and pass its PID (the script reads
/proc/PID for memory and CPU). The UDP attacks need `--udp-verify on` to meet the address check:
on loopback it is off by default (`auto`), as every peer is then on the same machine. Every attack is bounded in time and in connections, and the
script closes everything it opened. Only for servers you run: loopback by default.
"""

import argparse
import asyncio
import json
import logging
import os
import socket
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stats(pid):
    """(resident KiB, CPU seconds) of the server."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return rss, cpu


class Native:
    """A native-protocol connection: newline-delimited JSON."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def login(cls, host, port, nick, **extra):
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        c = cls(reader, writer)
        c.send({"type": "hello", "nick": nick, "id": "h", **extra})
        await c.until(lambda f: f.get("id") == "h")
        return c

    def send(self, frame):
        self.writer.write((json.dumps(frame) + "\n").encode())

    async def frame(self):
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("closed")
        try:
            return json.loads(line)
        except ValueError:
            # The server's one-line goodbye to a connection it will not serve (`*** bye: ...`).
            raise ConnectionError(line.decode(errors="replace").strip()) from None

    async def until(self, pred):
        while True:
            f = await self.frame()
            if pred(f):
                return f

    def close(self):
        self.writer.close()


async def latency_probe(args, stop, samples):
    """Two quiet users in a room of their own: one says a numbered line every 200 ms (within
    the default message rate), the other times its arrival."""
    a = await Native.login(args.host, args.port, "probe-a")
    b = await Native.login(args.host, args.port, "probe-b")
    for c in (a, b):
        c.send({"type": "join", "room": "#probe", "id": "j"})
        await c.until(lambda f: f.get("id") == "j")
    sent = {}

    async def receive():
        while True:
            f = await b.frame()
            if f.get("type") == "message" and f.get("room") == "#probe":
                n = int(f["text"])
                if n in sent:
                    samples.append(time.monotonic() - sent.pop(n))

    task = asyncio.create_task(receive())
    n = 0
    while not stop.is_set():
        sent[n] = time.monotonic()
        a.send({"type": "send", "room": "#probe", "text": str(n)})
        n += 1
        await asyncio.sleep(0.2)  # the probe's pace, not a wait for the server
    await asyncio.sleep(0.5)
    task.cancel()
    lost = len(sent)
    a.close()
    b.close()
    return lost


async def flood(c, frames, stop):
    """Sends frames in a loop without reading, as fast as the socket takes them."""
    i = 0
    while not stop.is_set():
        for f in frames(i):
            c.send(f)
        i += 1
        try:
            await asyncio.wait_for(c.writer.drain(), 0.2)
        except (asyncio.TimeoutError, ConnectionError):
            await asyncio.sleep(0)  # the server stopped reading us: that is the defence


async def attack_history(args, stop):
    c = await Native.login(args.host, args.port, "hist-filler")
    big = "x" * 15000
    # Within the default message burst: the history is big, not the filler's rate.
    for i in range(25):
        c.send({"type": "send", "room": "#lobby", "text": f"{i} {big}", "id": f"f{i}"})
    await c.until(lambda f: f.get("id") == "f24")
    attackers = [await Native.login(args.host, args.port, f"hist-{i}") for i in range(4)]
    await asyncio.gather(*(flood(a, lambda i: [{"type": "history", "room": "#lobby", "limit": 500}], stop) for a in attackers))
    return [c, *attackers]


async def attack_slow_readers(args, stop):
    readers = []
    for i in range(30):
        r = await Native.login(args.host, args.port, f"slow-{i}")
        readers.append(r)  # never read again
    talker = await Native.login(args.host, args.port, "big-talker")
    big = "y" * 15000
    await flood(talker, lambda i: [{"type": "send", "room": "#lobby", "text": f"{i} {big}"}], stop)
    return [*readers, talker]


def costly(name, frames):
    async def attack(args, stop):
        c = await Native.login(args.host, args.port, f"{name}-0")
        c.send({"type": "join", "room": "#storm", "id": "j"})
        await flood(c, frames, stop)
        return [c]

    return attack


async def attack_passwords(args, stop):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    c = Native(reader, writer)
    tried = 0
    refused = 0
    while not stop.is_set():
        c.send({"type": "hello", "nick": "guesser", "password": f"guess{tried}", "id": tried})
        tried += 1
        try:
            f = await asyncio.wait_for(c.frame(), 1)
            refused += f.get("type") == "error"
        except (asyncio.TimeoutError, ConnectionError, json.JSONDecodeError):
            break
    print(f"    guesses answered: {refused} in {args.seconds} s")
    return [c]


async def attack_udp_amplification(args, stop):
    """A forged first datagram from a socket that never speaks again: counts what it draws."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    payload = b"hello\n"
    sock.sendto(payload, (args.host, args.udp_port))
    got = 0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 0.2)
            got += len(data)
        except asyncio.TimeoutError:
            pass
    print(f"    {len(payload)} bytes sent, {got} bytes received back")
    sock.close()
    return []


async def attack_udp_ports(args, stop):
    """5,000 datagrams from 250 ports of one address: counts members made and bytes drawn."""
    socks = []
    for _ in range(250):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        socks.append(sock)
    payload = b"hello, is anyone in the lobby tonight?\n"
    sent = 0
    for _ in range(20):
        for sock in socks:
            try:
                sock.sendto(payload, (args.host, args.udp_port))
                sent += len(payload)
            except BlockingIOError:
                pass
    await stop.wait()
    got = datagrams = 0
    for sock in socks:
        while True:
            try:
                got += len(sock.recv(65536))
                datagrams += 1
            except BlockingIOError:
                break
        sock.close()
    print(f"    {sent} bytes sent from 250 ports, {datagrams} datagrams ({got} bytes) received back")
    return []


async def attack_silent_connections(args, stop):
    conns = []
    for _ in range(1100):
        try:
            conns.append(await asyncio.open_connection(args.host, args.port))
        except OSError as e:
            print(f"    connection refused after {len(conns)}: {e}")
            break
    # Can a newcomer still log in?
    try:
        c = await asyncio.wait_for(Native.login(args.host, args.port, "newcomer"), 5)
        print("    a newcomer logged in")
        c.close()
    except (asyncio.TimeoutError, OSError, ConnectionError) as e:
        print(f"    a newcomer could not log in: {e!r}")
    await stop.wait()
    for _, w in conns:
        w.close()
    return []


ATTACKS = {
    "history": attack_history,
    "slow-readers": attack_slow_readers,
    "who": costly("who", lambda i: [{"type": "who"}]),
    "nick": costly("nick", lambda i: [{"type": "nick", "nick": f"n{i % 2}-{os.getpid()}"}]),
    "join-part": costly("join", lambda i: [{"type": "join", "room": f"#jp{i % 2}"}, {"type": "part", "room": f"#jp{i % 2}"}]),
    "topic": costly("topic", lambda i: [{"type": "topic", "room": "#storm", "topic": f"t{i}"}]),
    "ignore": costly("ignore", lambda i: [{"type": "ignore", "nick": f"nobody{i}"}]),
    "rooms": costly("rooms", lambda i: [{"type": "join", "room": f"#r{os.getpid()}-{i}"}]),
    "passwords": attack_passwords,
    "udp-amplification": attack_udp_amplification,
    "udp-ports": attack_udp_ports,
    "silent-connections": attack_silent_connections,
}


async def run(args, name):
    stop = asyncio.Event()
    samples = []
    rss0, cpu0 = proc_stats(args.pid)
    probe = asyncio.create_task(latency_probe(args, stop, samples))
    attack = asyncio.create_task(ATTACKS[name](args, stop))
    peak = rss0
    start = time.monotonic()
    while time.monotonic() - start < args.seconds:
        await asyncio.sleep(0.1)  # sampling interval
        try:
            peak = max(peak, proc_stats(args.pid)[0])
        except FileNotFoundError:
            print(f"{name}: the server died")
            raise SystemExit(1)
    stop.set()
    try:
        opened = await attack
    except (ConnectionError, OSError) as e:
        print(f"    the server closed the attacker: {e!r}")
        opened = []
    lost = await probe
    rss1, cpu1 = proc_stats(args.pid)
    for c in opened or []:
        c.close()
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1] * 1000 if samples else float("nan")
    print(
        f"{name:20} rss {rss0 // 1024}->{peak // 1024} MiB peak, cpu {(cpu1 - cpu0) / args.seconds * 100:.0f}%, "
        f"others' p99 {p99:.1f} ms over {len(samples)} messages, {lost} lost"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int, required=True, help="the server's PID")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7878)
    p.add_argument("--udp-port", type=int, default=7878)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--only", default="", help="comma-separated attack names: " + ", ".join(ATTACKS))
    args = p.parse_args()
    # Writes to connections the server has cut are expected here: not worth a warning each.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    names = [n for n in args.only.split(",") if n] or list(ATTACKS)
    for name in names:
        if name not in ATTACKS:
            p.error(f"no attack {name!r}; known: {', '.join(ATTACKS)}")
        asyncio.run(run(args, name))


if __name__ == "__main__":
    main()
