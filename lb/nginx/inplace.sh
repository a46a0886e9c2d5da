# The in-place updates of a running nginx (lb/nginx, inplace.go), run by
# /bin/sh on the load balancer over the kept-open channel after nginx.sh.
# The driver sets before them: op, conf, pid, config (the new nginx.conf;
# empty reloads the one in place), update (what identifies this update:
# the same in its retries and its restore, one word; the binary upgrade's
# ops have it too), timeout (seconds)
# and nginx_t. Exit codes: 2 invalid (no retry helps), 3 no nginx runs, 4
# nginx did not do it in time, 5 the new config could not be written; and nginx.sh's. What an op did that the operator should
# know is its output.

m=$(pidof_file "$pid")
o=$(pidof_file "$pid.oldbin")
running "$o" || o=
if ! running "$m"; then
	echo "no nginx runs (pid file $pid)" >&2
	exit 3
fi

# quitted waits until the old master $o, told to quit, is gone: its
# workers close their last connections within worker_shutdown_timeout.
quitted() {
	while running "$o"; do
		late && { echo "the old nginx master $o still runs ${timeout} s after QUIT (its workers should close their connections within worker_shutdown_timeout; nginx's error log says why)" >&2; exit 4; }
		sleep 0.01
	done
	rm -f "$pid.oldbin.quit"
	exit 0
}

case "$op" in
reload)
	# A write that fails (a full disk) is no invalid config: status 5,
	# which a retry may clear.
	if [ -n "$config" ]; then printf '%s' "$config" >"$conf.new"; else cp -p "$conf" "$conf.new"; fi || {
		rm -f "$conf.new"
		echo "could not write $conf.new (is the disk full?); nginx serves as before" >&2
		exit 5
	}
	if ! out=$(nginx_t "$conf.new" 2>&1); then
		rm -f "$conf.new"
		echo "nginx -t rejected the config: $out" >&2
		exit 2
	fi
	# The config to restore: what ran before this update, kept in
	# $conf.prev with "<update> <cksum of its config>" in $conf.prev.for. A
	# retry of this same update keeps the one saved; a refused update
	# (above) saves none.
	# Each file is written whole, then renamed; an update whose restore
	# point could not be saved (a full disk) does not go in.
	sum=$(cksum <"$conf.new")
	if [ "$(cat "$conf.prev.for" 2>/dev/null)" != "$update $sum" ]; then
		{ cp -p "$conf" "$conf.prev.tmp" && mv -f "$conf.prev.tmp" "$conf.prev" &&
			echo "$update $sum" >"$conf.prev.for.tmp" && mv -f "$conf.prev.for.tmp" "$conf.prev.for"; } || {
			rm -f "$conf.new" "$conf.prev.tmp" "$conf.prev.for.tmp"
			echo "could not save $conf.prev, the config to restore (is the disk full?); nginx serves as before" >&2
			exit 5
		}
	fi
	mv -f "$conf.new" "$conf"
	reload "$m"
	;;
restore)
	# Only this update's saved config is restored, and only over the
	# config this update put in: one saved by an earlier update predates
	# what ran before this one (a rollout rewrites $conf, not $conf.prev).
	saved=$(cat "$conf.prev.for" 2>/dev/null)
	if [ ! -f "$conf.prev" ] || [ "${saved%% *}" != "$update" ]; then
		echo "nothing to restore: this update never replaced the config"
		exit 0
	fi
	if ! cmp -s "$conf.prev" "$conf"; then
		if [ "${saved#* }" != "$(cksum <"$conf")" ]; then
			echo "nothing restored: $conf changed since this update, which no longer runs"
			exit 0
		fi
		if ! out=$(nginx_t "$conf.prev" 2>&1); then
			echo "nginx -t rejected the previous config $conf.prev: $out" >&2
			exit 2
		fi
		{ cp -p "$conf.prev" "$conf.tmp" && mv -f "$conf.tmp" "$conf"; } || {
			rm -f "$conf.tmp"
			echo "could not write $conf back from $conf.prev (is the disk full?); nginx serves this update's config" >&2
			exit 5
		}
	elif [ "${saved#* }" = "$(cksum <"$conf")" ]; then
		echo "nothing to restore: this update left the config as it was"
		exit 0
	fi
	# Reloaded again on a retry: the one before may have stopped short.
	reload "$m"
	echo "restored the config from before this update"
	;;
