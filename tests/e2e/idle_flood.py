#!/usr/bin/env python3
"""Hold many idle TCP connections to a server, as an attacker would, and
report how many the server has not closed yet (test_attack_api.sh).

usage: idle_flood.py HOST PORT STATUS_FILE SRC:COUNT [SRC:COUNT ...]
  Opens COUNT connections from each local source address SRC and sends
  nothing on them; one more connection (from the first SRC) trickles a
  request one byte a second, never finishing its headers.  Every 0.2 s
  STATUS_FILE is rewritten with one line:
      connected=N held=N trickle=open|closed
  connected: connections that were established; held: those the server
  has not closed.  Runs until killed.
"""
import errno
import os
import resource
import selectors
import socket
import sys
import time


def main():
    host, port, status = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    plan = []
    for spec in sys.argv[4:]:
        src, count = spec.rsplit(":", 1)
        plan.append((src, int(count)))
    want = sum(c for _, c in plan) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    sel = selectors.DefaultSelector()
    pending, held, connected = set(), set(), 0

    def open_one(src):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        return s

    for src, count in plan:
        for _ in range(count):
            s = open_one(src)
            pending.add(s)
            sel.register(s, selectors.EVENT_WRITE)
    trickle = open_one(plan[0][0])
    trickle.setblocking(True)
    trickle.settimeout(None)
    trickle_text = b"GET /v1/info HTTP/1.1\r\nHost: hc\r\nX-Slow: " + b"a" * 10000
    trickle_pos, trickle_open, next_byte = 0, True, time.monotonic()
    trickle.setblocking(False)

    while True:
        for key, ev in sel.select(timeout=0.2):
            s = key.fileobj
            if s in pending:
                pending.discard(s)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                sel.unregister(s)
                if err:
                    s.close()
                    continue
                connected += 1
                held.add(s)
                sel.register(s, selectors.EVENT_READ)
            elif s in held:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    held.discard(s)
                    sel.unregister(s)
                    s.close()
        now = time.monotonic()
        if trickle_open and now >= next_byte:
            next_byte = now + 1.0
            try:
                trickle.send(trickle_text[trickle_pos:trickle_pos + 1])
                trickle_pos += 1
                # The server's answer to a cut is the end of the stream.
                if trickle.recv(1) == b"":
                    trickle_open = False
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno not in (errno.EAGAIN,):
                    trickle_open = False
        tmp = status + ".tmp"
        with open(tmp, "w") as f:
            f.write("connected=%d held=%d trickle=%s\n"
                    % (connected, len(held), "open" if trickle_open else "closed"))
        os.replace(tmp, status)


if __name__ == "__main__":
    main()
