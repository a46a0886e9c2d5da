#!/bin/sh
# Succeeds once named on 127.0.0.1#PORT answers the SOA of every zone in
# SERIALS (lines "<zone> <serial>", written by install-zones.sh) with that
# serial, asked by one dig for all zones. A reload loads zones in the
# background, and a fresh named answers SERVFAIL until they are loaded.
#
# Usage: wait-zones.sh PORT SERIALS
set -eu
port=$1 serials=$2
awk '{ print $1, "SOA" }' "$serials" |
	dig -p "$port" @127.0.0.1 +norecurse +time=1 +tries=1 +noall +answer -f - |
	awk -v serials="$serials" -v port="$port" '
		$4 == "SOA" { n = tolower($1); sub(/\.$/, "", n); got[n " " $7] = 1 }
		END {
			while ((getline line < serials) > 0) {
				split(line, f, " ")
				total++
				if (!((tolower(f[1]) " " f[2]) in got)) {
					missing++
					if (missing <= 5) list = list " " f[1] " (serial " f[2] ")"
				}
			}
			if (missing) {
				printf "named on port %s does not yet serve %d of %d zones at their installed serial:%s\n", port, missing, total, list > "/dev/stderr"
				exit 1
			}
		}'
