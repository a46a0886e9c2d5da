#!/bin/sh
# Changes the backends of a running dnsdist through its console, never
# restarting it (a restart loses queries), in one of two modes.
#
# point: points dnsdist at exactly the given backends, in the order that
# loses no query (measured: 0 lost at 5,000 queries/s):
#   1. add each new backend (health-checked) and wait until all are up;
#   2. set every other backend down, so new queries stop reaching it;
#   3. wait at least DRAIN seconds, then until it has no outstanding
#      queries (at most TIMEOUT seconds more): its replies in flight;
#   4. remove it, never while it has outstanding queries.
# Removing an old backend before the new one is up loses queries. A desired
# backend that is already there is put back under health checks (an
# interrupted earlier run may have set it down), into the default pool with
# weight 1 (a staged one is in pool "staged" only) and waited for, so a
# rerun converges and pointing at the current backends changes nothing.
#
# stage: each STAGED backend that is missing is added to pool "staged"
# only, health-checked but given no traffic, so that a later flip (lb/dnsdist
# Flip, one console exchange) can move it into the default pool at once; so
# is a LIVE backend that is missing. Live backends that are there are never
# touched: the default pool and every weight stay as they are, so staging is
# safe at any time, and a rerun changes nothing. A staged backend already
# there and not live is put back under health checks (a point killed midway
# may have set it down). Returns once every LIVE and STAGED backend is up.
#
# Usage: dnsdist-backends.sh point CONSOLE_CONF CHECK_NAME CHECK_TYPE MUST_RESOLVE TIMEOUT DRAIN [BACKEND...]
#        dnsdist-backends.sh stage CONSOLE_CONF CHECK_NAME CHECK_TYPE MUST_RESOLVE TIMEOUT [LIVE...] -- [STAGED...]
#   CONSOLE_CONF  a client config with controlSocket() and setKey(); the key
#                 is read from a file by that config, never passed here
#   CHECK_*       the health check of new backends, as in the config;
#                 MUST_RESOLVE is true or false
#   BACKEND       IPv4:port or [IPv6]:port; none leaves dnsdist answering
#                 SERVFAIL (setServFailWhenNoServer in its config)
#   LIVE          the backends that serve now, as far as the caller knows
# Prints one JSON line: {"added": [...], "removed": [...]} (point) or
# {"added": [...]} (stage).
set -eu
usage() {
	echo "usage: $0 point CONSOLE_CONF CHECK_NAME CHECK_TYPE MUST_RESOLVE TIMEOUT DRAIN [BACKEND...]" >&2
	echo "       $0 stage CONSOLE_CONF CHECK_NAME CHECK_TYPE MUST_RESOLVE TIMEOUT [LIVE...] -- [STAGED...]" >&2
	exit 2
}
[ "$#" -ge 7 ] || usage
mode=$1 conf=$2 check_name=$3 check_type=$4 must_resolve=$5 timeout=$6
shift 6
case $mode in
point)
	drain=$1
	shift
	;;
stage) drain=0 ;;
*) usage ;;
esac

# safe VALUE... exits unless every VALUE can be pasted into a Lua string:
# no quote or backslash. "/" is in RFC 2317 zone names.
safe() {
	for v in "$@"; do
		case $v in
		'' | *[!A-Za-z0-9.:_/[\]-]*) echo "refusing unsafe value '$v'" >&2; exit 2 ;;
		esac
	done
}
safe "$check_name" "$check_type"
case $must_resolve in true | false) ;; *) echo "MUST_RESOLVE is true or false" >&2; exit 2 ;; esac
case $timeout in '' | *[!0-9]*) echo "TIMEOUT is whole seconds" >&2; exit 2 ;; esac
case $drain in '' | *[!0-9]*) echo "DRAIN is whole seconds" >&2; exit 2 ;; esac

