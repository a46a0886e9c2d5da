# The body of a flip, run by /bin/sh on the load balancer over the kept-open
# channel (lb/nginx, Flip) after nginx.sh. The driver sets before them:
# conf, pid, staged, reload (1 or 0), timeout (seconds), config (the new
# nginx.conf), need (the backends, space-separated) and nginx_t (nginx -t as
# the running nginx reads its config). Exit codes: 2 invalid (not staged, or
# nginx -t refuses the config; no retry helps), 3 no nginx runs, 4 the
# reload did not finish in time, 5 the new config could not be written;
# and nginx.sh's.

[ -f "$staged" ] || { echo "no staged backends are recorded ($staged is missing): stage before flipping" >&2; exit 2; }
for a in $need; do
	grep -qxF -- "$a" "$staged" || {
		echo "not staged: $a (staged: $(tr '\n' ' ' <"$staged")); stage a backend before flipping to it" >&2
		exit 2
	}
done

m=$(pidof_file "$pid")
if ! running "$m"; then
	echo "no nginx runs (pid file $pid)" >&2
	exit 3
fi

# The config goes in place only once nginx -t accepts it, whole (rename).
# A write that fails (a full disk) is no invalid config: status 5, which a
# retry may clear.
if ! printf '%s' "$config" >"$conf.flip"; then
	rm -f "$conf.flip"
	echo "could not write $conf.flip (is the disk full?); nginx serves as before" >&2
	exit 5
fi
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

reload "$m"
