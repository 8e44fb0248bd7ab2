"""`python -m bench.remote_calls OUT.json PYINFRA-ARGS...`: pyinfra's CLI, counting per host the
commands it runs there (facts and operations alike) and the files it moves, at pyinfra's ssh
connector, with the commonest commands by their first words (secrets masked, as pyinfra prints
them); the counts go to OUT.json when it exits."""

import atexit
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from pyinfra.connectors.ssh import SSHConnector
from pyinfra_cli.main import main

calls = defaultdict(lambda: {"commands": 0, "transfers": 0})
kinds = defaultdict(Counter)  # host: {first words of a command: how often}


def counted(method, kind: str):
    def wrapper(self, *args, **kwargs):
        calls[self.host.name][kind] += 1
        if kind == "commands":
            command = args[0] if args else kwargs["command"]
            text = command.get_masked_value() if hasattr(command, "get_masked_value") else str(command)
            kinds[self.host.name][" ".join(text.split()[:3])[:60]] += 1
        return method(self, *args, **kwargs)
    return wrapper


def written() -> str:
    return json.dumps({host: {**counts, "commonest": kinds[host].most_common(8)} for host, counts in calls.items()},
                      indent=2, sort_keys=True) + "\n"


SSHConnector.run_shell_command = counted(SSHConnector.run_shell_command, "commands")
SSHConnector.put_file = counted(SSHConnector.put_file, "transfers")
SSHConnector.get_file = counted(SSHConnector.get_file, "transfers")

if __name__ == "__main__":
    out = Path(sys.argv[1])
    atexit.register(lambda: out.write_text(written()))
    sys.argv = ["pyinfra", *sys.argv[2:]]
    sys.exit(main())
