#!/usr/bin/env python3
"""The life of a VM side by side (issue 12 §1, §2), driven by vmlife.sh.

Three systems start and end the same tiny TCG guest (kernel + initrd, one
vCPU, 256 MiB, one virtio NIC on a tap), in interleaved rounds:

  raw        qemu-system-x86_64 exec'd directly with the argv hcd builds
             (read from a running hackcloud VM: the same shape), its QMP and
             serial sockets and tap passed as descriptors; create = exec →
             QMP says running; delete = kill -9 → the process is gone (the
             floor: the kernel's teardown of the process);
  virsh      libvirt (domain type 'qemu', TCG): create = `virsh create`
             returns; delete = `virsh destroy` returns, QEMU gone, tap gone;
  hackcloud  create = POST /v1/vms → GET shows state running; delete =
             DELETE /v1/vms/ID → QEMU gone, its tap gone, and its tap in
             no nftables element (the commit that took it out, as `nft
             monitor` reports it).

Deletes are measured on a guest still booting (half a second after create) and on
a booted one (its boot marker printed).  Times are wall clock, monotonic,
in ms; the medians and their ratios are printed.
"""
import http.client
import itertools
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import time

STATE, GUEST, WORK, ROUNDS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
NET = "bench"
POLL_S = 0.005
SETTLE_S = float(os.environ.get("VMLIFE_SETTLE_S", "0.5"))
MARK = b"HACKCLOUD-BOOT-OK"


def now():
    return time.monotonic()


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("hc", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


api_conn = UnixHTTP(STATE + "/api.sock")


def api(method, path, body=None):
    global api_conn
    for attempt in range(2):
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            api_conn.request(method, path, json.dumps(body) if body is not None else None, hdrs)
            r = api_conn.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None)
        except (http.client.HTTPException, OSError):
            api_conn.close()
            api_conn = UnixHTTP(STATE + "/api.sock")
    raise RuntimeError("API unreachable")


def wait_file_has(path, needle, timeout=300):
    end = now() + timeout
    while now() < end:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("%s never showed %r" % (path, needle))


def pid_gone_waiter(pid):
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def wait_gone(pidfd, timeout=60):
    if pidfd is None:
        return
    r, _, _ = select.select([pidfd], [], [], timeout)
    os.close(pidfd)
    if not r:
        raise RuntimeError("process did not end")


def link_exists(ifname):
    return os.path.exists("/sys/class/net/" + ifname)


def in_ruleset(word):
    out = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return word in out


def until(cond, timeout=60, step=0.001):
    end = now() + timeout
    while now() < end:
        if cond():
            return
        time.sleep(step)
    raise RuntimeError("condition not met in time")


# ---- raw QEMU ---------------------------------------------------------------

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def tap_open(name):
    import fcntl
    import struct
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
    return fd


class System:
    """What the three have in common: the guest's serial log says when it
    has booted."""
    log = None

    def booted(self):
        wait_file_has(self.log, MARK)

    def close(self):
        pass


class Raw(System):
    name = "raw"

    def __init__(self, template):
        self.template = template
        self.dir = WORK + "/raw"
        os.makedirs(self.dir, exist_ok=True)
        self.tap = "rawtap0"
        subprocess.run(["ip", "tuntap", "add", "dev", self.tap, "mode", "tap", "vnet_hdr"], check=True)
        subprocess.run(["ip", "link", "set", self.tap, "up"], check=True)
        self.n = 0

    def argv(self, log):
        out = []
        for a in self.template:
            if "logfile=" in a:
                a = a[: a.index("logfile=")] + "logfile=" + log.replace(",", ",,")
            out.append(a)
        return out

    def create(self):
        self.n += 1
        self.log = "%s/serial-%d.log" % (self.dir, self.n)
        qmp = socket.socket(socket.AF_UNIX)
        ser = socket.socket(socket.AF_UNIX)
        for s, p in ((qmp, "qmp.sock"), (ser, "serial.sock")):
            path = self.dir + "/" + p
            if os.path.exists(path):
                os.unlink(path)
            s.bind(path)
            s.listen(8)
        tfd = tap_open(self.tap)
        argv = self.argv(self.log)
        t0 = now()
        pid = os.fork()
        if pid == 0:
            try:
                import fcntl
                high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (qmp.fileno(), ser.fileno(), tfd)]
                for i, fd in enumerate(high):
                    os.dup2(fd, 3 + i)
                null = os.open("/dev/null", os.O_RDWR)
                for i in range(3):
                    os.dup2(null, i)
                os.closerange(6, 4096)
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self.pid = pid
        qmp.close()
        ser.close()
        os.close(tfd)
        c = socket.socket(socket.AF_UNIX)
        c.connect(self.dir + "/qmp.sock")
        f = c.makefile("rw")
        f.readline()
        f.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n')
        f.flush()
        f.readline()
        st = json.loads(f.readline())
        t1 = now()
        c.close()
        assert st["return"]["running"], st
        return (t1 - t0) * 1000

    def delete(self):
        pidfd = pid_gone_waiter(self.pid)
        t0 = now()
        os.kill(self.pid, 9)
        wait_gone(pidfd)
        t1 = now()
        os.waitpid(self.pid, 0)
        return (t1 - t0) * 1000

    def close(self):
        subprocess.run(["ip", "link", "del", self.tap])