# One run at a time on this dnsdist: a run whose caller died (a worker
# killed mid-switch) may still be draining, and would remove backends that
# a later run has just put back. The later one waits for it to end, then
# converges from what it left. The lock is beside the console config.
wait_for=$((timeout + drain + 60))
exec 9>>"$(dirname "$conf")/dnsroll-backends.lock"
if ! flock -w "$wait_for" 9; then
	echo "an earlier dnsdist-backends.sh run still holds $(dirname "$conf")/dnsroll-backends.lock after ${wait_for}s" >&2
	exit 1
fi

# console runs one Lua chunk in dnsdist. The client exits 0 even when the
# chunk fails or the key is wrong, so every chunk ends by returning
# "dnsroll-ok"; any other reply is an error.
console() {
	out=$(dnsdist -C "$conf" -c -e "$1" 2>&1) || { echo "dnsdist console: $out" >&2; return 1; }
	case $out in
	dnsroll-ok*) printf '%s\n' "${out#dnsroll-ok}" ;;
	*) echo "dnsdist console: ${out:-no reply; is the console key right?}" >&2; return 1 ;;
	esac
}

# servers prints "NAME up|down live|staged" for every backend; names are
# addresses, and live ones are in the default pool.
servers() {
	console "local d = {} local ok, l = pcall(getPoolServers, '') for _, s in ipairs(ok and l or {}) do d[s.name] = true end local o = {'dnsroll-ok'} for _, s in ipairs(getServers()) do o[#o + 1] = s.name .. ' ' .. (s:isUp() and 'up' or 'down') .. ' ' .. (d[s.name] and 'live' or 'staged') end return table.concat(o, ' ')"
}

# add NAME [POOL] adds backend NAME with the health check, into POOL (by
# default the default pool).
add() {
	console "newServer({address = '$1', name = '$1',${2:+ pool = '$2',} checkName = '$check_name', checkType = '$check_type', mustResolve = $must_resolve, checkInterval = 1, maxCheckFailures = 3}) return 'dnsroll-ok'" >/dev/null
}

