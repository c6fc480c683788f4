#!/usr/bin/env python3
"""scalegen — the client half of bench/scale.sh (not part of the product).

  scalegen.py create SOCKET IMAGE NET FROM TO [CONNECTIONS]
      POST /v1/vms for vm-FROM … vm-(TO-1), not started, one NIC on NET,
      over CONNECTIONS keep-alive connections to hcd's unix socket (16):
      several requests per turn of hcd's loop, as many clients would send.
      Prints "created N in S s (R/s)".
  scalegen.py time REPS CMD [ARG...]
      Runs CMD REPS times (stdout discarded) and prints the median wall
      time and the median CPU time of CMD itself (user + system), in ms.
"""
import http.client
import json
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("hc", timeout=600)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def create(sock, image, net, first, last, conns=16):
    names = iter(range(first, last))
    lock = threading.Lock()
    errors = []

    def worker():
        c = UnixHTTP(sock)
        while True:
            with lock:
                i = next(names, None)
            if i is None:
                return
            body = json.dumps({"name": "vm-%05d" % i, "image": image, "networks": [net],
                               "start": False})
            c.request("POST", "/v1/vms", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status != 201:
                errors.append("%d %s" % (r.status, data[:200]))
                return

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    if errors:
        sys.exit("scalegen: create failed: " + errors[0])
    n = last - first
    print("created %d in %.1f s (%.0f/s)" % (n, dt, n / dt if dt > 0 else 0))


def timed(reps, argv):
    ms, cpu = [], []
    for _ in range(reps):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        ms.append((time.monotonic() - t0) * 1000)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000)
    print("%.1f %.1f" % (statistics.median(ms), statistics.median(cpu)))


if __name__ == "__main__":
    if sys.argv[1] == "create":
        a = sys.argv[2:]
        create(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]) if len(a) > 5 else 16)
    elif sys.argv[1] == "time":
        timed(int(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(__doc__)
