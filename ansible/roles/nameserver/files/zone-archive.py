#!/usr/bin/env python3
"""Pack a zone set into one archive on the Ansible controller.

Usage: zone-archive.py OUT < zones.json, where zones.json is the role's
dnsroll_zones: a list of {"name": ..., "src": ...}. Writes OUT, a tar.gz
with one member <name>.zone per zone, and prints its SHA-256.

The archive is byte-for-byte the same for the same zones (sorted members,
fixed owner, mode and times, no gzip timestamp), so an unchanged zone set
is an unchanged file and the role's copy of it changes nothing.
"""
import gzip
import hashlib
import io
import json
import sys
import tarfile


def main():
    out = sys.argv[1]
    zones = sorted(json.load(sys.stdin), key=lambda z: z["name"])
    with open(out, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for z in zones:
                    try:
                        with open(z["src"], "rb") as f:
                            data = f.read()
                    except OSError as e:
                        sys.exit("zone %s: cannot read its file %s: %s" % (z["name"], z["src"], e.strerror))
                    info = tarfile.TarInfo(z["name"] + ".zone")
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
