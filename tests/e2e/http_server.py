#!/usr/bin/env python3
"""A small HTTP file server for the image import test (test_import.sh).

    http_server.py DIR PORTFILE LOGFILE [RATE]

Serves the files of DIR on 127.0.0.1 (an ephemeral port, written to
PORTFILE) and appends one line per request to LOGFILE:
    GET /MODE/FILE range=<Range header or -> if-range=<…> status=N sent=BYTES
The first path segment says how to behave:
    range/F      Range and If-Range (by ETag) honoured: 206 with Content-Range
    plain/F      Range ignored: always the whole file, 200 (a server that
                 cannot resume)
    cut/F        like range/, but the first GET of cut/F stops after half of
                 the body and drops the connection
    cutplain/F   like plain/, with the same first-GET cut
    slow/F       like range/, at RATE bytes per second (default 1 MiB/s)
    redirect/F   302 to range/F
    tofile/F     302 to file:///etc/passwd (a scheme a download must refuse)
    away/F       302 to $HTTP_AWAY/range/F (another server, e.g. this host's)
Anything else is a 404.

The environment may change where it listens and what it does:
    HTTP_BIND=ADDR   listen on ADDR instead of 127.0.0.1 ("::" takes IPv4
                     and IPv6 on every address)
    HTTP_PROXY_MODE=1  also act as an HTTP proxy: a request for an absolute
                     URL is fetched (directly) and relayed, logged as
                     "PROXY GET URL status=N sent=BYTES"; without it such a
                     request is a 404 that shows in the log
"""
import http.server
import os
import re
import socket
import sys
import threading
import time
import urllib.request

ROOT, PORTFILE, LOGFILE = sys.argv[1:4]
RATE = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
CHUNK = 64 * 1024

cut_done = set()
lock = threading.Lock()


def etag_of(path):
    st = os.stat(path)
    return '"%x-%x"' % (st.st_size, int(st.st_mtime_ns))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection

    def log_message(self, fmt, *args):
        pass

    def record(self, status, sent):
        with lock, open(LOGFILE, "a") as log:
            log.write("%s %s range=%s if-range=%s status=%d sent=%d\n" % (
                self.command, self.path, self.headers.get("Range", "-"),
                self.headers.get("If-Range", "-"), status, sent))

    def proxy(self):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.path, timeout=30) as r:
                body, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            body, status = b"", e.code
        except OSError:
            body, status = b"", 502
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with lock, open(LOGFILE, "a") as log:
            log.write("PROXY GET %s status=%d sent=%d\n" % (self.path, status, len(body)))

    def do_GET(self):
        if self.path.startswith("http://") and os.environ.get("HTTP_PROXY_MODE") == "1":
            self.proxy()
            return
        m = re.fullmatch(r"/([a-z]+)/([A-Za-z0-9._-]+)", self.path)
        path = m and os.path.join(ROOT, m.group(2))
        if not m or not os.path.isfile(path):
            self.send_error(404)
            self.record(404, 0)
            return
        mode, name = m.group(1), m.group(2)
        if mode in ("redirect", "tofile", "away"):
            self.send_response(302)
            self.send_header("Location", "/range/" + name if mode == "redirect"
                             else "file:///etc/passwd" if mode == "tofile"
                             else os.environ["HTTP_AWAY"] + "/range/" + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(302, 0)
            return
        if mode not in ("range", "plain", "cut", "cutplain", "slow"):
            self.send_error(404)
            self.record(404, 0)
            return
        size = os.path.getsize(path)
        etag = etag_of(path)
        ranges = mode in ("range", "cut", "slow")
        start = 0
        want = self.headers.get("Range")
        if ranges and want:
            r = re.fullmatch(r"bytes=(\d+)-", want)
            if_range = self.headers.get("If-Range")
            if r and (if_range is None or if_range == etag):
                start = int(r.group(1))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.record(416, 0)
                    return
        status = 206 if start > 0 else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start))
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.end_headers()
        stop = size
        with lock:
            if mode in ("cut", "cutplain") and self.path not in cut_done:
                cut_done.add(self.path)
                stop = start + (size - start) // 2
        sent = 0
        try:
            with open(path, "rb") as f:
                f.seek(start)
                while start + sent < stop:
                    data = f.read(min(CHUNK, stop - start - sent))
                    if not data:
                        break
                    self.wfile.write(data)
                    sent += len(data)
                    if mode == "slow":
                        time.sleep(len(data) / RATE)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.record(status, sent)
        if stop < size:
            # Drop the connection without finishing the declared length.
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass


class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


BIND = os.environ.get("HTTP_BIND", "127.0.0.1")
if ":" in BIND:
    Server.address_family = socket.AF_INET6
server = Server((BIND, 0), Handler)
server.daemon_threads = True
with open(PORTFILE + ".tmp", "w") as pf:
    pf.write("%d\n" % server.server_address[1])
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
