#!/usr/bin/env python3
"""Hold an image upload open, as the attacker of issue 11 item 1 does.

    slow_put.py SOCKET PATH FILE GOFILE [TOKEN]

Sends the headers of `PUT PATH` (Content-Length of FILE, Expect:
100-continue) to hcd's API socket and waits for its "100 Continue": hcd
has then begun the upload.  Prints "OPEN", waits until GOFILE exists,
sends FILE as the body and prints "STATUS N" and the answer's body.  When
hcd answers the headers with anything but 100, prints "REFUSED N" and the
body.
"""
import os
import socket
import sys
import time

sock_path, path, file, gofile = sys.argv[1:5]
token = sys.argv[5] if len(sys.argv) > 5 else None
with open(file, "rb") as f:
    body = f.read()


def read_response(s, buf):
    """One HTTP response from buf + the socket: (status, body, rest)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, b"", b""
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(rest) < length:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status, rest[:length], rest[length:]


s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
head = ("PUT %s HTTP/1.1\r\nHost: hc\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: %d\r\nExpect: 100-continue\r\n" % (path, len(body)))
if token:
    head += "Authorization: Bearer %s\r\n" % token
s.sendall((head + "\r\n").encode())
status, answer, rest = read_response(s, b"")
if status != 100:
    print("REFUSED %s" % status)
    print(answer.decode("utf-8", "replace"), flush=True)
    sys.exit(0)
print("OPEN", flush=True)
while not os.path.exists(gofile):
    time.sleep(0.05)
try:
    s.sendall(body)
    status, answer, _ = read_response(s, rest)
except OSError as e:
    status, answer = "closed", str(e).encode()
print("STATUS %s" % status)
print(answer.decode("utf-8", "replace"), flush=True)
