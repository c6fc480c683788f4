#!/usr/bin/env python3
"""openapi — hackcloud's API as an OpenAPI 3.0.3 document, made from the
compact description below (one `op(...)` per row of the route table in
src/api/routes.c, and the objects the handlers answer with).

  python3 docs/openapi.py > docs/openapi.json        (make openapi)
  python3 docs/openapi.py --check docs/openapi.json  (meson test openapi-source)

docs/openapi.json is committed (client generators and readers use it
without building anything), compiled into hcd (GET /v1/openapi.json) and
installed beside hcd's data; the openapi test (tests/openapi/check.pl)
validates it with JSON::Validator against the OpenAPI 3.0 schema and
compares it with `hcd --print-routes`, method, path and access for each
route.  docs/API.md is the prose; this file must say the same.

Adding a route: add its row to routes.c, then one op(...) here (path
parameters as {name}: the table's {} in the same places), its request
and answer schemas under SCHEMAS if new, then `make openapi`.  The errors
every route can give (by its access and body kind) are added by
common_errors(); list only the ones the handler itself gives.  A route
that is no part of the API (a web page) goes in NOT_DESCRIBED instead,
with the reason.

Conventions of the document:
  - x-hackcloud-access on every operation: "user" (any identified
    caller), "admin" (admins only; others get 403), "anon" (no identity:
    logging in, this document), "metrics" (admins, or the bearer of the
    metrics token) — route.h's access field, by name;
  - every error answer is {"error": {"code", "message"}}; each response
    of status >= 400 lists the codes the operation can give with that
    status (an enum), so a new code is a change of the document;
  - answer objects list every member they always carry as required, and
    leave additionalProperties open (clients keep working when a member
    is added); request bodies are closed, as hcd refuses unknown members.
"""
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# ---- building blocks ------------------------------------------------------


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def string(desc=None, **kw):
    s = {"type": "string", **kw}
    if desc:
        s["description"] = desc
    return s


def integer(desc=None, **kw):
    s = {"type": "integer", **kw}
    if desc:
        s["description"] = desc
    return s


def number(desc=None, **kw):
    s = {"type": "number", **kw}
    if desc:
        s["description"] = desc
    return s


def boolean(desc=None):
    s = {"type": "boolean"}
    if desc:
        s["description"] = desc
    return s


def array(items, desc=None, **kw):
    s = {"type": "array", "items": items, **kw}
    if desc:
        s["description"] = desc
    return s


def nullable(s):
    """s, or null.  OpenAPI 3.0 reads nullable only beside a type: a
    choice (oneOf) takes it on its first alternative."""
    if "oneOf" in s:
        return {**s, "oneOf": [nullable(s["oneOf"][0])] + s["oneOf"][1:]}
    if "type" not in s:
        raise SystemExit("openapi.py: nullable() needs a schema with a type or a oneOf")
    return {**s, "nullable": True}


def answer(props, desc=None, optional=()):
    """An object hcd answers with: every member but `optional` always there."""
    s = {"type": "object", "properties": props}
    required = [k for k in props if k not in optional]
    if required:
        s["required"] = required
    if desc:
        s["description"] = desc
    return s


def body(props, required=(), desc=None):
    """A request body: hcd refuses members it does not know."""
    s = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        s["required"] = list(required)
    if desc:
        s["description"] = desc
    return s


def sparse(s, desc=None):
    """s with no member required, at any depth: an answer cut down to the
    members a request asked for."""
    if isinstance(s, dict):
        s = {k: sparse(v) for k, v in s.items() if k != "required"}
        if desc:
            s["description"] = desc
    elif isinstance(s, list):
        s = [sparse(v) for v in s]
    return s


NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
TIME = "Unix time, seconds"


def hexid(digits, what):
    return string("%s ID: %d lowercase hex digits" % (what, digits), pattern="^[0-9a-f]{%d}$" % digits)


def name(what):
    return string("%s name, unique per owner" % what, pattern=NAME)


# ---- error codes ----------------------------------------------------------

# What each code means wherever it is not said more precisely (docs/API.md,
# "Conventions").
CODES = {
    "bad_json": "the body is not a JSON object, or has a duplicate member",
    "bad_request": "a member is missing, unknown or invalid",
    "bad_name": "the name does not match [a-z0-9][a-z0-9-]{0,62}, or reads as an ID",
    "bad_key": "the SSH public key is invalid (the message says why)",
    "bad_password": "a password has 8 to 1024 characters",
    "unauthorized": "no token, or an invalid, expired or revoked one",
    "invalid_credentials": "wrong user name, password or one-time code",
    "otp_required": "the password was right; the user's one-time code is needed too",
    "forbidden": "the caller is a local account that is no hackcloud user, or a disabled user",
    "proof_required": "a member changing their own credentials with a token gives current_password or otp",
    "wrong_proof": "the current password or code given as proof is wrong",
    "rate_limited": "over the per-user request rate (Retry-After says when to come back)",
    "too_many_attempts": "failed logins back off, and one check per user and peer runs at a time (Retry-After)",
    "too_many_imports": "over the caps on concurrent URL imports (Retry-After)",
    "not_found": "no such resource for this caller (another member's answers the same)",
    "conflict": "the name is taken, or the resource is not in a state that allows this",
    "ambiguous": "several owners published an image of that name: name it OWNER/NAME (?owner= in a path)",
    "quota_exceeded": "the create would go over one of the owner's quotas (the message names it)",
    "no_pool": "this installation hands out none (prefix_pool, public_ipv4_pool are empty)",
    "limit": "over prefix_max_per_vm, or (members) prefix_max_per_user",
    "too_many_streams": "over events_max_per_user open event streams (Retry-After)",
    "over_cap": "a limit above the rate cap of the NIC's owner (the message names the cap)",
    "in_use": "the resource is still used",
    "exhausted": "no free identifier or address",
    "no_capacity": "no live host has room for the VM (or the chosen one has not)",
    "elsewhere": "the VM is on another host of the cluster: ask that host's API",
    "busy": "another console is attached to the VM",
    "incomplete": "a file of the image was not uploaded",
    "upload_open": "an upload to the image is still open",
    "too_large": "the body is over the limit",
    "bad_image": "the disk is not raw or qcow2, or has a backing or data file, or is corrupt",
    "internal": "the host failed (the store, memory, a file)",
    "unavailable": "hcd is stopping, or cannot do this now",
    "auth_unavailable": "the LDAP server cannot be reached",
    "storage": "writing the file failed (disk full?)",
    "vm_not_stopped": "the operation works on a stopped VM only",
    "newer_snapshots": "restoring an older snapshot discards the newer ones: say discard_newer",
    "snapshot_failed": "qemu-img or QEMU failed on the VM's disks (the message says why)",
    "exists": "the name is taken",
    "no_root_disk": "the VM has no root disk",
}

STATUS_TEXT = {
    400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
    409: "Conflict", 413: "Body too large", 422: "Unusable image", 426: "Upgrade required",
    429: "Too many requests",
    500: "Internal error", 503: "Unavailable", 507: "Insufficient storage",
}

# ---- objects --------------------------------------------------------------

# The quotas of a user (src/store/quotas.c quota_names[]).
QUOTAS = ["vms", "vcpus", "memory_mib", "disk_bytes", "networks", "images", "image_bytes"]

# A bandwidth limit (docs/API.md, Bandwidth and traffic; common/rate.h).
LIMIT_DIR = body({
    "rate": integer("bits per second", minimum=8000, maximum=400000000000),
    "burst": nullable(integer("bytes; null or left out: 10 ms at the rate, at least 16 KiB",
                              minimum=4096, maximum=1073741824)),
}, ["rate"], "a token bucket")
LIMIT = body({
    "in": nullable({**LIMIT_DIR, "description": "traffic to the VM; null: none"}),
    "out": nullable({**LIMIT_DIR, "description": "traffic from the VM; null: none"}),
}, desc="per direction; a direction left out stays as it is (PATCH) or has none (create)")
LIMIT_SHOWN = answer({
    "in": nullable(answer({"rate": integer("bits per second"),
                           "burst": nullable(integer("bytes; null: the default"))})),
    "out": nullable(answer({"rate": integer("bits per second"),
                            "burst": nullable(integer("bytes; null: the default"))})),
}, "a limit as set; null per direction: none")
TRAFFIC = answer({
    "bytes_in": integer("to the VM", minimum=0), "bytes_out": integer("from the VM", minimum=0),
    "packets_in": integer(minimum=0), "packets_out": integer(minimum=0),
})
USAGE_FIGURES = {
    **TRAFFIC["properties"],
    "vcpu_seconds": integer("vCPUs × seconds running", minimum=0),
    "memory_mib_seconds": integer("MiB × seconds running", minimum=0),
    "disk_mib_seconds": integer("MiB of disks × seconds existing", minimum=0),
    "vcpu_hours": number(), "memory_gib_hours": number(), "disk_gib_hours": number(),
}

