"""Runs one approved command for the session agent and says how it ended.

The agent is the session's PID 1 and ignores SIGCHLD (the kernel reaps its orphans), so it never
learns a child's exit status; this runner, its child, takes SIGCHLD back and is the command's parent.

    python3 run.py JSON   JSON: {"argv": [...]} or {"script": LINE} (bash runs it; the gate read it)

The command's output (stdout and stderr together) is the runner's stdout; the runner's last word,
on stderr, is one JSON line: {"exit": status} (a signal N is 128 + N, as a shell says it).
"""

import json
import os
import signal
import subprocess
import sys


def main(argv: list) -> int:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # inherited as ignored through exec
    order = json.loads(argv[0])
    command = order["argv"] if "argv" in order else ["bash", "--noprofile", "--norc", "-c", order["script"]]
    env = {"HOME": os.environ.get("HOME", "/home/session"), "PATH": "/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "TERM": "dumb"}
    try:
        status = subprocess.run(command, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env,
                                cwd=env["HOME"]).returncode
    except OSError as e:  # no such command, not executable
        print(f"{command[0]}: {e.strerror}", flush=True)
        status = 127 if isinstance(e, FileNotFoundError) else 126
    sys.stderr.write(json.dumps({"exit": 128 - status if status < 0 else status}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
