# dnsroll's progress callback: appends the name of each task as it starts
# to the file named by DNSROLL_PROGRESS_FILE, one line each. The JSON stdout
# callback that dnsroll parses prints only when the play ends, so this is
# how a worker tells which task a long playbook is on (apt on a new VM).
# provision.Runner installs it for each run; it needs no enabling.
from __future__ import annotations

import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: dnsroll_progress
type: notification
short_description: writes each task's name, as it starts, to $DNSROLL_PROGRESS_FILE
description:
  - One line per task or handler, for dnsroll's progress reports.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "dnsroll_progress"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("DNSROLL_PROGRESS_FILE", "")

    def _started(self, task):
        if not self._path:
            return
        # The task's name as written in the playbook: by now Ansible has
        # templated task.name, and no variable's value (a secret among
        # them) may reach the file. A task without a name shows its action.
        raw = task.get_ds() if hasattr(task, "get_ds") else None
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name.strip():
            name = task.action or "a task"
        role = task._role.get_name(include_role_fqcn=False) if task._role else ""
        if role:
            name = role + " : " + name
        name = " ".join(name.split())
        try:
            with open(self._path, "a", encoding="utf-8") as f:
                f.write(name + "\n")
        except OSError:
            pass

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._started(task)