USER = {
    "id": hexid(8, "user"),
    "name": name("user"),
    "role": string(enum=["admin", "member"]),
    "auth": string("the user's backends, a comma list (empty: none)",
                   pattern="^((file|ldap|otp)(,(file|ldap|otp))*)?$"),
    "enabled": boolean(),
    "otp": boolean("a TOTP secret is enrolled"),
    "created": integer(TIME),
}

VM = answer({
    "id": hexid(10, "VM"),
    "name": name("VM"),
    "state": string("what the host agent last observed",
                    enum=["stopped", "starting", "running", "stopping", "error"]),
    "desired": string("what the user asked for (deleted: on its way out)",
                      enum=["running", "stopped", "deleted"]),
    "cpus": integer(minimum=1, maximum=64),
    "memory_mib": integer(minimum=32, maximum=1048576),
    "image": string("the image's name"),
    "image_id": hexid(8, "image"),
    "owner": string("the owner's user name"),
    "host": nullable(string("the host it is placed on; null: none yet")),
    "error": nullable(string("why the state is error")),
    "created": integer(TIME),
    "nics": array(answer({
        "mac": string("02:00: + the NIC's ID", pattern="^02:00(:[0-9a-f]{2}){4}$"),
        "ifname": string("the tap on the host: v + the MAC's 12 hex digits", pattern="^v[0-9a-f]{12}$"),
        "network": string("the network's name"),
        "network_id": hexid(6, "network"),
        "ipv6": nullable(string("the network's /64 + the modified EUI-64 of the MAC")),
        "ipv4": nullable(string("allocated from the network's subnet; null without IPv4")),
        "prefixes": array(string("e.g. 2001:db8:100::/64"), "the NIC's routed IPv6 prefixes"),
        "public_ipv4": nullable(string("the public IPv4 address mapped to the NIC's IPv4 one")),
    }), "one per network, in order"),
    "keys": array(answer({"name": string(), "fingerprint": string()}),
                  "the SSH keys the VM was given at creation"),
    "user_data_size": integer("bytes of user data (0: none); GET .../user-data has them", minimum=0),
    "config_drive": boolean("a NoCloud cidata seed is attached as a CD-ROM"),
    "disk_size": nullable(integer("bytes of the root disk; null: the image's own size")),
    "disks": array(answer({"size": integer("bytes")}), "extra data disks, vdb, vdc, ..."),
    "ephemeral": boolean("restarted elsewhere, from its image, when its host dies"),
    "metadata_tokens": string("required: the metadata service answers IMDSv2 sessions only",
                              enum=["optional", "required"]),
})


SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": string("what went wrong, for programs (the codes of each answer are listed with it)"),
                "message": string("what went wrong, for people: one line of printable ASCII"),
            },
        }},
    },
    "Empty": answer({}, "an empty object: done"),
    "Info": answer({
        "version": string("hcd's version"),
        "host": string("this host's name (host_name)"),
        "accel": string("the accelerator in use, after auto was resolved", enum=["kvm", "tcg"]),
        "schema": integer("the store's schema version"),
        "wakeups": answer({
            "local": integer("a change made through this hcd"),
            "notify": integer("a change another hcd announced"),
            "resync": integer("the periodic resync, or a reload"),
            "retry": integer("a transition in flight, or a failed step tried again"),
        }, "this host agent's passes since hcd started, by what caused them"),
        "last_pass_ms": number("how long this host agent's last pass took", minimum=0),
    }),
    "Vm": VM,
    "VmFields": sparse(VM, "a VM of a list: every member, or those ?fields= names"),
    "VmCreate": body({
        "name": name("VM"),
        "image": string("a ready image: ID, NAME (own, else public) or OWNER/NAME"),
        "cpus": nullable(integer("default 1", minimum=1, maximum=64)),
        "memory_mib": nullable(integer("default 256", minimum=32, maximum=1048576)),
        "networks": nullable(array({"oneOf": [
            string("network ID, NAME or OWNER/NAME"),
            body({"network": string("network ID, NAME or OWNER/NAME"), "limit": nullable(LIMIT)},
                 ["network"], "a NIC with limits of its own"),
        ]}, "one NIC per entry, in order", maxItems=16)),
        "limit": nullable({**LIMIT, "description": "the limits of every NIC (an entry's own replaces "
                                                   "the directions it names)"}),
        "start": nullable(boolean("default true; false creates it stopped")),
        "keys": nullable(array(string("key ID, NAME or OWNER/NAME"),
                               "default: all of the owner's keys; [] none", maxItems=64)),
        "user_data": nullable(string("base64 (RFC 4648, padded) of at most 64 KiB, kept verbatim",
                                     format="byte")),
        "config_drive": nullable(boolean("also attach a NoCloud cidata seed (default false)")),
        "disk_size": nullable(integer("bytes of the root disk: a multiple of 512, 1 MiB..16 TiB, "
                                      "at least a disk image's size", minimum=1048576)),
        "disks": nullable(array(body({"size": integer("bytes, as disk_size", minimum=1048576)}, ["size"]),
                                "extra empty data disks", maxItems=8)),
        "host": nullable(string("admins only: place it on this host")),
        "ephemeral": nullable(boolean("default false")),
        "metadata_tokens": nullable(string("default: hcd's metadata_tokens setting",
                                           enum=["optional", "required"])),
    }, ["name", "image"]),
    "VmUpdate": body({
        "metadata_tokens": nullable(string(enum=["optional", "required"])),
        "cpus": nullable(integer("vCPUs: at the next start, or by CPU hotplug while it runs (at most "
                                 "the maxcpus it started with)", minimum=1, maximum=64)),
        "memory_mib": nullable(integer("memory: at the next start, or by the balloon while it runs "
                                       "(at most the memory it started with)", minimum=32,
                                       maximum=1048576)),
    }),
    "DiskGrow": body({"size": integer("the disk's new bytes: a multiple of 512, 1 MiB..16 TiB, at "
                                      "least its size now", minimum=1048576)}, ["size"]),
    "NoFields": body({}, desc="empty, or {}"),
    "VmStop": body({
        "force": nullable(boolean("true: no ACPI request; QEMU quits at once (SIGKILL after"
                                  " a short grace), like pulling the power; default false")),
    }, desc="empty, or {} (ACPI powerdown, then quit after stop_timeout)"),
    "NicAdd": body({"network": string("network ID, NAME or OWNER/NAME"),
                    "limit": nullable({**LIMIT, "description": "the NIC's own limits, stored with it; "
                                                               "null or left out: its network's default"})},
                   ["network"]),
    "Rule": answer({
        "id": integer(minimum=1),
        "vm": hexid(10, "VM"),
        "proto": string(enum=["tcp", "udp", "icmp", "any"]),
        "ports": nullable(string("N or N-M; null: every port", pattern="^[0-9]+(-[0-9]+)?$")),
        "source": nullable(string("an IPv4 or IPv6 prefix; null: anywhere")),
        "created": integer(TIME),
    }, "inbound traffic to the VM's NICs that matches is accepted"),
    "RuleAdd": body({
        "proto": string(enum=["tcp", "udp", "icmp", "any"]),
        "ports": nullable(string("N or N-M within 1..65535, tcp and udp only", pattern="^[0-9]+(-[0-9]+)?$")),
        "source": nullable(string("an IPv4 or IPv6 prefix with its host bits zero")),
    }, ["proto"]),
    "RuleDeleted": answer({"deleted": integer("the rule's ID")}),
    "Prefix": answer({
        "prefix": string("the routed prefix, e.g. 2001:db8:100::/64"),
        "vm": hexid(10, "VM"),
        "nic": string("the NIC's MAC", pattern="^02:00(:[0-9a-f]{2}){4}$"),
        "network": string("the NIC's network"),
        "via": nullable(string("the next hop: the NIC's EUI-64 address")),
        "created": integer(TIME),
    }, "a routed IPv6 prefix of a VM's NIC, from prefix_pool"),
    "PrefixAdd": body({
        "length": nullable(integer("default prefix_length; members at most prefix_min_length",
                                   minimum=16, maximum=64)),
        "nic": nullable(string("the NIC's MAC or tap name (default the first NIC)")),
    }),
    "PrefixDeleted": answer({"deleted": string("the prefix's network address")}),
    "PublicIpv4": answer({
        "address": string("the public IPv4 address"),
        "vm": hexid(10, "VM"),
        "vm_name": string(),
        "nic": string("the NIC's MAC", pattern="^02:00(:[0-9a-f]{2}){4}$"),
        "private_ipv4": nullable(string("the NIC's address it maps to")),
        "created": integer(TIME),
    }, "a public IPv4 address mapped 1:1 to a NIC's IPv4 address"),
    "IpAttach": body({
        "address": nullable(string("an address of public_ipv4_pool (default the lowest free one)")),
        "nic": nullable(string("the NIC's MAC or tap name (default the first NIC with IPv4)")),
    }),
    "IpDetached": answer({"detached": string("the address")}),
    "Image": answer({
        "id": hexid(8, "image"),
        "name": name("image"),
        "sha256": nullable(string("hex SHA-256 of the disk (of a kernel image: of its parts' hashes); "
                                  "null until finalized", pattern="^[0-9a-f]{64}$")),
        "format": string("pending until a disk is checked", enum=["kernel", "raw", "qcow2", "pending"]),
        "boot": string("kernel: booted directly; disk: by firmware", enum=["kernel", "disk"]),
        "size": integer("the virtual size of a disk; the file sizes of a kernel image", minimum=0),
        "owner": string("the owner's user name"),
        "cmdline": nullable(string("a kernel image's command line")),
        "initrd": boolean("a kernel image has an initrd"),
        "state": string(enum=["uploading", "importing", "ready", "error"]),
        "created": integer(TIME),
        "visibility": string("public: readable and bootable by everybody", enum=["private", "public"]),
        "source": nullable(string("the URL of an import; null for uploads")),
        "error": nullable(string("why the state is error")),
        "progress": answer({
            "done": integer("bytes downloaded", minimum=0),
            "total": nullable(integer("bytes in all; null until the server said", minimum=0)),
        }, "while importing"),
    }, optional=["progress"]),
    "ImageUpload": body({
        "name": name("image"),
        "boot": string(enum=["kernel", "disk"]),
        "cmdline": nullable(string("kernel images only: printable ASCII, at most 2048 bytes", maxLength=2048)),
        "initrd": nullable(boolean("kernel images only: an initrd will be uploaded")),
        "visibility": nullable(string("public: admins only", enum=["private", "public"])),
    }, ["name", "boot"], "an upload: the image is made in state uploading"),
    "ImageImport": body({
        "name": name("image"),
        "url": string("absolute http:// or https://, without user:password@", maxLength=2048),
        "sha256": nullable(string("the checksum the file must have", pattern="^[0-9a-fA-F]{64}$")),
        "visibility": nullable(string("public: admins only", enum=["private", "public"])),
        "boot": nullable(string(enum=["disk"])),
    }, ["name", "url"], "an import from the web: the image is made in state importing"),
    "ImageCapture": body({
        "name": name("image"),
        "from_vm": string("the stopped VM (ID, NAME or OWNER/NAME) whose root disk becomes the image"),
        "visibility": nullable(string("public: admins only", enum=["private", "public"])),
    }, ["name", "from_vm"], "an image of a VM's root disk: made in state importing, flattened on a worker"),
    "Snapshot": answer({
        "id": hexid(8, "snapshot"),
        "name": name("snapshot"),
        "vm": hexid(10, "VM"),
        "state": string("ready, or the operation under way", enum=["ready", "creating", "restoring",
                                                                     "deleting", "deleted"]),
        "live": boolean("taken while the VM ran (crash-consistent across its disks)"),
        "bytes": integer("bytes its layers take on the host (counted in disk_bytes)", minimum=0),
        "created": integer(TIME),
    }, "a disk snapshot of every disk of a VM"),
    "SnapshotCreate": body({"name": name("snapshot")}, ["name"]),
    "SnapshotRestore": body({
        "discard_newer": nullable(boolean("restore an older snapshot: the newer ones are deleted")),
    }),
    "UploadedFile": answer({
        "file": string(enum=["kernel", "initrd", "disk"]),
        "size": integer("bytes", minimum=0),
        "sha256": string("the part's hash, taken as it arrived", pattern="^[0-9a-f]{64}$"),
    }),
    "Network": answer({
        "id": hexid(6, "network"),
        "name": name("network"),
        "bridge": string("b + the ID", pattern="^b[0-9a-f]{6}$"),
        "ipv6": string("the /64 prefix"),
        "ipv4": nullable(string("the IPv4 subnet; null: none")),
        "owner": string("the owner's user name"),
        "created": integer(TIME),
        "limit": {**LIMIT_SHOWN, "description": "the default limit of its NICs"},
    }),
    "NetworkUpdate": body({"limit": nullable(LIMIT)}, ["limit"]),
    "NetworkLimit": answer({"id": hexid(6, "network"), "name": name("network"), "limit": LIMIT_SHOWN}),
    "NicUpdate": body({"limit": nullable(LIMIT)}, ["limit"],
                      "the NIC's own limits; null: none (its network's default applies)"),
    "NicStats": answer({
        "mac": string("the NIC's MAC", pattern="^02:00(:[0-9a-f]{2}){4}$"),
        "ifname": string("its tap", pattern="^v[0-9a-f]{12}$"),
        "network": nullable(string("its network; null: removed")),
        "removed": boolean("no longer the VM's (its counters stay)"),
        "limit": LIMIT_SHOWN,
        "effective": answer({d: nullable(answer({
            "rate": integer("bits per second"), "burst": integer("bytes"),
            "source": string(enum=["nic", "network", "cap", "throttle"])})) for d in ("in", "out")},
            "what its tap gets now, and why"),
        "rates": nullable(answer({"in_bps": integer(minimum=0), "out_bps": integer(minimum=0),
                                  "in_pps": integer(minimum=0), "out_pps": integer(minimum=0),
                                  "at": integer(TIME)}, "over the last sampling interval")),
        "month": TRAFFIC,
        "total": TRAFFIC,
    }, optional=("limit", "effective")),
    "VmStats": answer({
        "id": hexid(10, "VM"), "name": name("VM"),
        "month": string("UTC", pattern="^[0-9]{4}-[0-9]{2}$"),
        "quota": nullable(integer("bytes in + out per month; null: none")),
        "used": integer("bytes in + out this month", minimum=0),
        "throttled": boolean("the VM's or its owner's quota is used up"),
        "nics": array(ref("NicStats")),
    }),
    "VmTraffic": body({"quota": nullable(integer("bytes in + out per month; null: none", minimum=1))},
                      ["quota"]),
    "UserTraffic": answer({
        "user": string(),
        "rate_cap": nullable(integer("bits per second no NIC of the user exceeds; null: none")),
        "quota": nullable(integer("bytes in + out per month over the user's VMs; null: none")),
        "month": string(pattern="^[0-9]{4}-[0-9]{2}$"),
        "used": integer(minimum=0),
        "throttled": boolean(),
    }),
    "UserTrafficSet": body({
        "rate_cap": nullable(integer("bits per second; null: none", minimum=8000, maximum=400000000000)),
        "quota": nullable(integer("bytes per month; null: none", minimum=1)),
    }, desc="what is left out stays"),
    "Usage": answer({
        "month": string(pattern="^[0-9]{4}-[0-9]{2}$"),
        "users": array(answer({"user": string(), "vms": integer(minimum=0),
                               "quota": nullable(integer()), "throttled": boolean(),
                               **USAGE_FIGURES})),
        "vms": array(answer({"id": hexid(10, "VM"), "name": string("its name then"),
                             "owner": string(), **USAGE_FIGURES})),
    }),
    "NetworkCreate": body({
        "name": name("network"),
        "ipv6": nullable(string("a /64 prefix, host bits zero (e.g. 2001:db8:1::/64; a member's inside "
                                "the tenant pool), or auto (the default): the pool's first free /64")),
        "ipv4": nullable(string("a subnet /8../30, host bits zero (e.g. 10.0.0.0/24), or auto: the first "
                                "free /24 of tenant_ipv4_pool; none by default")),
        "limit": nullable({**LIMIT, "description": "the default limit of its NICs"}),
    }, ["name"]),
    "Key": answer({
        "id": hexid(8, "key"),
        "name": name("key"),
        "type": string("e.g. ssh-ed25519"),
        "fingerprint": string("as ssh-keygen -lf prints it", pattern="^SHA256:[A-Za-z0-9+/]{43}$"),
        "pubkey": string("the canonical OpenSSH line: type, key data, comment"),
        "owner": string("the owner's user name"),
        "created": integer(TIME),
    }),
    "KeyCreate": body({
        "name": name("key"),
        "pubkey": string("one OpenSSH public key line (a .pub file), at most 16 KiB"),
    }, ["name", "pubkey"]),
    "Host": answer({
        "name": string("host_name of its hcd"),
        "address": nullable(string("its underlay address")),
        "cpus": integer(minimum=0),
        "memory_mib": integer("less reserved_memory_mib", minimum=0),
        "accel": nullable(string()),
        "state": string(enum=["live", "dead"]),
        "drain": boolean("drained: no new VMs"),
        "last_seen": integer("its last heartbeat, " + TIME),
        "created": integer(TIME),
        "vms": integer("its VMs (not deleted)", minimum=0),
        "used_cpus": integer("what its VMs ask for", minimum=0),
        "used_mib": integer("what its VMs ask for", minimum=0),
        "drain_migrate": integer("drained with migrate: VMs moved away at once (0: not)", minimum=0),
    }),
    "HostDrain": body({"drain": boolean("default true"),
                       "migrate": boolean("also move its running VMs away live (needs drain: true)"),
                       "parallel": integer("with migrate: VMs moved at once (default 1)",
                                           minimum=1, maximum=16)}),
    "VmMigrate": body({"host": string("the destination; default: the scheduler picks a live host"
                                      " with room")}),
    "Migration": answer({
        "vm": string("the VM's ID"),
        "vm_name": string(),
        "source": string("the host it leaves"),
        "destination": string("the host it goes to"),
        "state": string(enum=["requested", "prepared", "transferring", "transferred", "done",
                              "failed"]),
        "error": nullable(string("why it failed")),
        "source_done": boolean("the source finished its part (cleaned up, or resumed the VM)"),
        "destination_done": boolean("the destination finished its part (runs the VM, or dropped"
                                    " its copy)"),
        "finished": boolean("over: nothing more happens"),
        "created": integer(TIME),
        "updated": integer(TIME),
        "total_ms": nullable(integer("QEMU's total time of the transfer")),
        "downtime_ms": nullable(integer("QEMU's downtime: how long the guest was paused at the"
                                        " source")),
        "ram_bytes": nullable(integer("RAM bytes sent")),
        "disk_bytes": nullable(integer("disk bytes mirrored")),
    }),
    "Login": body({
        "user": string("user name"),
        "password": nullable(string(maxLength=1024)),
        "otp": nullable(string("a current TOTP code", pattern="^[0-9]{6,8}$")),
    }, ["user"]),
    "LoginResult": answer({
        "token": string("the bearer token (shown once): hct_ + 43 base64url characters",
                        pattern="^hct_[A-Za-z0-9_-]{43}$"),
        "id": hexid(8, "token"),
        "expires": integer(TIME),
        "user": ref("User"),
    }),
    "User": answer(USER),
    "Whoami": answer({**USER, "via": string("how the caller was identified", enum=["token", "peer"])}),
    "Token": answer({
        "id": hexid(8, "token"),
        "owner": string("the owner's user name"),
        "created": integer(TIME),
        "expires": integer(TIME),
        "source": nullable(string("where it was issued to: an address, or unix:UID")),
        "current": boolean("the token this request carries"),
    }),
    "UserCreate": body({
        "name": name("user"),
        "role": nullable(string("default member", enum=["admin", "member"])),
        "auth": nullable({"oneOf": [
            string("a comma list, e.g. file,otp"),
            array(string(enum=["file", "ldap", "otp"])),
        ], "description": "backends: file (needs password), ldap, otp; file and ldap exclude each other"}),
        "password": nullable(string("for the file backend: 8 to 1024 characters")),
    }, ["name"]),
    "UserUpdate": body({
        "role": nullable(string(enum=["admin", "member"])),
        "auth": {"oneOf": [string("a comma list"), array(string(enum=["file", "ldap", "otp"]))]},
        "enabled": boolean("false revokes the user's tokens"),
    }),
    "Proof": body({
        "current_password": nullable(string("proof: the caller's current password")),
        "otp": nullable(string("proof: a current TOTP code", pattern="^[0-9]{6,8}$")),
    }, desc="the proof a member gives when changing their own credentials with a token"),
    "PasswordSet": body({
        "password": string("the new password: 8 to 1024 characters"),
        "current_password": nullable(string("proof: the caller's current password")),
        "otp": nullable(string("proof: a current TOTP code", pattern="^[0-9]{6,8}$")),
    }, ["password"]),
    "OtpEnrolment": answer({
        "user": string(),
        "uri": string("otpauth://totp/... for an authenticator app", pattern="^otpauth://totp/"),
    }),
    "Quota": answer({
        "user": string("the user's name"),
        "quota": answer({q: ref("QuotaEntry") for q in QUOTAS}, "each quota: usage, limit, setting"),
    }),
    "QuotaEntry": answer({
        "used": integer("what the user holds now", minimum=0),
        "limit": nullable(integer("the limit in force; null: unlimited", minimum=0)),
        "set": {"oneOf": [integer("the user's own limit", minimum=0),
                          string("unlimited, or default: the configured default applies",
                                 enum=["unlimited", "default"])]},
    }),
    "QuotaSet": body({q: nullable({"oneOf": [
        integer("a limit (0: none allowed)", minimum=0),
        string("null or default: the configured default; unlimited: none", enum=["unlimited", "default"]),
    ]}) for q in QUOTAS}, desc="the quotas to change; the others stay"),
    "AuditEntry": answer({
        "time": integer(TIME),
        "host": string("the host whose API answered"),
        "seq": integer("its order on that host"),
        "user": nullable(string("who the caller was identified as; null: nobody")),
        "source": string("the peer: an address, or unix:UID"),
        "method": string(),
        "route": string("the route table's pattern, e.g. /v1/vms/{}/start"),
        "ref": nullable(string("the resource named: the path's {} parts, a create's new ID, a login's user")),
        "status": integer("the HTTP status answered"),
        "result": string("ok, or the error code answered"),
    }, "a mutating request, answered or refused (never a body, header or token)"),
    "BackoffEntry": answer({
        "key": string("user:NAME or addr:PEER", pattern="^(user|addr):"),
        "failures": integer(minimum=0),
        "delay": number("seconds the next failure waits"),
        "retry_after": number("seconds until the next attempt is checked (0: now)"),
    }),
}

