#!/bin/sh
# Prints the state of the nginx whose pid file is $1 as one line of JSON:
#   {"master": PID, "workers": [PID, ...]}
# master is 0 when no live nginx owns the pid file. workers lists only the
# workers that serve traffic: a worker that was told to quit after a reload
# renames itself "worker process is shutting down" and has closed its
# listening sockets, so it is left out. The role compares this list before
# and after a reload to know that the new config is live, because
# "nginx -s reload" and systemd's reload return before nginx has switched.
set -u
pidfile=$1
master=0
workers=""
pid=$(cat "$pidfile" 2>/dev/null || true)
case $pid in
'' | *[!0-9]*) pid="" ;;
esac
# A zombie or a recycled pid is not our nginx.
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ] &&
	[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
	master=$pid
	for stat in /proc/[0-9]*/stat; do
		# Fields: pid (comm) state ppid; nginx's comm has no spaces.
		set -- $(cat "$stat" 2>/dev/null) || continue
		[ "$#" -ge 4 ] && [ "$2" = "(nginx)" ] && [ "$4" = "$master" ] || continue
		[ "$3" != Z ] || continue
		title=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ *$//')
		[ "$title" = "nginx: worker process" ] || continue
		workers="$workers${workers:+, }$1"
	done
fi
printf '{"master": %s, "workers": [%s]}\n' "$master" "$workers"
