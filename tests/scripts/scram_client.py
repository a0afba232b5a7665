#!/usr/bin/env python3
"""A minimal IRC client that logs in with SASL SCRAM-SHA-256 (RFC 5802/7677), written from the
RFCs with Python's standard library only: natter's SCRAM is checked against an implementation
that shares no code with it.

    scram_client.py HOST PORT NICK ACCOUNT PASSWORD [--tamper-signature]

Prints each line it receives, and exits 0 when the server answered 903 after proving, with its
signature, that it knew the password too; 1 on 904 or any failure; 2 when the server's
signature is wrong (with --tamper-signature the client checks against a wrong key, to show the
check can fail).
"""

import base64
import hashlib
import hmac
import os
import socket
import sys


def lines(sock):
    buf = b""
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        text = line.decode()
        print(text, flush=True)
        yield text


def main():
    host, port, nick, account, password = sys.argv[1:6]
    tamper = "--tamper-signature" in sys.argv
    sock = socket.create_connection((host, int(port)), timeout=20)
    incoming = lines(sock)

    def send(text):
        sock.sendall(text.encode() + b"\r\n")

    def next_authenticate():
        for line in incoming:
            words = line.split(" ")
            if len(words) >= 2 and words[1] in ("904", "905", "906"):
                sys.exit(1)
            if words[0] == "AUTHENTICATE" or (len(words) > 1 and words[1] == "AUTHENTICATE"):
                return words[-1]
        sys.exit(1)

    send("CAP LS 302")
    send("CAP REQ :sasl")
    send("NICK " + nick)
    send("USER scram 0 * :SCRAM test")
    send("AUTHENTICATE SCRAM-SHA-256")
    assert next_authenticate() == "+"
    client_nonce = base64.b64encode(os.urandom(18)).decode()
    name = account.replace("=", "=3D").replace(",", "=2C")
    first_bare = f"n={name},r={client_nonce}"
    send("AUTHENTICATE " + base64.b64encode(("n,," + first_bare).encode()).decode())
    server_first = base64.b64decode(next_authenticate()).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
    if not nonce.startswith(client_nonce):
        sys.exit(1)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=" + base64.b64encode(b"n,,").decode() + ",r=" + nonce
    auth_message = ",".join([first_bare, server_first, without_proof]).encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    send("AUTHENTICATE " + base64.b64encode(
        (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()).decode())
    server_final = base64.b64decode(next_authenticate()).decode()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    if tamper:
        server_key = bytes(b ^ 1 for b in server_key)
    expected = "v=" + base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
    if server_final != expected:
        print("the server's signature is wrong", flush=True)
        sys.exit(2)
    send("AUTHENTICATE +")
    for line in incoming:
        words = line.split(" ")
        if len(words) > 1 and words[1] == "903":
            send("CAP END")
            break
        if len(words) > 1 and words[1] in ("904", "905", "906"):
            sys.exit(1)
    for line in incoming:
        if " 001 " in line:
            send("QUIT")
            sys.exit(0)
    sys.exit(1)


main()