# ---- path parameters -------------------------------------------------------

PARAMS = {
    "vm": "VM ID (10 hex digits) or name (the caller's own; see owner)",
    "nic": "the NIC's MAC (02:00:...) or tap name (v...)",
    "rule": "the rule's numeric ID",
    "snapshot": "snapshot ID (8 hex digits) or name, of that VM",
    "disk": "root (the root disk) or data0..data7 (the data disks, in order)",
    "image": "image ID (8 hex digits) or name (the caller's own, else the public one; see owner)",
    "part": "the file of the image: kernel, initrd (when announced) or disk",
    "network": "network ID (6 hex digits) or name (the caller's own; see owner)",
    "host": "host name",
    "token": "the token's ID (8 hex digits)",
    "user": "user name",
    "key": "key ID (8 hex digits) or name (the caller's own; see owner)",
    "prefix": "the prefix's network address, e.g. 2001:db8:100:: (a '/' cannot be in a path segment)",
    "address": "the public IPv4 address",
}

# Resources a path names by ref that may be a name of somebody else's (req_ref):
# ?owner=OWNER makes the name OWNER/NAME.
OWNED = ("vm", "image", "network", "key")
OWNER = {"name": "owner", "in": "query", "required": False,
         "description": "the owner of the resource the path names by name: ?owner=alice makes "
                        "{ref} alice/{ref} (a '/' cannot travel inside a path segment)",
         "schema": string(pattern=NAME)}

# ---- operations -------------------------------------------------------------

OPS = []


def op(method, path, access, op_id, tag, summary, *, req=None, ok=None, errors=None,
       desc=None, query=None, deferred=False, headers=None):
    """One row of the route table.

    req: a schema name (JSON body), a list of names (oneOf), "binary"
    (a raw upload), or None (no body; an empty JSON body for BODY_JSON
    routes that take no fields is "NoFields").
    ok: (status, schema name | "array:Name" | media type dict, description).
    errors: {status: [code, ...] or {code: meaning}} the handler gives.
    deferred: the handler finishes on a worker (503 when hcd stops first).
    """
    OPS.append(dict(method=method, path=path, access=access, op_id=op_id, tag=tag, summary=summary,
                    req=req, ok=ok, errors=errors or {}, desc=desc, query=query or [],
                    deferred=deferred, headers=headers or []))


JSON = "application/json"

# daemon
op("GET", "/v1/info", "user", "getInfo", "daemon", "This hcd: version, host, accelerator, store schema",
   ok=(200, "Info", "about this hcd"))
op("GET", "/metrics", "metrics", "getMetrics", "daemon", "This host in the Prometheus text format",
   desc="Its VMs, the host and hcd's own health (docs/API.md, Metrics). Outside /v1/, where scrapers "
        "look. With Accept-Encoding: gzip the answer is gzip-compressed.",
   ok=(200, {"text/plain": {"schema": string("the Prometheus text exposition format, version 0.0.4")}},
       "the metrics"), deferred=True)
