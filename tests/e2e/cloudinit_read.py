"""Read hackcloud's metadata with cloud-init's own readers (Debian's
cloud-init package, not our code).  Prints one JSON object for the test to
compare with the API.  Run inside a namespace whose interface presents a
registered NIC.

  cloudinit_read.py [plain]   its EC2 helper and its OpenStack MetadataReader,
                              as a non-AWS EC2 or OpenStack guest reads them
                              (plain GETs, no IMDSv2 token)
  cloudinit_read.py imdsv2    its EC2 data source as it reads on AWS: a
                              session token from PUT /latest/api/token
                              (_maybe_fetch_api_token), then every GET with
                              the token header (_get_headers), a new token
                              after a 401 (_refresh_stale_aws_token_cb)
"""
import json
import sys

from cloudinit import helpers
from cloudinit.sources import DataSourceEc2
from cloudinit.sources.helpers import ec2, openstack

base = "http://169.254.169.254"
mode = sys.argv[1] if len(sys.argv) > 1 else "plain"


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def ec2_part(md, ud):
    return {
        "ec2": {k: md.get(k) for k in ("instance-id", "hostname", "local-ipv4", "mac")},
        "ec2_keys": md.get("public-keys"),
        "ec2_user_data": text(ud),
    }


if mode == "imdsv2":
    ds = DataSourceEc2.DataSourceEc2({}, None, helpers.Paths({}))
    ds._cloud_name = DataSourceEc2.CloudNames.AWS  # what it detects on AWS
    ds.url_max_wait = 20
    ds.url_timeout = 5
    ds.metadata_address = ds._maybe_fetch_api_token([base])
    out = {"token": bool(ds._api_token)}
    if ds.metadata_address:
        md = ec2.get_instance_metadata(
            "latest", ds.metadata_address, retries=3, timeout=5,
            headers_cb=ds._get_headers, exception_cb=ds._refresh_stale_aws_token_cb)
        ud = ec2.get_instance_userdata(
            "latest", ds.metadata_address, retries=3, timeout=5,
            headers_cb=ds._get_headers, exception_cb=ds._skip_or_refresh_stale_aws_token_cb)
        out.update(ec2_part(md, ud))
    json.dump(out, sys.stdout)
    sys.exit(0)

md = ec2.get_instance_metadata(metadata_address=base, retries=3, timeout=5)
ud = ec2.get_instance_userdata(metadata_address=base, retries=3, timeout=5)
out = ec2_part(md, ud)
try:
    osd = openstack.MetadataReader(base, retries=3, timeout=5).read_v2()
    out.update({
        "os_name": osd["metadata"].get("name"),
        "os_hostname": osd["metadata"].get("hostname"),
        "os_keys": osd["metadata"].get("public_keys"),
        "os_user_data": text(osd.get("userdata")),
    })
except Exception as e:  # a refusal is a result the test checks
    out["os_error"] = str(e)
json.dump(out, sys.stdout)
