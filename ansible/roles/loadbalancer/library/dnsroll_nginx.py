#!/usr/bin/python3
"""Apply a complete nginx config on one dnsroll load balancer and return once
the running nginx serves it (role loadbalancer; README.md says why each step
is there).

One module rather than a dozen tasks: every Ansible task costs a module run
on the host (and an SSH round trip), which made a switch spend far longer in
Ansible than in nginx. The steps are the role's contract and stay in order:

0. wait for its turn on the load balancer, as the driver's flip.sh and
   inplace.sh commands do (lb/nginx/nginx.sh, whose lock and tickets it
   shares): take a ticket, wait for the command lock, and refuse, having
   changed nothing, when a newer command ran first (the message says
   "overtaken by a newer dnsroll command", which dnsroll reports as a
   conflict, not retryable); then hold the lock to the end;
1. read which nginx runs and which config its workers serve (the control
   socket), before anything changes: that, never what this run changed,
   decides the reload, so a retry after a run killed mid-way still reloads;
2. remove the unix sockets a dead master left behind;
3. place the staged config beside the live one, then the live config, each
   only once "nginx -t" accepts it (a rejection fails with "failed to
   validate", which dnsroll reports as an invalid config, not retryable);
4. start nginx (the lab runs it; a VM's systemd does), or reload it if it
   serves another config;
5. wait until the running workers serve the new config and none from before
   a reload still serves, then until the listen port and every staged
   backend accept TCP;
6. record the staged backends, last, so the record never lists a backend
   that was not checked.
"""

import fcntl
import json
import os
import signal
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dnsroll_host import Host, accepts, lb_options, live_pid, read, wait


# DROP_IN amends Debian's nginx unit on a VM (drop_in).
DROP_IN = "/etc/systemd/system/nginx.service.d/dnsroll.conf"


def drop_in(control_socket, status_socket):
    """What a load balancer's nginx needs of systemd that Debian's unit
    lacks."""
    return f"""# Managed by dnsroll (role loadbalancer): every run rewrites this file.
[Service]
# An nginx that crashes, or is killed for memory, comes back by itself,
# not at the next rollout.
Restart=on-failure
RestartSec=1s
# A dead master leaves its unix sockets behind, and nginx does not bind
# over them: without this, no start would succeed, by hand or by systemd.
ExecStartPre=-/bin/rm -f {control_socket} {status_socket}
# Debian's unit leaves systemd's soft limit of 1024 descriptors, fewer than
# the config's worker_connections need (worker_rlimit_nofile).
LimitNOFILE=16384
"""


def master_pid(pid_file):
    return live_pid(pid_file, "nginx")


def serving_workers(master):
    """The master's workers that serve traffic: one told to quit by a
    reload renames itself "worker process is shutting down"."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        # Fields: pid (comm) state ppid; nginx's comm has no spaces.
        fields = read(f"/proc/{name}/stat").split(" ")
        if len(fields) < 4 or fields[1] != "(nginx)" or fields[2] == "Z" or fields[3] != str(master):
            continue
        if read(f"/proc/{name}/cmdline").replace("\0", " ").strip() == "nginx: worker process":
            out.append(int(name))
    return sorted(out)


def ask(path):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace").strip()
    except OSError:
        return ""


def state(pid_file, control_socket):
    """{"master", "workers", "config_id"}: config_id is "" when nothing
    answers and "mixed" when workers of two configs do (any worker may
    accept a connection, so it asks a few times)."""
    master = master_pid(pid_file)
    st = {"master": master, "workers": [], "config_id": ""}
    if master:
        st["workers"] = serving_workers(master)
        seen = {ask(control_socket) for _ in range(4)}
        st["config_id"] = seen.pop() if len(seen) == 1 else "mixed"
    return st


class Late(Exception):
    """The wait for a lock ran out."""


def flock(fd, timeout):
    """Locks fd exclusively, as "flock -w timeout" does: whether it got the
    lock within timeout seconds. It blocks in the kernel, as flock(1) does,
    so that the lock's waiters are all in one queue."""
    def late(signum, frame):
        raise Late()

    before = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    except Late:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def ticket_in(path):
    """The ticket record path holds, 0 when it holds none (nginx.sh's
    ticket_in)."""
    n = read(path).split("\n", 1)[0].strip()
    return int(n) if n.isascii() and n.isdigit() else 0