op("GET", "/v1/events", "user", "streamEvents", "daemon", "Changes as they commit (server-sent events)",
   desc="A text/event-stream that never ends on its own: a sync event with the current state, then "
        "vm.created, vm.updated, vm.deleted and host.updated as they commit, in the caller's scope "
        "(docs/API.md, Events). Last-Event-ID resumes after that event when nothing after it was "
        "pruned.",
   headers=[{"name": "Last-Event-ID", "in": "header", "required": False,
             "description": "the id: of the last event seen", "schema": string(pattern="^[0-9]+$")}],
   ok=(200, {"text/event-stream": {"schema": string("events: id, event (KIND.ACTION), data (one line "
                                                   "of JSON: kind, action, id, object)")}},
       "the stream"),
   errors={429: ["too_many_streams"]})
op("GET", "/v1/audit", "admin", "listAudit", "auth", "The audit trail of mutating requests, oldest first",
   query=[{"name": "user", "in": "query", "required": False, "description": "only this user's",
           "schema": string(pattern=NAME)},
          {"name": "since", "in": "query", "required": False, "description": "at or after this " + TIME,
           "schema": integer(minimum=0)},
          {"name": "limit", "in": "query", "required": False, "description": "the newest N (default 100)",
           "schema": integer(minimum=1, maximum=10000)}],
   ok=(200, "array:AuditEntry", "the entries"),
   errors={400: {"bad_request": "since or limit out of range", "bad_name": "user is no user name"}})
op("GET", "/v1/openapi.json", "anon", "getOpenapi", "daemon", "This document",
   ok=(200, {JSON: {"schema": {"type": "object", "description": "an OpenAPI 3.0 document"}}},
       "the OpenAPI description of the API, as compiled into this hcd"),
   desc="Public documentation: anybody may fetch it, on either listener, without a token.")

# VMs
op("GET", "/v1/vms", "user", "listVms", "vms", "The caller's VMs (all, for admins)",
   query=[{"name": "fields", "in": "query", "required": False,
           "description": "only these members of each VM, a comma list (nics.X: member X of each NIC)",
           "schema": string(example="id,name,state,nics.ipv6")}],
   ok=(200, "array:VmFields", "the VMs"), errors={400: {"bad_request": "fields names no VM member"}})
op("POST", "/v1/vms", "user", "createVm", "vms", "Create a VM (placed on a host at once)",
   req="VmCreate", ok=(201, "Vm", "the VM"),
   errors={400: ["bad_name"], 403: {"forbidden": "host chosen by a member", "quota_exceeded": None,
                                    "over_cap": None},
           404: {"not_found": "no such image, network, key or host"},
           409: {"conflict": "the name is taken, or the image is not ready", "exhausted": None,
                 "no_capacity": None, "ambiguous": None}})
op("GET", "/v1/vms/{vm}", "user", "getVm", "vms", "A VM", ok=(200, "Vm", "the VM"))
op("DELETE", "/v1/vms/{vm}", "user", "deleteVm", "vms", "Delete a VM (stopped first; asynchronous)",
   ok=(202, "Vm", "the VM with desired: deleted; from now on it is invisible and its name free"))
op("PATCH", "/v1/vms/{vm}", "user", "updateVm", "vms", "Change a VM's size or settings",
   desc="A stopped VM takes any size at its next start; a running one is resized at once by its "
        "agent (balloon, CPU hotplug) within what its QEMU started with. The owner's quotas and "
        "the host's room count the growth (docs/API.md, Resize).",
   req="VmUpdate", ok=(200, "Vm", "the VM"),
   errors={403: ["quota_exceeded"],
           409: {"conflict": "starting or stopping, or beyond what its running QEMU started with: "
                             "a restart is needed", "no_capacity": "its host has no room"}})
op("POST", "/v1/vms/{vm}/disks/{disk}/grow", "user", "growVmDisk", "vms", "Grow a disk",
   desc="Only ever larger. A running VM's disk grows at once (QMP block_resize: the guest sees "
        "the new size), a stopped one's at its next start (qemu-img resize). The owner's "
        "disk_bytes quota counts the growth.",
   req="DiskGrow", ok=(202, "Vm", "the VM with the disk's new size"),
   errors={400: {"bad_request": "not a disk name, or a bad size"}, 403: ["quota_exceeded"],
           404: {"not_found": "no such VM, or it has no such disk"},
           409: {"conflict": "smaller than the disk is now"}})
op("POST", "/v1/vms/{vm}/start", "user", "startVm", "vms", "Ask for the VM to run",
   req="NoFields", ok=(202, "Vm", "the VM with desired: running"))
op("POST", "/v1/vms/{vm}/stop", "user", "stopVm", "vms", "Ask for the VM to stop",
   req="VmStop", ok=(202, "Vm", "the VM with desired: stopped"))
op("POST", "/v1/vms/{vm}/reboot", "user", "rebootVm", "vms", "Reset a running VM (QMP system_reset)",
   req="NoFields", ok=(202, "Vm", "the VM"),
   errors={409: {"conflict": "the VM is not running, or the reset failed", "elsewhere": None}})
op("POST", "/v1/vms/{vm}/migrate", "admin", "migrateVm", "vms",
   "Move a running VM to another host while it runs (live migration)",
   desc="The hosts carry it out (docs/API.md, Live migration); follow it with GET .../migration.",
   req="VmMigrate", ok=(202, "Migration", "the migration, requested"),
   errors={404: ["not_found"], 409: {"conflict": "the VM does not run, migrates already, or the host"
                                     " is its own, draining or without an underlay address",
                                     "no_capacity": "no host (or not the one named) has room or a free"
                                     " port"}})
op("GET", "/v1/vms/{vm}/migration", "admin", "getVmMigration", "vms", "The VM's last live migration",
   ok=(200, "Migration", "the migration as it stands"), errors={404: ["not_found"]})
op("GET", "/v1/vms/{vm}/log", "user", "getVmLog", "vms", "The VM's serial console output",
   query=[{"name": "tail", "in": "query", "required": False,
           "description": "the last BYTES of it (default 256 KiB)",
           "schema": integer(minimum=1, maximum=16777216)}],
   ok=(200, {"text/plain": {"schema": string()}}, "the serial output captured so far"),
   errors={400: {"bad_request": "tail out of range"}, 409: ["elsewhere"]})
op("POST", "/v1/vms/{vm}/console", "user", "attachVmConsole", "vms", "Attach to the serial console",
   desc="An HTTP/1.1 upgrade: after 101 the connection is a raw byte stream to and from the VM's "
        "serial port.",
   headers=[{"name": "Upgrade", "in": "header", "required": True,
             "schema": string(enum=["hc-console"])},
            {"name": "Connection", "in": "header", "required": True, "schema": string(enum=["Upgrade"])}],
   ok=(101, "hc-console", "Switching Protocols: the console"),
   errors={400: {"bad_request": "no Upgrade: hc-console"},
           409: {"conflict": "the VM is not running", "busy": None, "elsewhere": None},
           503: {"unavailable": "the console socket cannot be reached"}})
op("GET", "/v1/vms/{vm}/console", "user", "attachVmConsoleWebSocket", "vms",
   "Attach to the serial console over a WebSocket (the dashboard's)",
   desc="An RFC 6455 opening handshake with the subprotocol hackcloud.console; after 101 the "
        "frames carry the serial port's bytes both ways. A browser, which cannot send "
        "Authorization on a WebSocket, sends its token as a second subprotocol bearer.TOKEN; an "
        "Origin, when sent, must be this listener's own.",
   headers=[{"name": "Upgrade", "in": "header", "required": True, "schema": string(enum=["websocket"])},
            {"name": "Connection", "in": "header", "required": True, "schema": string(example="Upgrade")},
            {"name": "Sec-WebSocket-Version", "in": "header", "required": True, "schema": string(enum=["13"])},
            {"name": "Sec-WebSocket-Key", "in": "header", "required": True,
             "schema": string("base64 of 16 random bytes")},
            {"name": "Sec-WebSocket-Protocol", "in": "header", "required": True,
             "schema": string("hackcloud.console, and bearer.TOKEN from a browser",
                              example="hackcloud.console")}],
   ok=(101, "websocket", "Switching Protocols: the console"),
   errors={400: {"bad_request": "not a WebSocket handshake, a bad key, or no hackcloud.console"},
           403: {"forbidden": "an Origin that is not this listener's"},
           409: {"conflict": "the VM is not running", "busy": None, "elsewhere": None},
           426: {"bad_request": "a WebSocket version other than 13 (Sec-WebSocket-Version: 13 says which)"},
           503: {"unavailable": "the console socket cannot be reached"}})
op("POST", "/v1/vms/{vm}/nics", "user", "addVmNic", "vms", "Add a NIC (hot-plugged into a running VM)",
   req="NicAdd", ok=(201, "Vm", "the VM"),
   errors={403: {"over_cap": None}, 404: {"not_found": "no such VM or network"},
           409: {"conflict": "the VM has 16 NICs", "exhausted": None}})
op("DELETE", "/v1/vms/{vm}/nics/{nic}", "user", "removeVmNic", "vms", "Remove a NIC",
   ok=(200, "Vm", "the VM"), errors={400: {"bad_request": "not a MAC or tap name"}})
