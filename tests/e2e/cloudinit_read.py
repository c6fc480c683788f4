"""Read hackcloud's metadata with cloud-init's own readers (Debian's
cloud-init package, not our code): its EC2 helper and its OpenStack
MetadataReader.  Prints one JSON object for the test to compare with the
API.  Run inside a namespace whose interface presents a registered NIC."""
import json
import sys

from cloudinit.sources.helpers import ec2, openstack

base = "http://169.254.169.254"
md = ec2.get_instance_metadata(metadata_address=base, retries=3, timeout=5)
ud = ec2.get_instance_userdata(metadata_address=base, retries=3, timeout=5)
os_reader = openstack.MetadataReader(base, retries=3, timeout=5)
osd = os_reader.read_v2()
out = {
    "ec2": {k: md.get(k) for k in ("instance-id", "hostname", "local-ipv4", "mac")},
    "ec2_keys": md.get("public-keys"),
    "ec2_user_data": ud.decode() if isinstance(ud, bytes) else ud,
    "os_name": osd["metadata"].get("name"),
    "os_hostname": osd["metadata"].get("hostname"),
    "os_keys": osd["metadata"].get("public_keys"),
    "os_user_data": osd.get("userdata").decode() if isinstance(osd.get("userdata"), bytes) else osd.get("userdata"),
}
json.dump(out, sys.stdout)