class Run(Host):
    def record(self, path, ticket):
        """Writes ticket over record path in place, at nginx.sh's fixed
        width, so that no full disk can leave it empty."""
        line = b"%20d\n" % ticket
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                wrote = os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            wrote = 0
        if wrote != len(line):
            self.fail(f"could not record the command's ticket in {path} (is the disk full?); this command did nothing")

    def take_turn(self):
        """Runs this one after the commands that reached the load balancer
        before it, and never after a newer one: nginx.sh's protocol, which
        says why. It takes a ticket, one above the larger of command.seq
        and command.applied, under a lock of the state directory; waits up
        to the timeout for command.lock; fails if a newer ticket ran while
        it waited; and records its own. The lock is held until the module
        exits."""
        p = self.p
        d, timeout = p["state_dir"], p["timeout"]
        seq, applied, lock = (os.path.join(d, f) for f in ("command.seq", "command.applied", "command.lock"))
        fd = os.open(d, os.O_RDONLY)
        try:
            if not flock(fd, timeout):
                self.fail(f"could not take a ticket in {timeout} s (something holds the directory {d} locked); this command did nothing")
            ticket = max(ticket_in(seq), ticket_in(applied)) + 1
            self.record(seq, ticket)
        finally:
            os.close(fd)
        self.lock = os.open(lock, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not flock(self.lock, timeout):
            self.fail(f"an earlier dnsroll command on this load balancer still runs after {timeout} s (it holds {lock}); this one did nothing")
        last = ticket_in(applied)
        if ticket <= last:
            self.fail(f"overtaken by a newer dnsroll command (ticket {last}, this one's {ticket}), which reached this load balancer "
                      f"while this one waited for {lock}, and ran first; this one did nothing, lest it undo that one")
        self.record(applied, ticket)

    def install(self, path, content):
        """Places content at path only once nginx -t accepts it."""
        self.write(path, content, 0o644, validate=self.p["nginx"] + ["-t", "-q", "-c"], checker="nginx -t")

    def apply(self):
        p = self.p
        self.mkdir(p["lab_dir"])
        self.mkdir(p["state_dir"])
        self.take_turn()
        before = state(p["pid_file"], p["control_socket"])
        if before["master"] == 0:
            # nginx cannot bind over a dead master's sockets.
            for path in (p["control_socket"], p["status_socket"]):
                if os.path.lexists(path):
                    os.unlink(path)
                    self.changed = True
        if p["staged_conf"]:
            # Before the live config changes, so a config nginx would refuse
            # fails the staging and leaves everything as it was.
            self.install(p["conf_path"] + ".staged", p["staged_conf"])
        self.install(p["conf_path"], p["conf"])

        if p["lab"]:
            if before["master"] == 0:
                self.command(p["nginx"] + ["-c", p["conf_path"]], "starting nginx")
                self.changed = True
                # nginx writes its pid file after it forks into the background.
                if not wait(p["timeout"], lambda: master_pid(p["pid_file"]) != 0):
                    self.fail(f"nginx started but {p['pid_file']} names no running nginx after {p['timeout']}s")
        else:
            self.mkdir(os.path.dirname(DROP_IN))
            # Also when an earlier run wrote the file and was killed before
            # it reloaded systemd: its retry finds the file as it wants it.
            wrote = self.write(DROP_IN, drop_in(p["control_socket"], p["status_socket"]), 0o644)
            _, stale, _ = self.m.run_command(["systemctl", "show", "--property=NeedDaemonReload", "--value", "nginx"])
            if wrote or stale.strip() == "yes":
                self.command(["systemctl", "daemon-reload"], "systemctl daemon-reload")
                self.changed = True
            rc, out, _ = self.m.run_command(["systemctl", "is-enabled", "nginx"])
            if out.strip() != "enabled":
                self.systemctl("enable", "nginx")
            if before["master"] == 0:
                self.systemctl("start", "nginx")

        # An nginx this run started already runs the new config.
        reload = before["master"] != 0 and before["config_id"] != p["config_id"]
        if reload:
            if p["lab"]:
                self.command(p["nginx"] + ["-c", p["conf_path"], "-s", "reload"], "reloading nginx")
            else:
                self.systemctl("reload", "nginx")
            self.changed = True

        # Done when every worker that serves runs the new config. If the
        # master rejects the config at runtime (a port that is taken) the
        # old workers stay and this fails instead of reporting a switch
        # that did not happen.
        after = {}

        def served():
            after.update(state(p["pid_file"], p["control_socket"]))
            return (after["config_id"] == p["config_id"] and after["workers"]
                    and not (reload and set(after["workers"]) & set(before["workers"])))

        if not wait(p["timeout"], served):
            self.fail(f"nginx does not serve config {p['config_id']} after {p['timeout']}s "
                      f"(before: {json.dumps(before)}, now: {json.dumps(after)}); see its error log",
                      before=before, after=after)
        if not wait(p["timeout"], lambda: accepts(p["listen_host"], p["listen_port"])):
            self.fail(f"nginx does not accept TCP on {p['listen_host']}:{p['listen_port']} after {p['timeout']}s")
        # Staged backends get no traffic yet; a flip may give them all of
        # it, so each must answer from here first.
        for b in p["staged"]:
            if not wait(p["timeout"], lambda: accepts(b["host"], int(b["port"]))):
                self.fail(f"staged backend {b['addr']} does not accept TCP from this load balancer after {p['timeout']}s")
        self.write(os.path.join(p["state_dir"], "staged"), "".join(b["addr"] + "\n" for b in p["staged"]), 0o644)
        self.m.exit_json(changed=self.changed, reloaded=reload, before=before, after=after)


def main():
    module = AnsibleModule(
        argument_spec=lb_options(
            conf=dict(type="str", required=True),  # The full nginx.conf.
            config_id=dict(type="str", required=True),  # The ID its control server answers.
            conf_path=dict(type="path", required=True),  # Where nginx reads its config.
            staged_conf=dict(type="str", default=""),  # Config placed as conf_path.staged.
            pid_file=dict(type="path", required=True),  # The master's pid file.
            control_socket=dict(type="path", required=True),  # Where workers answer their config ID.
            status_socket=dict(type="path", required=True),  # nginx's stub_status socket.
            nginx=dict(type="list", elements="str", required=True),  # The nginx command.
            state_dir=dict(type="path", required=True),  # The staged record, the lock and tickets.
            staged=dict(type="list", elements="dict", default=[]),  # Backends a flip may use.
        ),
    )
    Run(module).apply()


if __name__ == "__main__":
    main()
