"""`python -m bench.remote_calls OUT.json PYINFRA-ARGS...`: pyinfra's CLI, counting per host the
commands it runs there (facts and operations alike) and the files it moves, at pyinfra's ssh
connector; the counts go to OUT.json when it exits."""

import atexit
import json
import sys
from collections import defaultdict
from pathlib import Path

from pyinfra.connectors.ssh import SSHConnector
from pyinfra_cli.main import main

calls = defaultdict(lambda: {"commands": 0, "transfers": 0})


def counted(method, kind: str):
    def wrapper(self, *args, **kwargs):
        calls[self.host.name][kind] += 1
        return method(self, *args, **kwargs)
    return wrapper


SSHConnector.run_shell_command = counted(SSHConnector.run_shell_command, "commands")
SSHConnector.put_file = counted(SSHConnector.put_file, "transfers")
SSHConnector.get_file = counted(SSHConnector.get_file, "transfers")

if __name__ == "__main__":
    out = Path(sys.argv[1])
    atexit.register(lambda: out.write_text(json.dumps(calls, indent=2, sort_keys=True) + "\n"))
    sys.argv = ["pyinfra", *sys.argv[2:]]
    sys.exit(main())
