#!/usr/bin/env python3
"""Pack a zone set into one archive on the Ansible controller.

Usage: zone-archive.py OUT NAME_RE [ZONES_FILE] < zones.json, where the
zones are the role's dnsroll_zones: a list of {"name": ..., "src": ...},
read from ZONES_FILE when given (dnsroll_zones_file), else from stdin.
Writes OUT, a tar.gz with one member per zone, named by file_name, and
prints its SHA-256.

Every entry is checked first: a name that matches NAME_RE (the role's
nameserver_zone_name_re), listed once, and an absolute src. Names become
file names and named.conf strings, so nothing that could escape either gets
there.

The archive is byte-for-byte the same for the same zones (sorted members,
fixed owner, mode and times, no gzip timestamp), so an unchanged zone set
is an unchanged file and the role's copy of it changes nothing.
"""
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile


# A zone's file name on the server is its name with each "/" (RFC 2317
# classless reverse zones, 0/26.2.0.192.in-addr.arpa) written as ESCAPE,
# then ".zone". NAME_RE admits no "%", so no other zone's file name can be
# the same; install-zones.sh turns ESCAPE back into "/" for named.conf.
# dnsroll's preflight refuses the same names before any VM exists, with
# its twin of file_name and NAME_MAX (TestRoleZoneFileIsTheRoles).
ESCAPE = "%2F"
NAME_MAX = 255  # bytes in a file name on Linux


def file_name(name):
    return name.replace("/", ESCAPE) + ".zone"


def check(zones, name_re):
    """Exits with the role's message when an entry is unusable."""
    if not isinstance(zones, list) or not zones:
        sys.exit("dnsroll_zones must list at least one zone")
    pattern = re.compile(name_re.strip())
    bad = [z for z in zones
           if not isinstance(z, dict)
           or not isinstance(z.get("name"), str) or not pattern.fullmatch(z["name"])
           or len(file_name(z["name"])) > NAME_MAX
           or not isinstance(z.get("src"), str) or not os.path.isabs(z["src"])]
    if bad:
        sys.exit("each dnsroll_zones entry needs name (a zone name without a trailing dot) "
                 "and src (an absolute path on the controller); %d do not, the first: %s"
                 % (len(bad), json.dumps(bad[:3])))
    seen, again = set(), []
    for z in zones:
        if z["name"].lower() in seen:
            again.append(z["name"])
        seen.add(z["name"].lower())
    if again:
        sys.exit("dnsroll_zones must list each zone once; listed again: %s" % ", ".join(again[:5]))


def main():
    out, name_re = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3 and sys.argv[3]:
        with open(sys.argv[3]) as f:
            zones = json.load(f)
    else:
        zones = json.load(sys.stdin)
    check(zones, name_re)
    zones = sorted(zones, key=lambda z: z["name"])
    with open(out, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for z in zones:
                    try:
                        with open(z["src"], "rb") as f:
                            data = f.read()
                    except OSError as e:
                        sys.exit("zone %s: cannot read its file %s: %s" % (z["name"], z["src"], e.strerror))
                    info = tarfile.TarInfo(file_name(z["name"]))
                    info.size = len(data)
                    info.mode = 0o644
                    info.mtime = 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = "root"
                    tar.addfile(info, io.BytesIO(data))
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    print(h.hexdigest())


if __name__ == "__main__":
    main()
