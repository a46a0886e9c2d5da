#!/bin/sh
# Stages backends on a running dnsdist through its console: each STAGED
# backend that is missing is added to pool "staged" only, health-checked but
# given no traffic, so that a later flip (lb/dnsdist Flip, one console
# exchange) can move it into the default pool at once; so is a LIVE backend
# that is missing. Live backends that are there are never touched: the default pool and every weight stay as they are, so
# staging is safe at any time, and a rerun changes nothing. A staged backend
# already there and not live is put back under health checks (a Point killed
# midway may have set it down). Returns once every LIVE and STAGED backend
# is up.
#
# Usage: dnsdist-stage.sh CONSOLE_CONF CHECK_NAME CHECK_TYPE MUST_RESOLVE TIMEOUT [LIVE...] -- [STAGED...]
#   as dnsdist-point.sh; LIVE are the backends that serve now, as far as
#   the caller knows.
# Prints one JSON line: {"added": [...]}.
set -eu
[ "$#" -ge 6 ] || { echo "usage: $0 CONSOLE_CONF CHECK_NAME CHECK_TYPE MUST_RESOLVE TIMEOUT [LIVE...] -- [STAGED...]" >&2; exit 2; }
conf=$1 check_name=$2 check_type=$3 must_resolve=$4 timeout=$5
shift 5
live='' staged='' seen=''
for v in "$@"; do
	if [ "$v" = -- ]; then seen=1; continue; fi
	case $v in
	'' | *[!A-Za-z0-9.:_[\]-]*) echo "refusing unsafe value '$v'" >&2; exit 2 ;;
	esac
	if [ -n "$seen" ]; then staged="$staged $v"; else live="$live $v"; fi
done
[ -n "$seen" ] || { echo "missing -- between LIVE and STAGED" >&2; exit 2; }
for v in "$check_name" "$check_type"; do
	case $v in
	'' | *[!A-Za-z0-9.:_[\]-]*) echo "refusing unsafe value '$v'" >&2; exit 2 ;;
	esac
done
case $must_resolve in true | false) ;; *) echo "MUST_RESOLVE is true or false" >&2; exit 2 ;; esac
case $timeout in '' | *[!0-9]*) echo "TIMEOUT is whole seconds" >&2; exit 2 ;; esac

# console runs one Lua chunk; see dnsdist-point.sh.
console() {
	out=$(dnsdist -C "$conf" -c -e "$1" 2>&1) || { echo "dnsdist console: $out" >&2; return 1; }
	case $out in
	dnsroll-ok*) printf '%s\n' "${out#dnsroll-ok}" ;;
	*) echo "dnsdist console: ${out:-no reply; is the console key right?}" >&2; return 1 ;;
	esac
}

# servers prints "NAME up|down live|staged" for every backend.
servers() {
	console "local d = {} local ok, l = pcall(getPoolServers, '') for _, s in ipairs(ok and l or {}) do d[s.name] = true end local o = {'dnsroll-ok'} for _, s in ipairs(getServers()) do o[#o + 1] = s.name .. ' ' .. (s:isUp() and 'up' or 'down') .. ' ' .. (d[s.name] and 'live' or 'staged') end return table.concat(o, ' ')"
}

field() { # field NAME N: the Nth word after NAME in $state, or nothing
	printf '%s\n' "$state" | awk -v n="$1" -v k="$2" '{for (i = 1; i <= NF; i += 3) if ($i == n) print $(i + k)}' | head -n 1
}

state=$(servers)
# A live backend the running dnsdist lacks is staged too, with no traffic:
# a rollout started again after one that failed past its point of no
# return finds the load balancer already serving green, blue gone from it.
# Staging never decides what gets traffic; the flip does.
for b in $live; do
	[ -n "$(field "$b" 0)" ] || staged="$staged $b"
done

added=''
for b in $staged; do
	case $(field "$b" 2) in
	live) ;; # it serves already; staging never takes traffic away
	staged)
		console "for _, s in ipairs(getServers()) do if s.name == '$b' then s:setAuto() end end return 'dnsroll-ok'" >/dev/null
		;;
	*)
		console "newServer({address = '$b', name = '$b', pool = 'staged', checkName = '$check_name', checkType = '$check_type', mustResolve = $must_resolve, checkInterval = 1}) return 'dnsroll-ok'" >/dev/null
		added="$added $b"
		;;
	esac
done

deadline=$(($(date +%s) + timeout))
while :; do
	state=$(servers)
	down=''
	for b in $live $staged; do
		[ "$(field "$b" 1)" = up ] || down="$down $b"
	done
	[ -z "$down" ] && break
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "backends not up after ${timeout}s:$down" >&2
		exit 1
	fi
	sleep 0.1
done

printf '{"added": ['
sep=''
for x in $added; do printf '%s"%s"' "$sep" "$x"; sep=', '; done
printf ']}\n'