upgrade-start)
	# USR2: the master re-executes its binary, now the new one, as a new
	# master beside it, which starts its own workers on the same sockets.
	# A retry of this update's upgrade that already finished: its new
	# master serves, and another USR2 would start a second upgrade.
	if [ -z "$o" ] && [ -n "$update" ] && [ "$(cat "$pid.upgraded.for" 2>/dev/null)" = "$update $m" ]; then
		echo "done $m"
		exit 0
	fi
	if [ -z "$o" ]; then
		# nginx retitles its master "nginx: master process <argv>"; USR2
		# re-executes that argv[0].
		exe=$(tr '\0' ' ' <"/proc/$m/cmdline")
		exe=${exe#nginx: master process }
		exe=${exe%% *}
		case "$exe" in
		/*) ;;
		*)
			echo "nginx runs as '$exe', not by its absolute path, so a binary upgrade could not re-execute it; restart it as /usr/sbin/nginx" >&2
			exit 2
			;;
		esac
		if ! out=$(nginx_t "$conf" 2>&1); then
			echo "nginx -t rejected the config in place: $out" >&2
			exit 2
		fi
		kill -USR2 "$m"
		o=$m
	fi
	while :; do
		n=$(pidof_file "$pid")
		if [ "$n" != "$o" ] && running "$n" && [ -n "$(workers "$n")" ]; then
			echo "$o $n"
			exit 0
		fi
		if late; then
			echo "no new nginx master with workers ${timeout} s after USR2 to $o; nginx's error log says why" >&2
			exit 4
		fi
		sleep 0.01
	done
	;;
upgrade-drain)
	# WINCH: the old master's workers finish what they serve and exit.
	[ -n "$o" ] || { echo "no old nginx master (pid file $pid.oldbin): no binary upgrade is under way" >&2; exit 2; }
	before=$(workers "$o")
	kill -WINCH "$o"
	# shellcheck disable=SC2086
	drained $before
	;;
upgrade-finish)
	[ -n "$o" ] || exit 0
	# Recorded before QUIT, for upgrade-abort: past it there is no going
	# back; and for upgrade-start, whose retry then finds the upgrade done.
	echo "$o" >"$pid.oldbin.quit"
	[ -z "$update" ] || echo "$update $m" >"$pid.upgraded.for" ||
		echo "could not record the upgrade in $pid.upgraded.for (is the disk full?): a retry would upgrade again" >&2
	kill -QUIT "$o"
	quitted
	;;
upgrade-abort)
	if [ -z "$o" ]; then
		# This update's upgrade, put back already (its own abort, when it
		# failed), or finished: say which.
		if [ -n "$update" ] && [ "$(cat "$pid.restored.for" 2>/dev/null)" = "$update $m" ]; then
			echo "restored the old master $m (when the upgrade failed)"
		elif [ -n "$update" ] && [ "$(cat "$pid.upgraded.for" 2>/dev/null)" = "$update $m" ]; then
			echo "nothing restored: this update's upgrade finished, and its new master $m serves; the old one is gone"
		else
			echo "nothing to restore: no binary upgrade under way"
		fi
		exit 0
	fi
	# A quitting master ignores HUP and starts no workers: once QUIT went
	# to the old one, the new master (checked to serve before QUIT) is
	# nginx, and restoring is letting the old one finish.
	if [ "$(cat "$pid.oldbin.quit" 2>/dev/null)" = "$o" ]; then
		echo "nothing restored: the old master $o was told to quit, so the new master $m keeps serving"
		quitted
	fi
	# HUP brings back the old master's workers; QUIT stops the new master,
	# whose exit makes the old master's pid file current again.
	kill -HUP "$o"
	while [ -z "$(workers "$o")" ]; do
		late && { echo "the old nginx master $o started no workers ${timeout} s after HUP" >&2; exit 4; }
		sleep 0.01
	done
	[ "$m" != "$o" ] && kill -QUIT "$m"
	while running "$m" && [ "$m" != "$o" ]; do
		late && { echo "the new nginx master $m still runs ${timeout} s after QUIT" >&2; exit 4; }
		sleep 0.01
	done
	# The new master exits a zombie, which running takes for gone; the
	# old master renames its pid file back once it has reaped it.
	while [ "$(pidof_file "$pid")" != "$o" ]; do
		late && { echo "the old nginx master $o did not take its pid file $pid back ${timeout} s after the new master quit" >&2; exit 4; }
		sleep 0.01
	done
	[ -z "$update" ] || echo "$update $o" >"$pid.restored.for"
	echo "restored the old master $o"
	;;
*)
	echo "unknown op $op" >&2
	exit 2
	;;
esac
