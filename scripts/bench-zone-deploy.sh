#!/bin/sh
# Times the nameserver role deploying N small zones to one lab nameserver
# (connection local, a named of its own on a free port), for the role in
# this tree ("new") and, optionally, the role at an older git revision
# ("old", which copied and checked each zone in its own task).
# See docs/benchmarks-zone-deploy.md.
#
# Usage: scripts/bench-zone-deploy.sh [-o REV] N...
#   -o REV  also time the role as it was at git revision REV
# Prints one line per (role, N): the first run (install and start named),
# a re-run with nothing changed, and a run with one zone's serial raised
# (install and reload), in seconds; and how many task results (module runs,
# loop items included) the first run had, which load does not blur.
set -eu
old=
if [ "${1:-}" = -o ]; then
	old=$2
	shift 2
fi
[ $# -gt 0 ] || { echo "usage: $0 [-o REV] N..." >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/dnsroll-bench-zones.XXXXXX)
cleanup() {
	for pid in "$work"/*/lab/named.pid; do
		[ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
	done
	sleep 1
	rm -rf "$work"
}
trap cleanup EXIT

trees="new=$root/ansible"
if [ -n "$old" ]; then
	mkdir "$work/old-tree"
	git -C "$root" archive "$old" ansible | tar -x -C "$work/old-tree"
	trees="$trees old=$work/old-tree/ansible"
fi

zone() { # zone NAME SERIAL
	printf '$TTL 300\n@\tIN SOA ns1.%s. hostmaster.%s. %s 3600 600 86400 300\n@\tIN NS ns1.%s.\nns1\tIN A 192.0.2.1\nwww\tIN A 192.0.2.10\n' "$1" "$1" "$2" "$1"
}

now() { date +%s.%N; }

printf '%-5s %7s %10s %10s %10s %8s\n' role zones first rerun one-change results
for n in "$@"; do
	for tree in $trees; do
		role=${tree%%=*} dir=${tree#*=}
		run=$work/$role-$n
		mkdir -p "$run/src"
		i=0
		{
			echo '{"dnsroll_zones": ['
			while [ "$i" -lt "$n" ]; do
				zone "z$i.bench.example" 1 >"$run/src/z$i.bench.example.zone"
				[ "$i" -gt 0 ] && echo ,
				printf '{"name": "z%d.bench.example", "src": "%s/src/z%d.bench.example.zone"}' "$i" "$run" "$i"
				i=$((i + 1))
			done
			port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
			printf '], "dnsroll_lab_dir": "%s/lab", "dnsroll_dns_port": %s}\n' "$run" "$port"
		} >"$run/vars.json"
		play() {
			t0=$(now)
			(cd "$dir" && ansible-playbook -i localhost, -c local nameserver.yml -e "@$run/vars.json") >"$run/$1.log" 2>&1 ||
				{ echo "$role $n: $1 failed, see below" >&2; tail -20 "$run/$1.log" >&2; exit 1; }
			t1=$(now)
			echo "$t1 - $t0" | bc
		}
		first=$(play first)
		rerun=$(play rerun)
		grep -q 'changed=0 ' "$run/rerun.log" || echo "$role $n: the re-run changed something" >&2
		zone z0.bench.example 2 >"$run/src/z0.bench.example.zone"
		change=$(play change)
		results=$(grep -cE '^(ok|changed|skipping|fatal): \[' "$run/first.log" || true)
		printf '%-5s %7d %10.1f %10.1f %10.1f %8d\n' "$role" "$n" "$first" "$rerun" "$change" "$results"
		kill "$(cat "$run/lab/named.pid")" 2>/dev/null || true
	done
done
