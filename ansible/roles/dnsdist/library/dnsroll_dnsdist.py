#!/usr/bin/python3
"""Install a dnsdist config on one dnsroll load balancer and leave dnsdist
running with its settings (role dnsdist; README.md says why each step is
there). The backends are changed afterwards, through the console, by
files/dnsdist-backends.sh.

One module rather than a dozen tasks: every Ansible task costs a module run
on the host (and an SSH round trip), which made a switch spend far longer in
Ansible than in dnsdist. The steps are the role's contract and stay in order:

1. create the directories, the console key (made here, never printed) and
   the console client's config;
2. read whether dnsdist runs, and the settings it started with: that, never
   what this run changed, decides a restart, so a retry after a run killed
   between writing new settings and restarting still restarts;
3. refuse a listen address that another program holds, when dnsdist does
   not run;
4. forget the split the last flip recorded (point mode);
5. install the config only once "dnsdist --check-config" accepts it (a
   rejection fails with "failed to validate", which dnsroll reports as an
   invalid config, not retryable);
6. start dnsdist, or restart it when its settings changed (a restart loses
   the queries in flight; a change of backends alone never restarts it);
7. wait until the listen address and the console accept TCP, then record
   the settings dnsdist runs.
"""

import base64
import os
import socket
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: dnsroll_dnsdist
short_description: Install a dnsroll dnsdist config and keep dnsdist running it
description: See the role's README.md.
options:
  conf: {type: str, required: true, description: The full dnsdist.conf.}
  settings: {type: str, required: true, description: The config without backends.}
  conf_path: {type: path, required: true, description: Where dnsdist reads its config.}
  settings_file: {type: path, required: true, description: The settings dnsdist runs.}
  console_conf: {type: path, required: true, description: The console client's config.}
  console: {type: str, required: true, description: The console's address.}
  console_host: {type: str, required: true, description: The console's host.}
  console_port: {type: int, required: true, description: The console's port.}
  key_file: {type: path, required: true, description: The console key's file.}
  split_file: {type: path, required: true, description: Where a flip records its split.}
  mode: {type: str, choices: [point, stage], default: point, description: Point or stage.}
  lab: {type: bool, default: false, description: Run dnsdist directly instead of through systemd.}
  lab_dir: {type: path, default: "", description: The lab load balancer's directory.}
  pid_file: {type: path, default: "", description: The lab dnsdist's pid file.}
  lab_start: {type: list, elements: str, default: [], description: How the lab starts dnsdist.}
  listen_host: {type: str, required: true, description: Host of the listen address.}
  listen_port: {type: int, required: true, description: Port of the listen address.}
  timeout: {type: int, default: 30, description: Seconds for each wait.}
"""

CONSOLE_CONF = """\
-- Managed by dnsroll (role dnsdist): every run rewrites this file.
-- Client settings for "dnsdist -C <this file> -c": where the console
-- listens and the file holding its key. The key is read at run time, so it
-- is never on a command line or in Ansible's output.
controlSocket('{console}')
do
  local f = assert(io.open('{key_file}'))
  setKey(f:read('*l'))
  f:close()
end
"""


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def lab_pid(pid_file):
    """The pid of the dnsdist that owns pid_file, or 0 (no file, a dead
    pid, a zombie, or a pid reused by another program)."""
    try:
        pid = int((read(pid_file) or "").strip())
    except ValueError:
        return 0
    if (read(f"/proc/{pid}/comm") or "").strip() != "dnsdist":
        return 0
    if (read(f"/proc/{pid}/stat") or "").split(" ")[2:3] == ["Z"]:
        return 0
    return pid


def accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def wait(timeout, ready):
    """Polls ready until it returns true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


class Run:
    def __init__(self, module):
        self.m = module
        self.p = module.params
        self.changed = False

    def fail(self, msg):
        self.m.fail_json(msg=msg, changed=self.changed)

    def command(self, argv, what, ok=(0,)):
        rc, out, err = self.m.run_command(argv)
        if rc not in ok:
            self.fail(f"{what} failed (rc {rc}): {(err or out).strip()}")
        return rc

    def mkdir(self, path, mode, owner=None):
        if not os.path.isdir(path):
            os.makedirs(path, mode=mode, exist_ok=True)
            self.changed = True
        if owner:
            self.own(path, owner, owner, mode)

    def own(self, path, user, group, mode):
        """Sets path's owner, group and mode (a VM's; the lab runs as
        whoever runs it), counting a change."""
        self.changed |= self.m.set_owner_if_different(path, user, False)
        self.changed |= self.m.set_group_if_different(path, group, False)
        self.changed |= self.m.set_mode_if_different(path, mode, False)

    def write(self, path, content, mode, validate=None):
        """Writes content to path, whole (rename), only once validate (an
        argv to which the temp file's path is appended) accepts it; content
        already in place is left as it is."""
        if read(path) == content:
            return
        fd, tmp = tempfile.mkstemp(prefix=".dnsroll-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as f:
                f.write(content)
            os.chmod(tmp, mode)
            if validate:
                rc, out, err = self.m.run_command(validate + [tmp])
                if rc != 0:
                    self.fail(f"failed to validate {path}: {' '.join(validate[:2])}: {(err or out).strip()}")
            os.replace(tmp, path)
            tmp = None
        finally:
            if tmp:
                os.unlink(tmp)
        self.changed = True

    def systemctl(self, verb):
        self.command(["systemctl", verb, "dnsdist"], f"systemctl {verb} dnsdist")
        self.changed = True

    def apply(self):
        p, lab = self.p, self.p["lab"]
        if lab:
            self.mkdir(p["lab_dir"], 0o755)
        else:
            # A flip records its split here, written by dnsdist itself (as
            # _dnsdist, which its unit lets write under /var only).
            self.mkdir(os.path.dirname(p["split_file"]), 0o750, owner="_dnsdist")

        # The key is made here and stays here; only its path travels. A key
        # that exists is kept: the running dnsdist has it.
        key = read(p["key_file"])
        if not key:
            old = os.umask(0o077)
            try:
                self.write(p["key_file"], base64.b64encode(os.urandom(32)).decode() + "\n", 0o600)
            finally:
                os.umask(old)
        if not lab:
            # dnsdist reads its config, key included, as _dnsdist on a VM.
            self.own(p["key_file"], "root", "_dnsdist", 0o640)
        self.write(p["console_conf"], CONSOLE_CONF.format(console=p["console"], key_file=p["key_file"]), 0o640)

        if lab:
            was_running = lab_pid(p["pid_file"]) != 0
        else:
            _, out, _ = self.m.run_command(["systemctl", "is-active", "dnsdist"])
            was_running = out.strip() == "active"
        # Another program on the port would make dnsdist fail to start with
        # a less helpful error; one that is just letting go gets 2 s.
        if not was_running and not wait(2, lambda: not accepts(p["listen_host"], p["listen_port"])):
            self.fail(f"{p['listen_host']}:{p['listen_port']} is taken by another program, probably nginx "
                      "from the nginx driver; stop it before moving this load balancer to dnsdist "
                      "(roles/dnsdist/README.md)")
        restart = was_running and (read(p["settings_file"]) or "") != p["settings"]

        # Point's backends are the whole truth: the split an earlier flip
        # recorded would override them at the next restart. Staging keeps it.
        if p["mode"] == "point" and os.path.lexists(p["split_file"]):
            os.unlink(p["split_file"])
            self.changed = True

        # Writing the file does not change the running dnsdist: it records
        # the backends for the next start; the console switch applies them.
        self.write(p["conf_path"], p["conf"], 0o640, validate=["dnsdist", "--check-config", "-C"])
        if not lab:
            self.own(p["conf_path"], "root", "_dnsdist", 0o640)
            rc, out, _ = self.m.run_command(["systemctl", "is-enabled", "dnsdist"])
            if out.strip() != "enabled":
                self.systemctl("enable")
            if not was_running:
                self.systemctl("start")
            elif restart:
                self.systemctl("restart")
        else:
            if restart:
                # 1: nothing was running after all, which is what stop wants.
                self.command(["start-stop-daemon", "--stop", "--retry", "TERM/5/KILL/5",
                              "--pidfile", p["pid_file"], "--exec", "/usr/bin/dnsdist"],
                             "stopping the lab dnsdist", ok=(0, 1))
            if restart or not was_running:
                self.command(p["lab_start"], "starting the lab dnsdist")
                self.changed = True

        for what, host, port in (("dnsdist", p["listen_host"], p["listen_port"]),
                                 ("the dnsdist console", p["console_host"], p["console_port"])):
            if not wait(p["timeout"], lambda: accepts(host, port)):
                self.fail(f"{what} does not accept TCP on {host}:{port} after {p['timeout']}s")
        # Written only once dnsdist runs these settings.
        self.write(p["settings_file"], p["settings"], 0o644)
        self.m.exit_json(changed=self.changed, restarted=restart, was_running=was_running)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            conf=dict(type="str", required=True),
            settings=dict(type="str", required=True),
            conf_path=dict(type="path", required=True),
            settings_file=dict(type="path", required=True),
            console_conf=dict(type="path", required=True),
            console=dict(type="str", required=True),
            console_host=dict(type="str", required=True),
            console_port=dict(type="int", required=True),
            key_file=dict(type="path", required=True, no_log=False),
            split_file=dict(type="path", required=True),
            mode=dict(type="str", choices=["point", "stage"], default="point"),
            lab=dict(type="bool", default=False),
            lab_dir=dict(type="path", default=""),
            pid_file=dict(type="path", default=""),
            lab_start=dict(type="list", elements="str", default=[]),
            listen_host=dict(type="str", required=True),
            listen_port=dict(type="int", required=True),
            timeout=dict(type="int", default=30),
        ),
    )
    Run(module).apply()


if __name__ == "__main__":
    main()
