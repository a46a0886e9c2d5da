#!/usr/bin/env python3
"""Print the state of the nginx whose pid file is argv[1] as one JSON line:

    {"master": PID, "workers": [PID, ...], "config_id": "dnsroll-..."}

master is 0 when no live nginx owns the pid file. workers lists only the
workers that serve traffic: a worker told to quit by a reload renames itself
"worker process is shutting down" and has closed its listening sockets.
config_id is what the running workers answer on the control socket argv[2]
(the ID dnsroll rendered into the config they loaded), "" when nothing
answers, and "mixed" when workers of two configs answer.

The role compares these before and after a reload: a switch is done when
the running workers serve the new config, not when its file is written, and
"nginx -s reload" and systemd's reload return before nginx has switched.
"""
import json
import os
import socket
import sys


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


def workers(master):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        # Fields: pid (comm) state ppid; nginx's comm has no spaces.
        fields = read(f"/proc/{name}/stat").split(" ")
        if len(fields) < 4 or fields[1] != "(nginx)" or fields[2] == "Z" or fields[3] != str(master):
            continue
        title = read(f"/proc/{name}/cmdline").replace("\0", " ").strip()
        if title == "nginx: worker process":
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


def config_id(path, tries=4):
    # Any worker may accept a connection, so ask a few times.
    seen = {ask(path) for _ in range(tries)}
    return seen.pop() if len(seen) == 1 else "mixed"


def main():
    pid_file, control_socket = sys.argv[1], sys.argv[2]
    master = master_pid(pid_file)
    state = {"master": master, "workers": [], "config_id": ""}
    if master:
        state["workers"] = workers(master)
        state["config_id"] = config_id(control_socket)
    print(json.dumps(state))


if __name__ == "__main__":
    main()
