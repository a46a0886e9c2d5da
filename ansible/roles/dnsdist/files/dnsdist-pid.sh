#!/bin/sh
# Prints the pid of the lab dnsdist that owns pid file $1, or 0 when none
# runs (no file, a dead pid, a zombie, or a pid reused by another program).
pid=$(cat "$1" 2>/dev/null || true)
case $pid in
'' | *[!0-9]*) echo 0; exit 0 ;;
esac
if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dnsdist ] &&
	[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
	echo "$pid"
else
	echo 0
fi