# ---- libvirt ------------------------------------------------------------------

class Virsh(System):
    name = "virsh"

    def __init__(self):
        self.dir = WORK + "/virsh"
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.n = 0
        # libvirt relabels (chowns) the kernel and initrd for its QEMU user:
        # its own copies, not the build's.
        for f in ("vmlinuz", "initrd.img"):
            subprocess.run(["cp", GUEST + "/" + f, self.dir + "/" + f], check=True)
        cmdline = open(GUEST + "/cmdline").read().strip()
        self.xml = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{dir}/vmlinuz</kernel>
    <initrd>{dir}/initrd.img</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <cpu mode='maximum'/>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='{log}'/></serial>
    <interface type='ethernet'><target dev='{tap}' managed='yes'/><model type='virtio'/></interface>
    <rng model='virtio'><backend model='builtin'/></rng>
    <memballoon model='none'/>
  </devices>
</domain>
"""
        self.cmdline = cmdline

    def virsh(self, *args):
        return subprocess.run(["virsh", "-q", "-c", "qemu:///system"] + list(args),
                              capture_output=True, text=True)

    def create(self):
        self.n += 1
        self.dom = "hcbench-%d-%d" % (os.getpid(), self.n)
        self.tap = "vbt%d" % self.n
        self.log = "%s/serial-%d.log" % (self.dir, self.n)
        path = "%s/%s.xml" % (self.dir, self.dom)
        with open(path, "w") as f:
            f.write(self.xml.format(name=self.dom, dir=self.dir, cmdline=self.cmdline, log=self.log,
                                    tap=self.tap))
        t0 = now()
        r = self.virsh("create", path)
        t1 = now()
        if r.returncode != 0:
            raise RuntimeError("virsh create: " + r.stderr)
        self.pid = int(open("/run/libvirt/qemu/%s.pid" % self.dom).read())
        return (t1 - t0) * 1000

    def delete(self):
        pidfd = pid_gone_waiter(self.pid)
        t0 = now()
        r = self.virsh("destroy", self.dom)
        if r.returncode != 0:
            raise RuntimeError("virsh destroy: " + r.stderr)
        wait_gone(pidfd)
        until(lambda: not link_exists(self.tap))
        return (now() - t0) * 1000


# ---- hackcloud ----------------------------------------------------------------

class NftWatch:
    """`nft monitor` running beside the whole run: each ruleset commit ends
    with a "# new generation" line, stamped on arrival by a thread.  A
    delete looks at the ruleset (one `nft list`) only when a commit came,
    so watching costs the CPUs nothing meanwhile (a `nft list` per poll
    competed with hcd for them)."""

    def __init__(self):
        import queue
        import threading
        self.q = queue.Queue()
        self.p = subprocess.Popen(["stdbuf", "-oL", "nft", "monitor"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)

        def read():
            for line in self.p.stdout:
                if line.startswith("# new generation"):
                    self.q.put(now())
        threading.Thread(target=read, daemon=True).start()

    def drain(self):
        while not self.q.empty():
            self.q.get_nowait()

    def commits(self):
        out = []
        while not self.q.empty():
            out.append(self.q.get_nowait())
        return out

    def close(self):
        self.p.kill()
        self.p.wait()


class Hackcloud(System):
    name = "hackcloud"

    def __init__(self, nft=None):
        self.n = 0
        self.parts = []     # per delete: when QEMU, the tap, the nft elements were gone
        self.nft = nft

    def create(self):
        self.n += 1
        name = "b%d" % self.n
        t0 = now()
        st, vm = api("POST", "/v1/vms", {"name": name, "image": "tiny", "networks": [NET]})
        if st != 201:
            raise RuntimeError("create: %s %s" % (st, vm))
        self.id = vm["id"]
        self.tap = vm["nics"][0]["ifname"]
        while True:
            st, vm = api("GET", "/v1/vms/" + self.id)
            if vm["state"] == "running":
                break
            if vm["state"] == "error":
                raise RuntimeError("vm error: %s" % vm.get("error"))
            # Every GET is work for hcd's loop, on the CPUs QEMU starts
            # on: a poll every POLL_S costs little and blurs by ±POLL_S/2.
            time.sleep(POLL_S)
        t1 = now()
        self.dir = "%s/vms/%s" % (STATE, self.id)
        self.log = self.dir + "/serial.log"
        self.pid = int(open(self.dir + "/qemu.pid").read())
        return (t1 - t0) * 1000

    def delete(self):
        pidfd = pid_gone_waiter(self.pid)
        assert in_ruleset(self.tap), "the tap is not in the ruleset before the delete"
        self.nft.drain()
        t0 = now()
        st, _ = api("DELETE", "/v1/vms/" + self.id)
        if st != 202:
            raise RuntimeError("delete: %s" % st)
        # Each part's own end, watched together: QEMU (its pidfd), the tap
        # (/sys, every millisecond), the ruleset (each commit's arrival,
        # then one look whether the tap is still in it).
        done = {}
        end = now() + 60
        while len(done) < 3 and now() < end:
            if "qemu" not in done:
                if select.select([pidfd], [], [], 0.001)[0]:
                    done["qemu"] = now()
            else:
                time.sleep(0.001)
            if "tap" not in done and not link_exists(self.tap):
                done["tap"] = now()
            if "nft" not in done:
                for t in self.nft.commits():
                    if not in_ruleset(self.tap):
                        done["nft"] = t
                        break
        os.close(pidfd)
        if len(done) < 3:
            raise RuntimeError("delete did not finish: %s" % done)
        self.parts.append({k: (v - t0) * 1000 for k, v in done.items()})
        return (max(done.values()) - t0) * 1000


def template_argv(nft):
    """The argv of a hackcloud VM's QEMU, to run the same shape raw."""
    h = Hackcloud(nft)
    h.create()
    argv = open("/proc/%d/cmdline" % h.pid, "rb").read().split(b"\0")[:-1]
    h.delete()
    return [a.decode() for a in argv]


