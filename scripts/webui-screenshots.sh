#!/usr/bin/env bash
# Screenshots of the Temporal Web UI for docs/webui.md (docs/webui/*.png).
#
# It installs what it needs (Debian's chromium and npm with apt-get, playwright-core
# from npm into .lab/webui-screenshots), builds dnsroll, starts a process lab
# with a worker (`dnsroll dev --mode processes`) on free ports, rolls out
# revision A (blue) and then B, and has headless Chromium photograph:
#   docs/webui/rollouts-list.png    the saved view "dnsroll lab" with Phase and Revision columns
#   docs/webui/rollout-steps.png    B's User Metadata tab: its summary and every step by its summary
#   docs/webui/rollout-timeline.png B's timeline, each bar labelled with its step's summary
# Then it stops everything it started. `make screenshots` runs it; about two
# minutes once the tools are installed. Not part of `make test`: it needs
# chromium, and pictures are for people to look at.
#
# Environment:
#   DNSROLL_BIN   a dnsroll binary to use instead of `make build`
#   CHROMIUM      the browser (default /usr/bin/chromium)
#   OUT           where the PNGs go (default docs/webui)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-docs/webui}
work=$root/.lab/webui-screenshots
chromium=${CHROMIUM:-/usr/bin/chromium}
playwright_version=1.65.1

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "webui-screenshots: $*" >&2; }

# 1. Tools.
# npm brings node, which runs the script that drives chromium.
pkgs=''
[ -x "$chromium" ] || pkgs=chromium
command -v npm >/dev/null || pkgs="$pkgs npm"
if [ -n "$pkgs" ]; then
	say "installing Debian's$(printf ' %s' $pkgs)"
	sudo_ apt-get update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs
fi
mkdir -p "$work"
if [ ! -d "$work/node_modules/playwright-core" ]; then
	say "installing playwright-core@$playwright_version (its own browser download is not used)"
	npm install --prefix "$work" --no-save --no-audit --no-fund "playwright-core@$playwright_version" >&2
fi
[ -x bin/temporal ] || make tools
dnsroll=${DNSROLL_BIN:-}
if [ -z "$dnsroll" ]; then
	make build
	dnsroll=$root/bin/dnsroll
fi

# 2. A copy of fleets/lab.yaml on free ports, so it runs beside another lab.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lb1=$(freeport) lb2=$(freeport) sim=$(freeport)
while [ "$lb2" = "$lb1" ]; do lb2=$(freeport); done
# The lab VMs answer DNS on base to base + 999, which must miss these ports
# (config refuses a load balancer among them).
taken() {
	local p
	for p in "$lb1" "$lb2" "$sim"; do ((p >= base && p < base + 1000)) && return 0; done
	return 1
}
base=$((20000 + RANDOM % 20000))
while taken; do base=$((20000 + RANDOM % 20000)); done
rm -rf "$work/lab" "$work/fleets"
mkdir -p "$work/fleets"
sed -e "s#\"\.\./#\"$root/#g; s#: \.\./#: $root/#g" \
	-e "s#127\.0\.0\.1:5301#127.0.0.1:$lb1#; s#127\.0\.0\.1:5302#127.0.0.1:$lb2#" \
	-e "s#dns_port_base: 15300#dns_port_base: $base#" \
	fleets/lab.yaml >"$work/fleets/lab.yaml"

# 3. The lab, a worker and the API.
export DNSROLL_API_TOKEN
DNSROLL_API_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$dnsroll" dev --mode processes --dir "$work/lab" --fleets "$work/fleets" \
	--temporal-port 0 --ui-port 0 --api-addr 127.0.0.1:0 --sim-addr "127.0.0.1:$sim" >"$work/dev.log" 2>&1 &
dev=$!
stop() {
	kill -INT "$dev" 2>/dev/null || true
	for _ in $(seq 60); do kill -0 "$dev" 2>/dev/null || return 0; sleep 0.5; done
	kill -KILL "$dev" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 240); do
	grep -q "lab is up" "$work/dev.log" && break
	kill -0 "$dev" 2>/dev/null || { cat "$work/dev.log" >&2; exit 1; }
	sleep 0.5
done
grep -q "lab is up" "$work/dev.log" || { cat "$work/dev.log" >&2; say "the lab did not start"; exit 1; }
ui=$(sed -n 's/^ *Web UI: *\(http[^ ]*\).*/\1/p' "$work/dev.log" | head -1)
export DNSROLL_API_URL
DNSROLL_API_URL=$(sed -n 's/^ *API: *\(http[^ ]*\).*/\1/p' "$work/dev.log" | head -1)
say "lab up: Web UI $ui, API $DNSROLL_API_URL"

# 4. Blue (revision A), then the rollout to photograph (B).
"$dnsroll" rollout start --fleet lab --revision A --by alice --reason "first fleet" --wait >"$work/rollout-A.log"
"$dnsroll" rollout start --fleet lab --revision B --by alice --reason "new MX and release TXT" --wait | tee "$work/rollout-B.log" >&2
run=$("$dnsroll" rollout status --fleet lab --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')

# 5. The pictures, in a fresh browser profile.
mkdir -p "$out"
rm -rf "$work/chromium"
PLAYWRIGHT=$work/node_modules/playwright-core UI_URL=$ui RUN_ID=$run OUT=$out CHROMIUM=$chromium \
	USER_DATA_DIR=$work/chromium node scripts/webui-screenshots.js
ls -l "$out"/*.png >&2
