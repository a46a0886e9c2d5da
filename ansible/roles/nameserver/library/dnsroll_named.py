#!/usr/bin/python3
"""Start named if it does not run, and reload it if its files changed since
it last loaded them (role nameserver; README.md says why).

One module rather than six tasks: every Ansible task costs a module run on
the host (and an SSH round trip). In order:

1. lab: find the lab named by its pid file (pgrep checks that the pid is a
   live process named "named", not a pid the kernel has since reused) and
   start it if none runs; named forks, waits until its child has loaded the
   config and bound its sockets, then exits. VM: enable and start
   named.service.
2. pending: named.conf or a zone file is newer than the stamp, or there is
   no stamp. Reloads key off the files, never off this run's changes: a run
   killed between writing a file and reloading must still reload on its
   retry, which sees no change. The role touches the stamp once named
   serves the files.
3. reload when pending: systemd on a VM; SIGHUP in the lab, which has no
   rndc, unless this run started named (it already read the files).

Returns pending, for the stamp.
"""

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: dnsroll_named
short_description: Start named, and reload it for files newer than the stamp
description: See the role's README.md.
options:
  lab: {type: bool, default: false, description: Run named directly instead of through systemd.}
  conf: {type: path, required: true, description: named.conf.}
  zone_dir: {type: path, required: true, description: The zone directory (a symlink to the current set).}
  pid_file: {type: path, required: true, description: The lab named's pid file.}
  stamp: {type: path, required: true, description: Touched once named serves the files.}
"""


def main():
    m = AnsibleModule(argument_spec=dict(
        lab=dict(type="bool", default=False),
        conf=dict(type="path", required=True),
        zone_dir=dict(type="path", required=True),
        pid_file=dict(type="path", required=True),
        stamp=dict(type="path", required=True),
    ))
    p = m.params
    changed = False

    def run(argv, what, journal=False):
        rc, out, err = m.run_command(argv)
        if rc != 0:
            msg = f"{what} failed (rc {rc}): {(err or out).strip()}"
            if journal:
                msg += "; " + named_journal()
            m.fail_json(msg=msg, changed=changed)
        return out

    def named_journal():
        # systemctl says only to look in the journal, on a VM the rollout
        # deletes once the step gives up: named's own last words go with
        # the failure instead.
        argv = ["journalctl", "-u", "named", "-n", "15", "--no-pager", "-o", "cat"]
        if not m.get_bin_path("journalctl"):
            # run_command would fail the module itself, losing the error.
            return "(no journalctl on this machine to show named's log)"
        rc, out, err = m.run_command(argv)
        lines = " | ".join(line.strip() for line in (out if rc == 0 else err).splitlines() if line.strip())
        return f"{' '.join(argv)}: {lines or '(nothing)'}"

    started = False
    if p["lab"]:
        rc, _, _ = m.run_command(["pgrep", "--pidfile", p["pid_file"], "--exact", "named"])
        if rc != 0:
            run(["named", "-c", p["conf"]], "starting the lab named")
            changed = started = True
    else:
        _, out, _ = m.run_command(["systemctl", "is-enabled", "named"])
        if out.strip() != "enabled":
            run(["systemctl", "enable", "named"], "systemctl enable named")
            changed = True
        _, out, _ = m.run_command(["systemctl", "is-active", "named"])
        if out.strip() != "active":
            run(["systemctl", "start", "named"], "systemctl start named", journal=True)
            changed = True

    # -H: the zone directory is a symlink to the current set.
    rc, out, _ = m.run_command(["find", "-H", p["conf"], p["zone_dir"], "-newer", p["stamp"]])
    pending = rc != 0 or out.strip() != ""

    if pending and not p["lab"]:
        run(["systemctl", "reload", "named"], "systemctl reload named", journal=True)
        changed = True
    elif pending and not started:
        run(["pkill", "-HUP", "--pidfile", p["pid_file"], "--exact", "named"], "reloading the lab named")
        changed = True
    m.exit_json(changed=changed, pending=pending, started=started)


if __name__ == "__main__":
    main()