def main():
    nft = NftWatch()
    systems = [Raw(template_argv(nft)), Virsh(), Hackcloud(nft)]
    res = {s.name: {"create": [], "del_booting": [], "del_booted": []} for s in systems}
    try:
        # Every order of the three in turn, so that each follows each
        # other as often (libvirtd, for one, goes on working after its
        # virsh returned); and a pause before every measured step, so that
        # what the last one left to do is done.
        orders = list(itertools.permutations(systems))
        for rnd in range(ROUNDS):
            order = orders[rnd % len(orders)]
            for s in order:
                time.sleep(SETTLE_S)
                res[s.name]["create"].append(s.create())
                time.sleep(SETTLE_S)
                res[s.name]["del_booting"].append(s.delete())
            for s in order:
                time.sleep(SETTLE_S)
                res[s.name]["create"].append(s.create())
                s.booted()
                time.sleep(SETTLE_S)
                res[s.name]["del_booted"].append(s.delete())
            print("round %d/%d: %s" % (rnd + 1, ROUNDS, "  ".join(
                "%s %.0f/%.0f/%.0f" % (s.name, res[s.name]["create"][-1], res[s.name]["del_booting"][-1],
                                       res[s.name]["del_booted"][-1]) for s in systems)), flush=True)
    finally:
        for s in systems:
            s.close()
        nft.close()
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in res.items()}
    print()
    print("medians of %d rounds (create: %d samples each; ms)" % (ROUNDS, 2 * ROUNDS))
    print("%-10s %10s %14s %14s" % ("", "create", "delete(boot)", "delete(up)"))
    for n in ("raw", "virsh", "hackcloud"):
        print("%-10s %10.1f %14.1f %14.1f" % (n, med[n]["create"], med[n]["del_booting"], med[n]["del_booted"]))
    hcs = systems[2]
    for i, what in ((0, "booting"), (1, "booted")):
        # each round deletes a booting guest, then a booted one
        parts = hcs.parts[i::2]
        print("hackcloud delete (%s): gone after QEMU %.1f, tap %.1f, nft elements %.1f ms (medians)"
              % (what, *(statistics.median(p[k] for p in parts) for k in ("qemu", "tap", "nft"))))
    raw, vs, hc = med["raw"], med["virsh"], med["hackcloud"]
    print()
    print("create → running: hackcloud %.2f× the raw-QEMU floor (target ≤ 1.30), virsh %.2f×; "
          "hackcloud %.1f× faster than virsh (target ≥ 5)" %
          (hc["create"] / raw["create"], vs["create"] / raw["create"], vs["create"] / hc["create"]))
    for k, what in (("del_booting", "booting"), ("del_booted", "booted")):
        print("delete (%s guest) → gone: hackcloud %.2f× the kill -9 floor (target ≤ 1.20), virsh destroy %.2f×"
              % (what, hc[k] / raw[k], vs[k] / raw[k]))
    json.dump({"samples": res, "medians": med}, open(WORK + "/vmlife.json", "w"), indent=1)


if __name__ == "__main__":
    main()