op("PATCH", "/v1/vms/{vm}/nics/{nic}", "user", "setVmNicLimit", "traffic",
   "Change a NIC's bandwidth limits (at once, on the running NIC)",
   req="NicUpdate", ok=(200, "NicStats", "the NIC's entry of the VM's stats"),
   errors={403: {"over_cap": None}, 404: {"not_found": "no such VM, or the VM has no such NIC"}})
op("GET", "/v1/vms/{vm}/stats", "user", "getVmStats", "traffic",
   "Traffic of each NIC: limits in force, current rates, month and all-time totals",
   ok=(200, "VmStats", "the VM's traffic"))
op("PATCH", "/v1/vms/{vm}/traffic", "admin", "setVmTrafficQuota", "traffic",
   "Change a VM's monthly traffic quota", req="VmTraffic", ok=(200, "VmStats", "the VM's traffic"))
op("GET", "/v1/vms/{vm}/rules", "user", "listVmRules", "vms", "The VM's inbound firewall rules",
   ok=(200, "array:Rule", "the rules"))
op("POST", "/v1/vms/{vm}/rules", "user", "addVmRule", "vms", "Accept more inbound traffic",
   req="RuleAdd", ok=(201, "Rule", "the rule"),
   errors={409: {"conflict": "the VM has 64 rules"}})
op("DELETE", "/v1/vms/{vm}/rules/{rule}", "user", "deleteVmRule", "vms", "Remove a rule",
   ok=(200, "RuleDeleted", "the rule's ID"), errors={400: {"bad_request": "not a numeric ID"}})
op("GET", "/v1/vms/{vm}/prefixes", "user", "listVmPrefixes", "vms", "The VM's routed IPv6 prefixes",
   ok=(200, "array:Prefix", "the prefixes"))
op("POST", "/v1/vms/{vm}/prefixes", "user", "addVmPrefix", "vms",
   "Route a new IPv6 prefix to a NIC of the VM (the lowest free one of that length)",
   req="PrefixAdd", ok=(201, "Prefix", "the prefix"),
   errors={403: {"forbidden": "a member asking for a shorter prefix than prefix_min_length"},
           404: {"not_found": "no such VM, or no such NIC of it"},
           409: {"no_pool": None, "conflict": "the VM has no NIC", "limit": None,
                 "exhausted": "no prefix of that length is free"}})
op("DELETE", "/v1/vms/{vm}/prefixes/{prefix}", "user", "removeVmPrefix", "vms", "Remove a routed prefix",
   ok=(200, "PrefixDeleted", "its network address"),
   errors={400: {"bad_request": "not an IPv6 network address"}})
op("GET", "/v1/ips", "user", "listPublicIpv4", "vms",
   "The public IPv4 addresses handed out (a member: their VMs')", ok=(200, "array:PublicIpv4", "the addresses"))
op("POST", "/v1/vms/{vm}/ips", "user", "attachVmPublicIpv4", "vms",
   "Map a public IPv4 address to a NIC of the VM",
   req="IpAttach", ok=(201, "PublicIpv4", "the address"),
   errors={400: {"bad_request": "not an IPv4 address, or not in public_ipv4_pool"},
           403: {"forbidden": "a member, when public_ipv4_max_per_user is 0"},
           404: {"not_found": "no such VM, or no such NIC of it"},
           409: {"no_pool": None,
                 "conflict": "the NIC has no IPv4 or a public address already, the address is taken, "
                             "or the owner's limit is reached",
                 "exhausted": "the pool is used up"}})
op("DELETE", "/v1/vms/{vm}/ips/{address}", "user", "detachVmPublicIpv4", "vms", "Unmap a public IPv4 address",
   ok=(200, "IpDetached", "the address"), errors={400: {"bad_request": "not an IPv4 address"}})
op("GET", "/v1/vms/{vm}/snapshots", "user", "listVmSnapshots", "vms", "The VM's disk snapshots, oldest first",
   ok=(200, "array:Snapshot", "the snapshots"))
op("POST", "/v1/vms/{vm}/snapshots", "user", "createVmSnapshot", "vms",
   "Snapshot every disk of a stopped or running VM (running: crash-consistent, one instant)",
   req="SnapshotCreate", ok=(201, "Snapshot", "the snapshot, ready"), deferred=True,
   errors={400: ["bad_name"], 403: {"quota_exceeded": "disk_bytes (snapshot bytes count)"},
           409: {"exists": "the VM has a snapshot of that name", "elsewhere": None,
                 "conflict": "the VM is starting or stopping, or a snapshot operation is under way"},
           500: {"snapshot_failed": "qemu-img or QEMU failed (the message says why); nothing changed"},
           503: {"unavailable": "no agent runs in this hcd"}})
op("GET", "/v1/vms/{vm}/snapshots/{snapshot}", "user", "getVmSnapshot", "vms", "A snapshot",
   ok=(200, "Snapshot", "the snapshot"))
op("POST", "/v1/vms/{vm}/snapshots/{snapshot}/restore", "user", "restoreVmSnapshot", "vms",
   "Bring every disk of a stopped VM back to the snapshot",
   req="SnapshotRestore", ok=(200, "Snapshot", "the snapshot"), deferred=True,
   errors={409: {"vm_not_stopped": "the VM is not stopped", "elsewhere": None,
                 "newer_snapshots": "newer snapshots exist and discard_newer is not true",
                 "conflict": "a snapshot operation is under way"},
           500: {"snapshot_failed": "qemu-img failed; the restore is finished at the next start of hcd"},
           503: {"unavailable": "no agent runs in this hcd"}})
op("DELETE", "/v1/vms/{vm}/snapshots/{snapshot}", "user", "deleteVmSnapshot", "vms",
   "Delete a snapshot of a stopped VM (its layer merged into the next one)",
   ok=(200, "Snapshot", "the snapshot, state deleted"), deferred=True,
   errors={409: {"vm_not_stopped": "the VM is not stopped", "elsewhere": None,
                 "conflict": "a snapshot operation is under way"},
           500: {"snapshot_failed": "qemu-img failed; the delete is finished at the next start of hcd"},
           503: {"unavailable": "no agent runs in this hcd"}})
op("GET", "/v1/vms/{vm}/user-data", "user", "getVmUserData", "vms", "The VM's user data, verbatim",
   ok=(200, {"application/octet-stream": {"schema": string(format="binary")}},
       "the bytes given at creation (empty: none)"))

# images
op("GET", "/v1/images", "user", "listImages", "images", "The caller's images and the public ones",
   ok=(200, "array:Image", "the images"))
op("POST", "/v1/images", "user", "createImage", "images",
   "Begin an upload, import from a URL, or capture a stopped VM's root disk",
   req=["ImageUpload", "ImageImport", "ImageCapture"],
   ok=(201, "Image", "the image, uploading or importing"),
   errors={400: ["bad_name"],
           403: {"forbidden": "a member publishing a public image", "quota_exceeded": "images"},
           404: {"not_found": "from_vm: no such VM"},
           409: {"conflict": "the name is taken, or from_vm is busy", "exhausted": None,
                 "vm_not_stopped": "from_vm is not stopped", "no_root_disk": "from_vm has no root disk",
                 "elsewhere": None},
           429: ["too_many_imports"], 503: {"unavailable": "this hcd does not import from URLs"}})
op("GET", "/v1/images/{image}", "user", "getImage", "images", "An image (with progress while importing)",
   ok=(200, "Image", "the image"), errors={409: ["ambiguous"]})
op("DELETE", "/v1/images/{image}", "user", "deleteImage", "images",
   "Delete an image (an import in flight stops)", ok=(200, "Image", "the deleted image"),
   errors={403: {"forbidden": "somebody else's public image"},
           409: {"conflict": "being finalized", "in_use": "a VM uses it", "ambiguous": None}})
op("PUT", "/v1/images/{image}/files/{part}", "user", "uploadImageFile", "images",
   "Upload one file of the image, streamed", req="binary",
   ok=(200, "UploadedFile", "the part, its size and hash"), deferred=True,
   errors={403: {"forbidden": "somebody else's public image"},
           409: {"conflict": "the image takes no such file now: not uploading, being finalized, "
                             "or its upload phase ended meanwhile", "ambiguous": None},
           413: {"too_large": "over 64 GiB"}, 507: ["storage"]})
op("POST", "/v1/images/{image}/finalize", "user", "finalizeImage", "images",
   "Check the uploaded files and make the image ready", req="NoFields",
   ok=(200, "Image", "the image, ready"), deferred=True,
   errors={403: {"forbidden": "somebody else's public image", "quota_exceeded": "image_bytes"},
           409: {"conflict": "not uploading, or a finalize of it runs already",
                 "incomplete": None, "upload_open": None, "ambiguous": None},
           422: ["bad_image"]})

