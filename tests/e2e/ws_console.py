"""The console's WebSocket spoken by hand (RFC 6455, stdlib only), for
tests/e2e/test_dashboard.sh: what a browser does not show — the
handshake's answer, pings, the close handshake, protocol errors, and the
session ending when its token is revoked.

  ws_console.py HOST PORT VM_ID TOKEN

Talks TLS to hcd (the test's self-signed certificate is not checked: the
test made it).  Exits non-zero with "FAIL: why" on stderr.
"""
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.request

HOST, PORT, VM, TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
AUTHORITY = f"[{HOST}]:{PORT}" if ":" in HOST else f"{HOST}:{PORT}"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def fail(why):
    print(f"FAIL: {why}", file=sys.stderr)
    sys.exit(1)


def ok(what):
    print(f"  ok - {what}", flush=True)


class Conn:
    def __init__(self, protocols):
        raw = socket.create_connection((HOST, PORT), timeout=30)
        self.s = CTX.wrap_socket(raw, server_hostname=HOST)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /v1/vms/{VM}/console HTTP/1.1\r\nHost: {AUTHORITY}\r\n"
               "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: {protocols}\r\n"
               f"Origin: https://{AUTHORITY}\r\n\r\n")
        self.s.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.s.recv(1)
            if not b:
                fail(f"the handshake ended early: {head!r}")
            head += b
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
                        for l in lines[1:] if ":" in l}
        self.key = key
        self.buf = b""

    def send(self, opcode, payload=b"", mask=True, fin=True):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        bit = 0x80 if mask else 0
        if n < 126:
            head += bytes([bit | n])
        elif n < 65536:
            head += bytes([bit | 126]) + struct.pack(">H", n)
        else:
            head += bytes([bit | 127]) + struct.pack(">Q", n)
        if mask:
            m = os.urandom(4)
            payload = bytes(b ^ m[i % 4] for i, b in enumerate(payload))
            head += m
        self.s.sendall(head + payload)

    def _need(self, n):
        while len(self.buf) < n:
            b = self.s.recv(65536)
            if not b:
                raise EOFError
            self.buf += b

    def frame(self):
        """(opcode, payload) of the next server frame, which must be final
        and unmasked."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if not b0 & 0x80 or b1 & 0x80 or b0 & 0x70:
            fail(f"a server frame fragmented, masked or with reserved bits: {self.buf[:2]!r}")
        n, at = b1 & 0x7f, 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(at + n)
        payload = self.buf[at:at + n]
        self.buf = self.buf[at + n:]
        return b0 & 0x0f, payload

    def until(self, want, seconds):
        """Binary frames until their bytes hold want; other frames noted."""
        got, end = b"", time.time() + seconds
        self.s.settimeout(2)
        while time.time() < end:
            try:
                op, p = self.frame()
            except socket.timeout:
                continue
            if op == 0x2:
                got += p
                if want in got:
                    return got
            elif op == 0x8:
                fail(f"closed while waiting for {want!r}: {p!r}")
        fail(f"no {want!r} in {got[-300:]!r}")

    def close_frame(self, seconds=10):
        """The next close frame's status, skipping data; None at EOF."""
        self.s.settimeout(seconds)
        try:
            while True:
                op, p = self.frame()
                if op == 0x8:
                    return struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 0
        except (EOFError, ConnectionError, socket.timeout, ssl.SSLError):
            return None


def attach():
    """A new session; the VM's serial port takes one client at a time, and
    the last one may still be letting go (409)."""
    for _ in range(50):
        c = Conn(f"hackcloud.console, bearer.{TOKEN}")
        if c.status != 409:
            return c
        c.s.close()
        time.sleep(0.2)
    fail("the console stayed busy")


# ---- the handshake's answer ------------------------------------------------------
c = attach()
if c.status != 101:
    fail(f"handshake: {c.status} {c.headers}")
want = base64.b64encode(hashlib.sha1(c.key.encode() + GUID).digest()).decode()
if c.headers.get("sec-websocket-accept") != want:
    fail(f"Sec-WebSocket-Accept {c.headers.get('sec-websocket-accept')!r}, want {want!r}")
if c.headers.get("sec-websocket-protocol") != "hackcloud.console":
    fail(f"the answer's subprotocol: {c.headers.get('sec-websocket-protocol')!r}")
if TOKEN in json.dumps(c.headers):
    fail("the answer echoed the token")
ok("101 with the RFC's accept value and the subprotocol hackcloud.console alone")

# ---- data both ways, a ping, fragments ----------------------------------------------
c.send(0x9, b"are-you-there")
c.s.settimeout(10)
while True:
    op, p = c.frame()
    if op == 0xa:
        break
if p != b"are-you-there":
    fail(f"the pong carried {p!r}")
c.send(0x1, b"echo ws-$((6", fin=False)           # a text message in two fragments
c.send(0x0, b"*7))\r")
c.until(b"ws-42", 60)
c.send(0x2, b"echo bin-$((5*5))\r")                # a binary frame
c.until(b"bin-25", 60)
ok("a ping answered with its payload; text (fragmented) and binary frames reach the guest")

# ---- the close handshake --------------------------------------------------------------
c.send(0x8, struct.pack(">H", 1000) + b"bye")
status = c.close_frame()
if status != 1000:
    fail(f"close: answered {status}")
ok("a close is answered with its status")

# ---- a protocol error: an unmasked frame ------------------------------------------------
c = attach()
c.send(0x1, b"x", mask=False)
status = c.close_frame()
if status != 1002:
    fail(f"an unmasked frame: closed with {status}")
ok("an unmasked client frame closes the connection with 1002")

# ---- revocation ends an open session ------------------------------------------------------
c = attach()
if c.status != 101:
    fail(f"handshake before the revocation: {c.status}")
req = urllib.request.Request(f"https://{AUTHORITY}/v1/logout", data=b"{}", method="POST",
                             headers={"Authorization": f"Bearer {TOKEN}",
                                      "Content-Type": "application/json"})
urllib.request.urlopen(req, context=CTX).read()
t0 = time.time()
status = c.close_frame(30)
if status != 1008:
    fail(f"after the revocation: closed with {status}")
ok(f"a revoked token's console closed with 1008 ({time.time() - t0:.1f} s after the logout)")
