# The body of a flip, run by /bin/sh on the load balancer over the kept-open
# channel (lb/nginx, Flip). The driver sets before it: conf, pid, staged,
# reload (1 or 0), timeout (seconds), config (the new nginx.conf), need
# (the backends, space-separated) and nginx_t (nginx -t as the running
# nginx reads its config). Exit codes: 2 invalid (not staged, or nginx -t
# refuses the config; no retry helps), 3 no nginx runs, 4 the reload did
# not finish in time. POSIX sh and /proc only: it must start in a
# millisecond, where python's start costs a hundred.

[ -f "$staged" ] || { echo "no staged backends are recorded ($staged is missing): stage before flipping" >&2; exit 2; }
for a in $need; do
	grep -qxF -- "$a" "$staged" || {
		echo "not staged: $a (staged: $(tr '\n' ' ' <"$staged")); stage a backend before flipping to it" >&2
		exit 2
	}
done

m=$(cat "$pid" 2>/dev/null)
case "$m" in '' | *[!0-9]*) m=0 ;; esac
if [ "$m" = 0 ] || [ "$(cat "/proc/$m/comm" 2>/dev/null)" != nginx ]; then
	echo "no nginx runs (pid file $pid)" >&2
	exit 3
fi

# The config goes in place only once nginx -t accepts it, whole (rename).
printf '%s' "$config" >"$conf.flip"
if [ "$reload" = 0 ] && cmp -s "$conf.flip" "$conf"; then
	rm -f "$conf.flip"
	exit 0
fi
if ! out=$(nginx_t "$conf.flip" 2>&1); then
	rm -f "$conf.flip"
	echo "nginx -t rejected the config: $out" >&2
	exit 2
fi
mv -f "$conf.flip" "$conf"
# Already serving it (the driver asked the control socket): the file was
# all that differed, and nginx must not reload for nothing.
[ "$reload" = 0 ] && exit 0

# The workers from before the reload: done once none of them serves. The
# kernel lists a process's children; without that file, scan /proc.
before=$(cat "/proc/$m/task/$m/children" 2>/dev/null)
if [ -z "$before" ]; then
	for s in /proc/[0-9]*/stat; do
		read -r p c _ pp _ <"$s" 2>/dev/null || continue
		[ "$c" = "(nginx)" ] && [ "$pp" = "$m" ] && before="$before $p"
	done
fi
# What nginx -s reload sends. The master starts the new workers, sleeps
# 100 ms (nginx's own "allow new processes to start"), then tells the old
# ones to quit: most of a flip's time.
kill -HUP "$m"
end=$(($(date +%s) + timeout))
while :; do
	busy=
	for p in $before; do
		# A worker told to quit renames itself "... is shutting down" and
		# has closed its listening sockets; a gone one has no title.
		case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
		*"shutting down"*) ;;
		"nginx: worker process"*) busy="$busy $p" ;;
		esac
	done
	[ -z "$busy" ] && exit 0
	if [ "$(date +%s)" -gt "$end" ]; then
		echo "nginx workers$busy still serve ${timeout} s after the reload; nginx's error log says why" >&2
		exit 4
	fi
	sleep 0.002
done