# wait_up NAME... returns once every backend NAME is there and up, and fails
# after TIMEOUT seconds.
wait_up() {
	deadline=$(($(date +%s) + timeout))
	while :; do
		down=$(servers | awk -v want="$*" '
			{ for (i = 1; i <= NF; i += 3) { seen[$i] = 1; if ($(i + 1) != "up") down[$i] = 1 } }
			END { n = split(want, w, " "); for (j = 1; j <= n; j++) if (down[w[j]] || !(w[j] in seen)) printf " %s", w[j] }')
		[ -z "$down" ] && return 0
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "backends not up after ${timeout}s:$down" >&2
			exit 1
		fi
		sleep 0.1
	done
}

json() { # json ITEM... → ["a", "b"]
	printf '['
	sep=''
	for x in "$@"; do printf '%s"%s"' "$sep" "$x"; sep=', '; done
	printf ']'
}

# inpool(POOL, NAME) counts NAME in POOL, which may not exist: getPoolServers
# and rmPool fail on a pool that does not.
inpool="local function inpool(p, name) local ok, l = pcall(getPoolServers, p) local n = 0 if ok then for _, s in ipairs(l) do if s.name == name then n = n + 1 end end end return n end"

# each NAME CODE runs CODE with s bound to the backend named NAME.
each() {
	console "$inpool for _, s in ipairs(getServers()) do if s.name == '$1' then $2 end end return 'dnsroll-ok'" >/dev/null
}

has() { # has NAME LIST...
	n=$1
	shift
	for x in "$@"; do [ "$x" = "$n" ] && return 0; done
	return 1
}

point() {
	safe "$@"
	desired="$*"
	# Listed first, on its own: in a pipeline a console failure would be
	# lost, the list read empty, and a backend already there added twice.
	all=$(servers)
	current=$(printf '%s\n' "$all" | awk '{for (i = 1; i <= NF; i += 3) print $i}')

	added=''
	for b in $desired; do
		if has "$b" $current; then
			# Into the default pool once (addPool does not check for a duplicate),
			# out of "staged", equal weight, health-checked.
			each "$b" "s:setAuto() s.weight = 1 local n = inpool('', s.name) if n == 0 then s:addPool('') end for _ = 2, n do s:rmPool('') end for _ = 1, inpool('staged', s.name) do s:rmPool('staged') end"
		else
			add "$b"
			added="$added $b"
		fi
	done
	wait_up $desired

	removed=''
	for b in $current; do
		has "$b" $desired || removed="$removed $b"
	done
	if [ -n "$removed" ]; then
		for b in $removed; do each "$b" 's:setDown()'; done
		sleep "$drain"
		# rmServer drops the replies still in flight, so wait for every old
		# backend's outstanding queries to reach zero. Unanswered UDP queries
		# leave the count when dnsdist times them out (setUDPTimeout, 2 s).
		deadline=$(($(date +%s) + timeout))
		for b in $removed; do
			while :; do
				n=$(console "local n = 0 for _, s in ipairs(getServers()) do if s.name == '$b' then n = n + s:getOutstanding() end end return 'dnsroll-ok' .. n")
				[ "$n" = 0 ] && break
				if [ "$(date +%s)" -ge "$deadline" ]; then
					echo "backend $b still has $n outstanding queries after ${drain}s and ${timeout}s more; not removed" >&2
					exit 1
				fi
				sleep 0.1
			done
			# Checked again in the same chunk as the removal: nothing can be
			# sent to a backend set down, but be sure.
			out=$(console "for _, s in ipairs(getServers()) do if s.name == '$b' then if s:getOutstanding() > 0 then return 'dnsroll-ok' .. s:getOutstanding() end rmServer(s) end end return 'dnsroll-ok'")
			[ -z "$out" ] || { echo "backend $b has $out outstanding queries again; not removed" >&2; exit 1; }
		done
	fi

	# Done means the running dnsdist serves exactly the desired backends, all
	# up and each once in the default pool, as its own lists say; not that the
	# commands above ran.
	pool=$(console "local o = {'dnsroll-ok'} local ok, l = pcall(getPoolServers, '') for _, s in ipairs(ok and l or {}) do o[#o + 1] = s.name end return table.concat(o, ' ')" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')
	wantpool=$(for b in $desired; do echo "$b"; done | sort | tr '\n' ' ')
	if [ "$pool" != "$wantpool" ]; then
		echo "dnsdist's default pool holds [$pool], want [$wantpool]" >&2
		exit 1
	fi
	final=$(servers)
	got=$(printf '%s\n' "$final" | awk '{for (i = 1; i <= NF; i += 3) print $i, $(i + 1)}' | sort)
	want=$(for b in $desired; do echo "$b up"; done | sort)
	if [ "$got" != "$want" ]; then
		echo "dnsdist serves [$(echo $final)], want [$desired], all up" >&2
		exit 1
	fi

	# shellcheck disable=SC2086
	printf '{"added": %s, "removed": %s}\n' "$(json $added)" "$(json $removed)"
}

# field NAME N: the Nth word after NAME in $state (servers), or nothing.
field() {
	printf '%s\n' "$state" | awk -v n="$1" -v k="$2" '{for (i = 1; i <= NF; i += 3) if ($i == n) print $(i + k)}' | head -n 1
}

stage() {
	live='' staged='' seen=''
	for v in "$@"; do
		if [ "$v" = -- ]; then seen=1; continue; fi
		safe "$v"
		if [ -n "$seen" ]; then staged="$staged $v"; else live="$live $v"; fi
	done
	[ -n "$seen" ] || { echo "missing -- between LIVE and STAGED" >&2; exit 2; }

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
		staged) each "$b" 's:setAuto()' ;;
		*)
			add "$b" staged
			added="$added $b"
			;;
		esac
	done
	wait_up $live $staged

	# shellcheck disable=SC2086
	printf '{"added": %s}\n' "$(json $added)"
}

"$mode" "$@"
