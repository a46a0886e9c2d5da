"""What dnsroll's load balancer modules (roles loadbalancer and dnsdist,
library/) do alike on a host: read files that may be missing, find the
process a pid file names, wait for a port, and make changes that count
towards "changed" and fail with what changed so far.

Ansible packs this file into each module run (AnsiballZ), over SSH as
locally, because it sits in the module_utils directory beside the
playbooks. The nameserver role's module does without it: that playbook
runs from the revision's bundle, which ships the playbook, ansible.cfg and
its roles only (bundle.AnsibleFiles).
"""

import os
import socket
import tempfile
import time


def lb_options(**own):
    """A load balancer module's argument spec: its own options and those
    every one takes, which the roles' README.md describe."""
    return dict(
        own,
        lab=dict(type="bool", default=False),  # Run it directly instead of through systemd.
        lab_dir=dict(type="path", default=""),  # The lab load balancer's directory.
        listen_host=dict(type="str", required=True),  # Host of the listen address.
        listen_port=dict(type="int", required=True),  # Port of the listen address.
        timeout=dict(type="int", default=30),  # Seconds for each wait.
    )


def read(path):
    """The file's text, or "" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def live_pid(pid_file, comm):
    """The pid in pid_file when that process runs and is named comm, else 0:
    a missing file, a dead pid, a zombie and a pid reused by another
    program are all no process of ours."""
    try:
        pid = int(read(pid_file).strip())
    except ValueError:
        return 0
    if read(f"/proc/{pid}/comm").strip() != comm or read(f"/proc/{pid}/stat").split(" ")[2:3] == ["Z"]:
        return 0
    return pid


def accepts(host, port):
    """Whether host:port accepts a TCP connection within a second."""
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


class Host:
    """One module run's changes on the host. Each method that changes
    something sets changed, so a failure still reports what was done."""

    def __init__(self, module):
        self.m = module
        self.p = module.params
        self.changed = False

    def fail(self, msg, **kw):
        self.m.fail_json(msg=msg, changed=self.changed, **kw)

    def command(self, argv, what, ok=(0,)):
        """Runs argv; an exit status outside ok fails the run, naming what."""
        rc, out, err = self.m.run_command(argv)
        if rc not in ok:
            self.fail(f"{what} failed (rc {rc}): {(err or out).strip()}", cmd=argv)
        return rc

    def systemctl(self, verb, unit):
        self.command(["systemctl", verb, unit], f"systemctl {verb} {unit}")
        self.changed = True

    def mkdir(self, path, mode=0o755):
        if path and not os.path.isdir(path):
            os.makedirs(path, mode=mode, exist_ok=True)
            self.changed = True

    def own(self, path, user, group, mode):
        """Sets path's owner, group and mode (a VM's; the lab runs as
        whoever runs it)."""
        self.changed |= self.m.set_owner_if_different(path, user, False)
        self.changed |= self.m.set_group_if_different(path, group, False)
        self.changed |= self.m.set_mode_if_different(path, mode, False)

    def write(self, path, content, mode, validate=None, checker=""):
        """Writes content to path, whole (a rename), only once validate (an
        argv to which the new file's path is appended) accepts it; content
        already in place is left as it is. A refusal fails with "failed to
        validate", which dnsroll reports as an invalid config, not
        retryable (lb.Playbook). It returns whether it wrote."""
        if os.path.exists(path) and read(path) == content:
            return False
        fd, tmp = tempfile.mkstemp(prefix=".dnsroll-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as f:
                f.write(content)
            os.chmod(tmp, mode)
            if validate:
                rc, out, err = self.m.run_command(validate + [tmp])
                if rc != 0:
                    self.fail(f"failed to validate {path}: {checker}: {(err or out).strip()}")
            os.replace(tmp, path)
            tmp = None
        finally:
            if tmp:
                os.unlink(tmp)
        self.changed = True
        return True
