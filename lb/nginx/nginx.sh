# What flip.sh and inplace.sh share, run before either by /bin/sh on the
# load balancer over the kept-open channel (lb/nginx, command). The driver
# sets before it: pid, lock, timeout (seconds) and nginx_t. Exit codes: 4
# an earlier command held the lock past the timeout, 5 the ticket could
# not be recorded, 6 a newer command ran first (see below). POSIX sh, /proc
# and flock only: a flip must start in a millisecond, where python's start costs a
# hundred.

# running: $1 is an nginx process, not a zombie (an exited master that its
# parent has not reaped yet, as the lab's subreaper keeps them until it stops).
running() { [ -n "$1" ] && read -r _ c s _ 2>/dev/null <"/proc/$1/stat" && [ "$c" = "(nginx)" ] && [ "$s" != Z ]; }
pidof_file() {
	p=$(cat "$1" 2>/dev/null)
	case "$p" in '' | *[!0-9]*) p=0 ;; esac
	echo "$p"
}
# workers lists master $1's worker processes that still serve. The kernel
# lists a process's children; without that file, scan /proc.
workers() {
	kids=$(cat "/proc/$1/task/$1/children" 2>/dev/null)
	if [ -z "$kids" ]; then
		for s in /proc/[0-9]*/stat; do
			read -r p c _ pp _ 2>/dev/null <"$s" || continue
			[ "$c" = "(nginx)" ] && [ "$pp" = "$1" ] && kids="$kids $p"
		done
	fi
	for p in $kids; do
		case "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" in
		*"shutting down"*) ;;
		"nginx: worker process"*) printf '%s ' "$p" ;;
		esac
	done
}
# One command at a time on this load balancer. One whose caller went away
# (a worker killed mid-flip, a step cancelled by an abort: sshd does not
# stop it) may still run, and the next (the abort's flip back to blue)
# must not interleave with it: it waits for it to end, up to its own
# timeout, then starts from what that left. The lock is with the state,
# which the playbook makes; without it there is nothing to guard yet.
#
# Nor may one that waited undo a newer one: the kernel does not hand the
# lock out in order, so a command whose caller died while it waited could
# get it after the retry of its step, or an abort's flip back to blue, and
# put back what its dead caller sent. Each command takes a ticket as it
# arrives, the next number in command.seq, and records it in
# command.applied once it holds the lock; one whose ticket is not above
# that record did nothing, and exits 6. The numbers are this machine's,
# handed out under a lock of the state directory: no clock orders them,
# so workers' clocks may differ. A ticket is one above the larger of the
# two records, so that a command.seq removed by hand never repeats one. A
# command that cannot record its ticket does nothing: 5. The playbook's
# module (dnsroll_nginx.py, for Stage and Point) takes its turn the same
# way, with the same files: change both together.
#
# And one whose caller has gone, with nothing newer yet, does nothing
# either: sshd closes the command's output when the caller's connection
# ends, and the newline written to it once the lock is held then kills
# the command (SIGPIPE), or fails. Callers ignore that newline.
if [ -n "$lock" ] && [ -d "${lock%/*}" ]; then
	seq=${lock%/*}/command.seq applied=${lock%/*}/command.applied
	# Without starting a process, as every flip runs this: the number in
	# record $1 into n, 0 when it holds none; and ticket $2 written over
	# record $1 in place, at a fixed width, so that no full disk can leave
	# it empty.
	ticket_in() {
		n=
		read -r n 2>/dev/null <"$1"
		case "$n" in '' | *[!0-9]*) n=0 ;; esac
	}
	record() { printf '%20d\n' "$2" 2>/dev/null 1<>"$1" || {
		echo "could not record the command's ticket in $1 (is the disk full?); this command did nothing" >&2
		exit 5
	}; }
	exec 8<"${lock%/*}"
	if ! flock -w "$timeout" 8; then
		echo "could not take a ticket in ${timeout} s (something holds the directory ${lock%/*} locked); this command did nothing" >&2
		exit 4
	fi
	ticket_in "$seq"
	ticket=$n
	ticket_in "$applied"
	[ "$ticket" -gt "$n" ] || ticket=$n
	ticket=$((ticket + 1))
	record "$seq" "$ticket"
	exec 8<&-
	exec 9>>"$lock"
	if ! flock -w "$timeout" 9; then
		echo "an earlier dnsroll command on this load balancer still runs after ${timeout} s (it holds $lock); this one did nothing" >&2
		exit 4
	fi
	ticket_in "$applied"
	if [ "$ticket" -le "$n" ]; then
		echo "a newer dnsroll command (ticket $n, this one's $ticket) reached this load balancer while this one waited for $lock, and ran first; this one did nothing, lest it undo that one" >&2
		exit 6
	fi
	echo || exit 6 # no one reads it
	record "$applied" "$ticket"
fi
deadline=$(($(date +%s) + timeout))
late() { [ "$(date +%s)" -gt "$deadline" ]; }
# drained waits until none of the workers $* serves: a worker told to quit
# renames itself "... is shutting down" and has closed its listening
# sockets; a gone one has no title.
drained() {
	while :; do
		busy=
		for p in "$@"; do
			case "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" in
			*"shutting down"*) ;;
			"nginx: worker process"*) busy="$busy $p" ;;
			esac
		done
		[ -z "$busy" ] && return 0
		late && { echo "nginx workers$busy still serve ${timeout} s on; nginx's error log says why" >&2; exit 4; }
		sleep 0.002
	done
}
# reload HUPs master $1, what nginx -s reload sends, and waits until its
# old workers take no new connections (they close those they have within
# worker_shutdown_timeout; nothing waits for that). The master starts the new workers, sleeps
# 100 ms (nginx's own "allow new processes to start"), then tells the old
# ones to quit: most of a reload's time.
reload() {
	before=$(workers "$1")
	kill -HUP "$1"
	# shellcheck disable=SC2086
	drained $before
}
