#!/usr/bin/env python3
"""sse_slow — a reader of GET /v1/events that does not read.

  sse_slow.py SOCKET GO_FILE

Opens the stream on hcd's unix socket (as the calling user: root is the
admin) with a small receive buffer, reads the response headers, then
reads nothing more until GO_FILE exists.  Then it reads to the end and
prints "eof BYTES" when hcd closed the stream, or "open BYTES" when it
was still open after 10 s of silence.  A stream hcd cut for reading too
slowly ends in "eof".
"""
import os
import socket
import sys
import time


def main():
    path, go = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(path)
    s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: hc\r\nAccept: text/event-stream\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            print("eof-before-headers 0")
            return 1
        head += chunk
    print("headers", flush=True)
    while not os.path.exists(go):
        time.sleep(0.1)
    total = 0
    s.settimeout(10)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                print("eof %d" % total)
                return 0
            total += len(chunk)
    except socket.timeout:
        print("open %d" % total)
    except ConnectionResetError:
        print("eof %d" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