# networks
op("GET", "/v1/networks", "user", "listNetworks", "networks", "The caller's networks (all, for admins)",
   ok=(200, "array:Network", "the networks"))
op("POST", "/v1/networks", "user", "createNetwork", "networks",
   "Create a network (prefixes given, or taken from the tenant pools)",
   desc="A network never overlaps another one nor a route or address of the host (read through "
        "netlink when the request comes).",
   req="NetworkCreate", ok=(201, "Network", "the network"), deferred=True,
   errors={400: ["bad_name"],
           403: {"forbidden": "a member's prefix outside the tenant pool, or IPv4 without tenant_ipv4_pool",
                 "quota_exceeded": "networks", "over_cap": None},
           409: {"conflict": "the name is taken, or a prefix overlaps a network or the host's routes",
                 "exhausted": "no free prefix left in the pool"},
           503: {"unavailable": "the host's routes cannot be read"}})
op("GET", "/v1/networks/{network}", "user", "getNetwork", "networks", "A network",
   ok=(200, "Network", "the network"))
op("DELETE", "/v1/networks/{network}", "user", "deleteNetwork", "networks", "Delete a network",
   ok=(200, "Network", "the deleted network"), errors={409: {"in_use": "NICs are on it"}})
op("PATCH", "/v1/networks/{network}", "user", "setNetworkLimit", "networks",
   "Change the default limit of a network's NICs (at once)",
   req="NetworkUpdate", ok=(200, "NetworkLimit", "the network's default"),
   errors={403: {"over_cap": None}})

# hosts
op("GET", "/v1/hosts", "admin", "listHosts", "hosts", "Every host: capacity, load, liveness",
   ok=(200, "array:Host", "the hosts"))
op("GET", "/v1/hosts/{host}", "admin", "getHost", "hosts", "A host", ok=(200, "Host", "the host"))
op("POST", "/v1/hosts/{host}/drain", "admin", "drainHost", "hosts", "Drain a host (no new VMs), or undrain it",
   req="HostDrain", ok=(200, "Host", "the host"))

# logins, users and tokens
op("POST", "/v1/login", "anon", "login", "auth", "Log in: a bearer token",
   req="Login", ok=(200, "LoginResult", "the token and the user"), deferred=True,
   errors={400: ["bad_name"],
           401: {"invalid_credentials": None,
                 "otp_required": "the right password of a user with OTP, without a code"},
           429: ["too_many_attempts"], 503: ["auth_unavailable"]})
op("POST", "/v1/logout", "user", "logout", "auth", "Revoke the token this request carries",
   req="NoFields", ok=(200, "Empty", "revoked"),
   errors={400: {"bad_request": "the request carries no token"}})
op("GET", "/v1/whoami", "user", "whoami", "auth", "The caller", ok=(200, "Whoami", "the caller's user"))
op("GET", "/v1/tokens", "user", "listTokens", "auth", "Live tokens (the caller's; all, for admins)",
   ok=(200, "array:Token", "the tokens"))
op("DELETE", "/v1/tokens/{token}", "user", "deleteToken", "auth", "Revoke a token",
   ok=(200, "Empty", "revoked"))
op("GET", "/v1/users", "user", "listUsers", "users", "Users (a member sees only themselves)",
   ok=(200, "array:User", "the users"))
op("POST", "/v1/users", "admin", "createUser", "users", "Create a user",
   req="UserCreate", ok=(201, "User", "the user"), deferred=True,
   errors={400: ["bad_name", "bad_password"], 409: {"conflict": "the name is taken"}})
op("GET", "/v1/users/{user}", "user", "getUser", "users", "A user (a member: only themselves)",
   ok=(200, "User", "the user"))
op("PATCH", "/v1/users/{user}", "user", "updateUser", "users", "Change a user's role, backends or state (admins)",
   req="UserUpdate", ok=(200, "User", "the user"),
   errors={400: {"bad_request": "invalid member, or root made a member or disabled"},
           403: {"forbidden": "the caller is no admin"}})
op("DELETE", "/v1/users/{user}", "user", "deleteUser", "users", "Delete a user (admins)",
   ok=(200, "Empty", "deleted"),
   errors={400: {"bad_request": "root cannot be deleted"}, 403: {"forbidden": "the caller is no admin"},
           409: {"conflict": "the user still owns resources"}})
PROOF_ERRORS = {403: ["proof_required", "wrong_proof"], 429: ["too_many_attempts"],
                503: ["auth_unavailable"]}
op("POST", "/v1/users/{user}/password", "user", "setUserPassword", "users",
   "Set a user's password (self or admin); revokes their other tokens",
   req="PasswordSet", ok=(200, "Empty", "changed"), deferred=True,
   errors={400: ["bad_password"], **PROOF_ERRORS})
op("POST", "/v1/users/{user}/otp", "user", "enrolUserOtp", "users",
   "Enrol a new TOTP secret (self or admin); revokes their other tokens",
   req="Proof", ok=(200, "OtpEnrolment", "the secret as an otpauth:// URI"), deferred=True,
   errors=PROOF_ERRORS)
op("DELETE", "/v1/users/{user}/otp", "user", "removeUserOtp", "users",
   "Remove a user's TOTP secret (self or admin); revokes their other tokens",
   req="Proof", ok=(200, "Empty", "removed"), deferred=True, errors=PROOF_ERRORS)
op("GET", "/v1/users/{user}/quota", "user", "getUserQuota", "users",
   "A user's usage against their quotas (self or admin)", ok=(200, "Quota", "the quotas"))
op("PATCH", "/v1/users/{user}/quota", "admin", "setUserQuota", "users", "Change a user's quotas",
   desc="Lowering a limit below what is in use refuses new creates only.",
   req="QuotaSet", ok=(200, "Quota", "the quotas"))
op("GET", "/v1/users/{user}/traffic", "user", "getUserTraffic", "traffic",
   "A user's rate cap, monthly traffic quota and its use (self or admin)",
   ok=(200, "UserTraffic", "the user's traffic settings"))
op("PATCH", "/v1/users/{user}/traffic", "admin", "setUserTraffic", "traffic",
   "Change a user's rate cap and monthly traffic quota",
   req="UserTrafficSet", ok=(200, "UserTraffic", "the user's traffic settings"))
op("GET", "/v1/usage", "user", "getUsage", "traffic",
   "What each VM and user used in a month: traffic, vCPU-, memory- and disk-hours",
   query=[{"name": "user", "in": "query", "required": False,
           "description": "only this user's (members: only themselves)", "schema": string(pattern=NAME)},
          {"name": "month", "in": "query", "required": False, "description": "YYYY-MM, UTC (default: now)",
           "schema": string(pattern="^[0-9]{4}-[0-9]{2}$")}],
   ok=(200, "Usage", "the month's usage"),
   errors={400: {"bad_request": "month is not YYYY-MM"}, 404: {"not_found": "no such user for the caller"}})
op("GET", "/v1/auth/backoff", "admin", "getAuthBackoff", "auth", "The failed-login backoff state",
   ok=(200, "array:BackoffEntry", "one entry per user name and per peer"))

# keys
op("GET", "/v1/keys", "user", "listKeys", "keys", "The caller's SSH keys (all, for admins)",
   ok=(200, "array:Key", "the keys"))
op("POST", "/v1/keys", "user", "createKey", "keys", "Add an SSH public key",
   req="KeyCreate", ok=(201, "Key", "the key"),
   errors={400: ["bad_name", "bad_key"], 409: {"conflict": "the name is taken", "exhausted": None}})
op("GET", "/v1/keys/{key}", "user", "getKey", "keys", "An SSH key", ok=(200, "Key", "the key"))
op("DELETE", "/v1/keys/{key}", "user", "deleteKey", "keys", "Delete an SSH key",
   ok=(200, "Key", "the deleted key"), errors={409: {"in_use": "a VM has it"}})

# Routes of the table that are not part of the API this document describes
# (say why): (method, pattern as in routes.c, why).  The openapi test
# counts them as accounted for; it still fails when one is not in the table.
NOT_DESCRIBED = [
    ("GET", "/", "the dashboard's page (docs/API.md, Dashboard): HTML for browsers, not the API"),
    ("GET", "/ui/*", "the dashboard's files (scripts, styles, images), not the API"),
]

# ---- assembling the document ------------------------------------------------


def common_errors(o):
    """The errors any route of this kind can give before or beside its
    handler (src/api/http.c, identity.c, req.c)."""
    e = {500: ["internal"]}
    if o["access"] != "anon":
        e[401] = ["unauthorized"]
        e[403] = {"forbidden": CODES["forbidden"] + {
            "admin": "; or the caller is no admin",
            "metrics": "; or the caller is neither an admin nor the metrics token"}.get(o["access"], "")}
        e[429] = ["rate_limited"]
    if "{" in o["path"]:
        e[404] = ["not_found"]
    if o["req"] == "binary":
        pass
    elif o["req"]:
        e[400] = ["bad_json", "bad_request"]
        e[413] = ["too_large"]
    else:
        e[400] = {"bad_request": "this route takes no body"}
    if o["deferred"]:
        e[503] = {"unavailable": "hcd is stopping"}
    return e


