"""lab: boot, inspect and tear down the TOS test lab.

    python -m toskit.lab up            build (once) and boot the hosts, OpenBao and the package cache
    python -m toskit.lab status        what is running
    python -m toskit.lab ssh HOST [CMD]
    python -m toskit.lab down          stop everything the lab started; keeps hosts' disks and Vault data
    python -m toskit.lab rebuild HOST  destroy one host's disk and boot it fresh (a replaced machine)
    python -m toskit.lab destroy       down, then delete the lab's state (the image cache stays)

Settings come from TOS_LAB_* environment variables; see toskit/lab/config.py and the README.
"""

import argparse
import os
import sys

from .config import LabConfig
from .errors import LabError
from .lab import Lab
from .vm import ssh_argv


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="bring the lab up (idempotent)")
    sub.add_parser("down", help="stop every lab process; keep disks and Vault data")
    sub.add_parser("status", help="show what is running")
    sub.add_parser("destroy", help="down, then delete the lab's state")
    rebuild = sub.add_parser("rebuild", help="destroy one host's disk and identity, boot it fresh")
    rebuild.add_argument("host")
    ssh = sub.add_parser("ssh", help="open a shell on a lab host, or run a command there")
    ssh.add_argument("host")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    try:
        config = LabConfig.from_env()
        lab = Lab(config, log=lambda msg: print(f"lab: {msg}", flush=True))
        if args.command in ("up", "rebuild"):
            timings = lab.rebuild(args.host) if args.command == "rebuild" else lab.up()
            for name, seconds in timings["boot_to_ssh_s"].items():
                booted = "booted" if name in timings["booted"] else "already up"
                print(f"lab: {name:10} {booted:10} ssh ok after {seconds:6.1f} s")
            print(f"lab: up in {timings['up_s']} s; inventory: inventories/lab.py; Vault: {lab.vault.url}")
        elif args.command == "down":
            stopped = lab.down()
            print(f"lab: stopped {', '.join(stopped) if stopped else 'nothing (nothing was running)'}")
        elif args.command == "destroy":
            lab.destroy()
            print(f"lab: destroyed {config.state_dir} (image cache kept in {config.cache_dir})")
        elif args.command == "status":
            for part, state in lab.status().items():
                if isinstance(state, dict):
                    for name, host_state in state.items():
                        print(f"{name:14} {host_state}")
                else:
                    print(f"{part:14} {state}")
        elif args.command == "ssh":
            host = config.host(args.host)
            command = ssh_argv(config, host, *args.cmd, batch=bool(args.cmd))
            os.execvp(command[0], command)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
