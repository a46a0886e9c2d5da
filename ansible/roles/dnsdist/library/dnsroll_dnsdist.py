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
   the queries in flight; a change of backends alone never restarts it); a
   restart that fails (settings --check-config passes but dnsdist cannot
   start with, such as an address another program holds) puts the previous
   config back, restarts dnsdist with it, and fails;
7. wait until the listen address and the console accept TCP, then record
   the settings dnsdist runs.
"""

import base64
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dnsroll_host import Host, accepts, lb_options, live_pid, read, wait

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


def console_key(text):
    """Whether text is a console key: base64 of 32 bytes, one line."""
    try:
        return len(base64.b64decode(text.strip(), validate=True)) == 32
    except ValueError:
        return False


class Run(Host):
    def apply(self):
        p, lab = self.p, self.p["lab"]
        if lab:
            self.mkdir(p["lab_dir"])
        else:
            # A flip records its split here, written by dnsdist itself (as
            # _dnsdist, which its unit lets write under /var only).
            split_dir = os.path.dirname(p["split_file"])
            self.mkdir(split_dir, 0o750)
            self.own(split_dir, "_dnsdist", "_dnsdist", 0o750)

        # The key is made here and stays here; only its path travels. A key
        # that exists is kept: the running dnsdist has it.
        key = read(p["key_file"])
        if key and not console_key(key):
            # Never quoted: the failure goes into the workflow's history.
            self.fail("%s does not hold a console key (base64 of 32 bytes): write one (head -c 32 /dev/urandom | base64 > %s) "
                      "and restart dnsdist, which reads it when it starts" % (p["key_file"], p["key_file"]))
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
            was_running = live_pid(p["pid_file"], "dnsdist") != 0
        else:
            _, out, _ = self.m.run_command(["systemctl", "is-active", "dnsdist"])
            was_running = out.strip() == "active"
        # Another program on the port would make dnsdist fail to start with
        # a less helpful error; one that is just letting go gets 2 s.
        if not was_running and not wait(2, lambda: not accepts(p["listen_host"], p["listen_port"])):
            self.fail(f"{p['listen_host']}:{p['listen_port']} is taken by another program, probably nginx "
                      "from the nginx driver; stop it before moving this load balancer to dnsdist "
                      "(roles/dnsdist/README.md)")
        restart = was_running and read(p["settings_file"]) != p["settings"]

        # Point's backends are the whole truth: the split an earlier flip
        # recorded would override them at the next restart. Staging keeps it.
        if p["mode"] == "point" and os.path.lexists(p["split_file"]):
            os.unlink(p["split_file"])
            self.changed = True

        # Writing the file does not change the running dnsdist: it records
        # the backends for the next start; the console switch applies them.
        # The config it runs is kept, for a restart that fails.
        previous = read(p["conf_path"]) if restart else ""
        self.write(p["conf_path"], p["conf"], 0o640, validate=["dnsdist", "--check-config", "-C"],
                   checker="dnsdist --check-config")
        if not lab:
            self.own(p["conf_path"], "root", "_dnsdist", 0o640)
            rc, out, _ = self.m.run_command(["systemctl", "is-enabled", "dnsdist"])
            if out.strip() != "enabled":
                self.systemctl("enable", "dnsdist")
        why = self.bring_up(was_running, restart)
        if why and previous:
            # --check-config binds nothing: settings dnsdist cannot start
            # with (an address another program holds, or not on this
            # machine) pass it, and the restart stopped the dnsdist that
            # served. The previous config serves again; these settings stay
            # unrecorded, so the next run tries them again.
            self.write(p["conf_path"], previous, 0o640)
            if not lab:
                # dnsdist reads it as _dnsdist, as the config written above.
                self.own(p["conf_path"], "root", "_dnsdist", 0o640)
            # dnsdist tells systemd (and the lab's start-stop-daemon) when
            # it serves; the addresses of the previous settings are not
            # known here to check.
            again = self.bring_up(False, True, check=False)
            self.fail(f"dnsdist did not start with the new settings ({why}); the previous config was put back and dnsdist "
                      + ("restarted with it" if not again else f"did not start with it either ({again})"))
        if why:
            self.fail(why)
        # Written only once dnsdist runs these settings.
        self.write(p["settings_file"], p["settings"], 0o644)
        self.m.exit_json(changed=self.changed, restarted=restart, was_running=was_running)

    def bring_up(self, was_running, restart, check=True):
        """Starts dnsdist, or restarts it; "" once it listens and its console
        answers (with check), else why not. When it ran with the same
        settings, nothing is done but the check."""
        p, lab = self.p, self.p["lab"]
        if not lab:
            verb = "restart" if restart else "" if was_running else "start"
            if verb:
                self.changed = True
                rc, out, err = self.m.run_command(["systemctl", verb, "dnsdist"])
                if rc != 0:
                    return f"systemctl {verb} dnsdist failed (rc {rc}): {(err or out).strip()}"
        elif restart or not was_running:
            if restart:
                # 1: nothing was running after all, which is what stop wants.
                self.command(["start-stop-daemon", "--stop", "--retry", "TERM/5/KILL/5",
                              "--pidfile", p["pid_file"], "--exec", "/usr/bin/dnsdist"],
                             "stopping the lab dnsdist", ok=(0, 1))
            self.changed = True
            rc, out, err = self.m.run_command(p["lab_start"])
            if rc != 0:
                return f"starting the lab dnsdist failed (rc {rc}): {(err or out).strip()}"
        for what, host, port in (("dnsdist", p["listen_host"], p["listen_port"]),
                                 ("the dnsdist console", p["console_host"], p["console_port"])):
            if check and not wait(p["timeout"], lambda: accepts(host, port)):
                return f"{what} does not accept TCP on {host}:{port} after {p['timeout']}s"
        return ""


def main():
    module = AnsibleModule(
        argument_spec=lb_options(
            conf=dict(type="str", required=True),  # The full dnsdist.conf.
            settings=dict(type="str", required=True),  # The config without backends.
            conf_path=dict(type="path", required=True),  # Where dnsdist reads its config.
            settings_file=dict(type="path", required=True),  # The settings dnsdist runs.
            console_conf=dict(type="path", required=True),  # The console client's config.
            console=dict(type="str", required=True),  # The console's address.
            console_host=dict(type="str", required=True),  # The console's host.
            console_port=dict(type="int", required=True),  # The console's port.
            key_file=dict(type="path", required=True, no_log=False),  # The console key's file.
            split_file=dict(type="path", required=True),  # Where a flip records its split.
            mode=dict(type="str", choices=["point", "stage"], default="point"),  # Point or stage.
            pid_file=dict(type="path", default=""),  # The lab dnsdist's pid file.
            lab_start=dict(type="list", elements="str", default=[]),  # How the lab starts dnsdist.
        ),
    )
    Run(module).apply()


if __name__ == "__main__":
    main()