def merge_errors(*sets):
    out = {}
    for s in sets:
        for status, codes in s.items():
            d = out.setdefault(status, {})
            items = codes.items() if isinstance(codes, dict) else ((c, None) for c in codes)
            for code, meaning in items:
                if code not in CODES:
                    raise SystemExit("openapi.py: unknown error code %r (add it to CODES)" % code)
                if code not in d:
                    d[code] = meaning or CODES[code]
                elif meaning and meaning not in d[code]:
                    d[code] += "; or " + meaning   # the route's own reason, beside the common one
    return out


def error_response(status, codes):
    desc = "%s. " % STATUS_TEXT[status] + "; ".join("`%s`: %s" % (c, m) for c, m in codes.items())
    schema = {"allOf": [ref("Error"), {"type": "object", "properties": {"error": {
        "type": "object", "properties": {"code": {"type": "string", "enum": list(codes)}}}}}]}
    r = {"description": desc, "content": {JSON: {"schema": schema}}}
    if status == 429:
        r["headers"] = {"Retry-After": {"description": "seconds to wait before trying again",
                                        "schema": integer(minimum=1)}}
    return r


def ok_response(ok):
    """(status, what, description): what is a schema name, "array:Name", a
    content dict, or for 101 the protocol switched to."""
    status, what, desc = ok
    r = {"description": desc}
    if status == 101:
        r["headers"] = {"Upgrade": {"schema": string(enum=[what])},
                        "Connection": {"schema": string(enum=["Upgrade"])}}
        if what == "websocket":
            r["headers"]["Sec-WebSocket-Accept"] = {"schema": string("RFC 6455 section 4.2.2")}
            r["headers"]["Sec-WebSocket-Protocol"] = {"schema": string(enum=["hackcloud.console"])}
    elif isinstance(what, dict):
        r["content"] = what
    elif what.startswith("array:"):
        r["content"] = {JSON: {"schema": array(ref(what[6:]))}}
    else:
        r["content"] = {JSON: {"schema": ref(what)}}
    return status, r


def request_body(req):
    if req == "binary":
        return {"required": True, "description": "the file's bytes, streamed (at most 64 GiB)",
                "content": {"application/octet-stream": {"schema": string(format="binary")}}}
    if isinstance(req, list):
        schema = {"oneOf": [ref(n) for n in req]}
    else:
        schema = ref(req)
    return {"required": req not in ("NoFields", "HostDrain", "VmUpdate", "UserUpdate", "Proof", "QuotaSet",
                                    "PrefixAdd", "IpAttach", "UserTrafficSet"),
            "content": {JSON: {"schema": schema}}}


def operation(o):
    params = re.findall(r"\{(\w+)\}", o["path"])
    for p in params:
        if p not in PARAMS:
            raise SystemExit("openapi.py: %s %s: path parameter {%s} not in PARAMS" % (o["method"], o["path"], p))
    out = {"operationId": o["op_id"], "summary": o["summary"], "tags": [o["tag"]],
           "x-hackcloud-access": o["access"]}
    if o["desc"]:
        out["description"] = o["desc"]
    if o["access"] == "anon":
        out["security"] = []
    elif o["access"] == "admin":
        out["description"] = (out.get("description", "") + " Admins only.").strip()
    plist = [{"$ref": "#/components/parameters/" + p} for p in params]
    if params and params[0] in OWNED:
        plist.append({"$ref": "#/components/parameters/owner"})
    plist += o["query"] + o["headers"]
    if plist:
        out["parameters"] = plist
    if o["req"]:
        out["requestBody"] = request_body(o["req"])
    status, ok = ok_response(o["ok"])
    responses = {str(status): ok}
    errors = merge_errors(common_errors(o), o["errors"])
    for s in sorted(errors):
        responses[str(s)] = error_response(s, errors[s])
    out["responses"] = responses
    return out


def version():
    text = (HERE.parent / "meson.build").read_text()
    m = re.search(r"^\s*version\s*:\s*'([^']+)'", text, re.M)
    return m.group(1) if m else "0"


DESCRIPTION = """\
hackcloud's REST/JSON API, served by hcd on STATE_DIR/api.sock and on the
optional TCP listener (`listen =` in hcd.conf).  docs/API.md is the prose
reference; this document says the same for programs.

Who may call: with a bearer token (`Authorization: Bearer hct_...`, from
POST /v1/login) on either listener; without one, on the unix socket only,
the peer's credentials: root is the admin `root`, a local person's account
the hackcloud user of the same name.  Each operation's
`x-hackcloud-access` says who may call it: `user` (anybody identified),
`admin` (admins only; others get 403), `anon` (nobody needs to be
identified), `metrics` (admins, or the bearer of the token in
metrics_token_file).  A member sees only their own resources: anything else
answers 404, as if it did not exist.

Bodies are JSON objects of at most max_body bytes (4 KiB for anon
routes); unknown or duplicate members are refused.  Every error is
`{"error": {"code": ..., "message": ...}}`; each error response below
lists its codes.  `{vm}`, `{image}`, `{network}`, `{key}` are an ID or a
name: NAME is the caller's own (images: else the public one), and
`?owner=OWNER` makes it OWNER/NAME; references inside bodies take ID,
NAME or OWNER/NAME.  Besides the routes below, an unknown path answers 404 `not_found` and
a known path with another method 405 `method_not_allowed` (after 401/403
when the caller cannot be identified)."""


def share_responses(paths):
    """Error responses that several operations give alike become one
    components/responses entry each, named for their status and codes."""
    seen = {}
    for item in paths.values():
        for o in item.values():
            for status, r in o["responses"].items():
                if int(status) >= 400:
                    key = json.dumps(r, sort_keys=True)
                    seen.setdefault(key, []).append((o["responses"], status, r))
    shared, names = {}, {}
    for key, uses in seen.items():
        if len(uses) < 2:
            continue
        status, r = uses[0][1], uses[0][2]
        codes = r["content"][JSON]["schema"]["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
        base = "E%s_%s" % (status, "_".join(codes))
        n = names[base] = names.get(base, 0) + 1
        rname = base if n == 1 else "%s_%d" % (base, n)
        shared[rname] = r
        for responses, st, _ in uses:
            responses[st] = {"$ref": "#/components/responses/" + rname}
    return dict(sorted(shared.items()))


def document():
    paths = {}
    for o in OPS:
        item = paths.setdefault(o["path"], {})
        m = o["method"].lower()
        if m in item:
            raise SystemExit("openapi.py: %s %s twice" % (o["method"], o["path"]))
        item[m] = operation(o)
    responses = share_responses(paths)
    params = {p: {"name": p, "in": "path", "required": True, "description": d, "schema": string()}
              for p, d in PARAMS.items()}
    params["owner"] = OWNER
    tags = [
        {"name": "daemon", "description": "hcd itself"},
        {"name": "vms", "description": "virtual machines, their NICs, firewall rules, console and log"},
        {"name": "images", "description": "uploads in three steps, imports from the web in one"},
        {"name": "networks", "description": "IPv6-first networks: a bridge, dnsmasq and a /64 each"},
        {"name": "keys", "description": "SSH public keys"},
        {"name": "hosts", "description": "the hosts of a cluster (admins)"},
        {"name": "auth", "description": "logging in and out, tokens, the backoff state"},
        {"name": "users", "description": "users and their credentials"},
        {"name": "traffic", "description": "bandwidth limits, traffic counters, quotas and usage"},
    ]
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "hackcloud API", "version": version(), "description": DESCRIPTION,
                 "license": {"name": "MIT"}},
        "tags": tags,
        "security": [{"bearerToken": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerToken": {
                "type": "http", "scheme": "bearer", "bearerFormat": "hct_ + 43 base64url characters",
                "description": "a token from POST /v1/login (on the unix socket, a call without one "
                               "is the peer's local account)"}},
            "parameters": params,
            "responses": responses,
            "schemas": SCHEMAS,
        },
    }
    if NOT_DESCRIBED:
        doc["x-hackcloud-not-described"] = [{"method": m, "path": p, "why": w} for m, p, w in NOT_DESCRIBED]
    return doc


def render():
    return json.dumps(document(), indent=1) + "\n"


def main():
    text = render()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        with open(sys.argv[2], encoding="utf-8") as f:
            if f.read() != text:
                sys.exit("%s is not what docs/openapi.py makes: edit docs/openapi.py, then run "
                         "`make openapi` and commit both" % sys.argv[2])
        return
    if len(sys.argv) != 1:
        sys.exit("usage: openapi.py [--check FILE]")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
