#!/usr/bin/python3
"""Apply a complete nginx config on one dnsroll load balancer and return once
the running nginx serves it (role loadbalancer; README.md says why each step
is there).

One module rather than a dozen tasks: every Ansible task costs a module run
on the host (and an SSH round trip), which made a switch spend far longer in
Ansible than in nginx. The steps are the role's contract and stay in order:

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

import json
import os
import socket
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: dnsroll_nginx
short_description: Install a dnsroll nginx config and wait until it serves
description: See the role's README.md.
options:
  conf: {type: str, required: true, description: The full nginx.conf.}
  config_id: {type: str, required: true, description: The ID its control server answers.}
  conf_path: {type: path, required: true, description: Where nginx reads its config.}
  staged_conf: {type: str, default: "", description: Config placed as conf_path.staged.}
  pid_file: {type: path, required: true, description: The master's pid file.}
  control_socket: {type: path, required: true, description: Where workers answer their config ID.}
  status_socket: {type: path, required: true, description: nginx's stub_status socket.}
  nginx: {type: list, elements: str, required: true, description: The nginx command.}
  lab: {type: bool, default: false, description: Run nginx directly instead of through systemd.}
  lab_dir: {type: path, default: "", description: The lab load balancer's directory.}
  state_dir: {type: path, required: true, description: Where the staged record lives.}
  staged: {type: list, elements: dict, default: [], description: Backends a flip may use.}
  listen_host: {type: str, required: true, description: Host of the listen address.}
  listen_port: {type: int, required: true, description: Port of the listen address.}
  timeout: {type: int, default: 30, description: Seconds for each wait.}
"""


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def master_pid(pid_file):
    try:
        pid = int(read(pid_file).strip())
    except ValueError:
        return 0
    # A zombie or a recycled pid is not our nginx.
    if read(f"/proc/{pid}/comm").strip() != "nginx" or read(f"/proc/{pid}/stat").split(" ")[2:3] == ["Z"]:
        return 0
    return pid


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


def wait(timeout, ready):
    """Polls ready until it returns true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


class Run:
    def __init__(self, module):
        self.m = module
        self.p = module.params
        self.changed = False

    def fail(self, msg, **kw):
        self.m.fail_json(msg=msg, changed=self.changed, **kw)

    def command(self, argv, what):
        rc, out, err = self.m.run_command(argv)
        if rc != 0:
            self.fail(f"{what} failed (rc {rc}): {(err or out).strip()}", cmd=argv)

    def install(self, path, content):
        """Writes content to path, whole (rename), only once nginx -t
        accepts it; content already in place changes nothing."""
        if read(path) == content and os.path.exists(path):
            return
        d = os.path.dirname(path)
        fd, tmp = tempfile.mkstemp(prefix=".dnsroll-", dir=d)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(content)
            os.chmod(tmp, 0o644)
            rc, out, err = self.m.run_command(self.p["nginx"] + ["-t", "-q", "-c", tmp])
            if rc != 0:
                self.fail(f"failed to validate {path}: nginx -t: {(err or out).strip()}")
            os.replace(tmp, path)
            tmp = None
        finally:
            if tmp:
                os.unlink(tmp)
        self.changed = True

    def mkdir(self, path):
        if path and not os.path.isdir(path):
            os.makedirs(path, mode=0o755, exist_ok=True)
            self.changed = True

    def systemctl(self, *args):
        self.command(["systemctl", *args, "nginx"], "systemctl " + " ".join(args) + " nginx")

    def apply(self):
        p = self.p
        self.mkdir(p["lab_dir"])
        self.mkdir(p["state_dir"])
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
            rc, out, _ = self.m.run_command(["systemctl", "is-enabled", "nginx"])
            if out.strip() != "enabled":
                self.systemctl("enable")
                self.changed = True
            if before["master"] == 0:
                self.systemctl("start")
                self.changed = True

        # An nginx this run started already runs the new config.
        reload = before["master"] != 0 and before["config_id"] != p["config_id"]
        if reload:
            if p["lab"]:
                self.command(p["nginx"] + ["-c", p["conf_path"], "-s", "reload"], "reloading nginx")
            else:
                self.systemctl("reload")
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
        record = "".join(b["addr"] + "\n" for b in p["staged"])
        path = os.path.join(p["state_dir"], "staged")
        if read(path) != record or not os.path.exists(path):
            with open(path + ".tmp", "w") as f:
                f.write(record)
            os.chmod(path + ".tmp", 0o644)
            os.replace(path + ".tmp", path)
            self.changed = True
        self.m.exit_json(changed=self.changed, reloaded=reload, before=before, after=after)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            conf=dict(type="str", required=True),
            config_id=dict(type="str", required=True),
            conf_path=dict(type="path", required=True),
            staged_conf=dict(type="str", default=""),
            pid_file=dict(type="path", required=True),
            control_socket=dict(type="path", required=True),
            status_socket=dict(type="path", required=True),
            nginx=dict(type="list", elements="str", required=True),
            lab=dict(type="bool", default=False),
            lab_dir=dict(type="path", default=""),
            state_dir=dict(type="path", required=True),
            staged=dict(type="list", elements="dict", default=[]),
            listen_host=dict(type="str", required=True),
            listen_port=dict(type="int", required=True),
            timeout=dict(type="int", default=30),
        ),
    )
    Run(module).apply()


if __name__ == "__main__":
    main()
