"""tos-session: tenants' desktop sessions and encrypted volumes on this node.

    tos-session start TENANT                 open the tenant's volume, run its session on it (restored
                                             from its checkpoint if it hibernated)
    tos-session stop TENANT                  stop the session, close the volume
    tos-session list                         sessions on this node
    tos-session exec TENANT CMD...           run CMD in the session as its unprivileged user
    tos-session pause TENANT                 freeze the session (no CPU); `resume` thaws it
    tos-session resume TENANT
    tos-session hibernate TENANT             checkpoint it into its volume, verify, free this node
    tos-session restore TENANT [--take-over] bring it back here (any node), or cold-start it
    tos-session status [TENANT]              sessions here and hibernated ones
    tos-session report [TENANT]              the same, and this node's memory, as JSON (for the broker)
    tos-session address TENANT               where the running session's channel is, ADDRESS:PORT (node API)
    tos-session reader                       report and address, a command a JSON line on standard input,
                                             answered a JSON line each (the node API keeps one running)
    tos-session policy                       the idle policy, once (tos-session-policy.timer runs it)
    tos-session volume open TENANT [--take-over]
                                             unlock (creating it on first use) and mount the volume
    tos-session volume close TENANT          unmount and lock it (refused while a session uses it)
    tos-session volume status [TENANT]       size, key version, where it is open
    tos-session volume rotate TENANT         new transit key version; rewrap the key, data untouched
    tos-session vault-check                  can this node log in to Vault? (ok / why not)
    tos-session vault-enrol                  unwrap the secret_id the deploy left (run by the deploy)

Tenants come from /etc/tos/tenants.json and storage from /etc/tos/node.json, both written by the deploy.
Exit status: 0 done, 1 refused or failed (the message says why), 75 deferred: storage or Vault did
not answer (the session was left paused), or another command was changing the same session for
longer than 10 minutes (nothing was done); the same command can be run again.
Commands that change a session or its volume run one at a time per tenant (locks.py).
"""

import argparse
import json
import sys
from pathlib import Path

from . import checkpoints, freezer, hibernation, locks, policy, restore, sessions
from .errors import NodeError
from .vaultclient import NodeVault
from .nodeconfig import NodeConfig

READS = ("report", "address")  # what `tos-session reader` answers: reads only, no lock, no change


def list_sessions(tenants_file: dict) -> str:
    """Sessions on this node, as `status` shows them (a frozen one is paused)."""
    lines = [f"{'TENANT':14} STATE"]
    for t in tenants_file["tenants"]:
        lines.append(f"{t['id']:14} {freezer.state(t['id']) or '-'}")
    return "\n".join(lines)


def session_report(tenants_file: dict, tenant_id: str) -> dict:
    """Where a tenant's session is and in what state, as this node sees it (reads only)."""
    volume = sessions.volume(tenants_file, tenant_id)
    lease = volume.lease()
    report = {"tenant": tenant_id, "here": freezer.state(tenant_id), "lease": lease and lease["node"],
              "checkpoint": None}
    if volume.is_mounted():
        state = checkpoints.read_state(volume.checkpoints)
        report.update(volume="open", state=state["state"])
        if state.get("checkpoint"):
            report["checkpoint"] = {"name": state["checkpoint"]}
        return report
    try:
        marker = json.loads(hibernation.marker(volume).read_text())
    except FileNotFoundError:
        marker = None
    report.update(volume="leased" if lease else "closed",
                  state="elsewhere" if lease else "hibernated" if marker else "stopped")
    if marker:
        report["checkpoint"] = {"name": marker["checkpoint"], "bytes": marker["bytes"], "node": marker["node"]}
    return report


def node_report(tenants_file: dict, tenant_id: str | None) -> dict:
    """`tos-session report`: what a broker places sessions by (JSON; README: placement)."""
    ids = [tenant_id] if tenant_id else [t["id"] for t in tenants_file["tenants"]]
    if tenant_id:
        sessions.tenant(tenants_file, tenant_id)
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return {"node": NodeConfig.load().name, "drained": bool(tenants_file.get("drained")),
            "memory": {key: int(meminfo[name].split()[0]) * 1024
                       for key, name in (("total_bytes", "MemTotal"), ("available_bytes", "MemAvailable"))},
            "sessions": [session_report(tenants_file, tid) for tid in ids]}


def status(tenants_file: dict, tenant_id: str | None) -> str:
    """Sessions here and hibernated ones: where each is, its volume, its checkpoint."""
    report = node_report(tenants_file, tenant_id)
    lines = [f"{'TENANT':14} {'HERE':8} {'VOLUME':10} {'STATE':14} CHECKPOINT"]
    for s in report["sessions"]:
        where = {"open": "open", "closed": "closed"}.get(s["volume"]) or f"on {s['lease']}"
        cp = s["checkpoint"]
        cp = "-" if not cp else cp["name"] if "bytes" not in cp else \
            f"{cp['name']} ({cp['bytes'] / 2**20:.1f} MiB, from {cp['node']})"
        lines.append(f"{s['tenant']:14} {s['here'] or '-':8} {where:10} {s['state']:14} {cp}")
    if report["drained"]:
        lines.append("(this node is drained: it starts and restores no new session)")
    return "\n".join(lines)


def volume_command(tenants_file: dict, args) -> str:
    if args.action == "status":
        ids = [args.tenant] if args.tenant else [t["id"] for t in tenants_file["tenants"]]
        lines = [f"{'TENANT':14} {'SIZE':>8} KEY  OPEN-HERE  LEASED-BY"]
        for tenant_id in ids:
            s = sessions.volume(tenants_file, tenant_id).status()
            size = f"{s['size'] // 2**20}M" if s["exists"] else "-"
            version = f"v{s['key_version']}" if s["exists"] else "-"
            lines.append(f"{tenant_id:14} {size:>8} {version:4} {'yes' if s['open_here'] else 'no':10} "
                         f"{s['leased_by'] or '-'}")
        return "\n".join(lines)
    if not args.tenant:
        raise NodeError(f"volume {args.action} needs a TENANT")
    sessions.tenant(tenants_file, args.tenant)  # an unknown one is named before any lock is made for it
    with locks.tenant_lock(args.tenant, f"volume {args.action}"):
        if args.action == "open":
            return sessions.volume(tenants_file, args.tenant).open(take_over=args.take_over)
        if args.action == "close":
            return sessions.close_volume(tenants_file, args.tenant)
        return sessions.volume(tenants_file, args.tenant).rotate()


def session_command(tenants_file: dict, args) -> str:
    """start, stop, pause, resume, hibernate, restore: each under the tenant's lock (locks.py)."""
    sessions.tenant(tenants_file, args.tenant)
    with locks.tenant_lock(args.tenant, args.command):
        if args.command in ("start", "restore"):  # a hibernated session always comes back restored
            return restore.restore(tenants_file, args.tenant, take_over=getattr(args, "take_over", False))
        return {"stop": sessions.stop, "pause": hibernation.pause, "resume": hibernation.resume,
                "hibernate": hibernation.hibernate}[args.command](tenants_file, args.tenant)


def vault_check() -> str:
    with NodeVault(NodeConfig.load().vault):
        return "ok"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tos-session", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop", "pause", "resume", "hibernate", "restore"):
        sub.add_parser(name).add_argument("tenant")
    sub.choices["restore"].add_argument("--take-over", action="store_true",
                                        help="restore even though another node holds the lease (only if it is gone)")
    sub.add_parser("status").add_argument("tenant", nargs="?")
    sub.add_parser("report").add_argument("tenant", nargs="?")
    sub.add_parser("address").add_argument("tenant")
    sub.add_parser("reader")
    sub.add_parser("policy")
    sub.add_parser("list")
    exec_parser = sub.add_parser("exec")
    exec_parser.add_argument("tenant")
    exec_parser.add_argument("cmd", nargs=argparse.REMAINDER)
    vol = sub.add_parser("volume")
    vol.add_argument("action", choices=("open", "close", "status", "rotate"))
    vol.add_argument("tenant", nargs="?")
    vol.add_argument("--take-over", action="store_true",
                     help="open even though another node holds the lease (only if that node is gone)")
    sub.add_parser("vault-check")
    sub.add_parser("vault-enrol")
    return parser


def outcome(args) -> tuple[int, str]:
    """(exit status, what to print) of one command; raises what `answer` turns into 75 or 1."""
    if args.command == "vault-check":
        return 0, vault_check()
    if args.command == "vault-enrol":
        NodeVault(NodeConfig.load().vault).enrol()
        return 0, "enrolled: this node's secret_id is in /run/tos/vault (RAM only)"
    tenants_file = sessions.load_tenants_file()
    if args.command == "exec":  # its output is the command's own
        return sessions.exec_in(tenants_file, args.tenant, args.cmd), ""
    if args.command == "volume":
        return 0, volume_command(tenants_file, args)
    if args.command == "list":
        return 0, list_sessions(tenants_file)
    if args.command == "status":
        return 0, status(tenants_file, args.tenant)
    if args.command == "report":
        return 0, json.dumps(node_report(tenants_file, args.tenant), indent=2, sort_keys=True)
    if args.command == "address":
        return 0, hibernation.channel_address(tenants_file, args.tenant)
    if args.command == "policy":
        done, failed = policy.run(tenants_file)
        return (1 if failed else 0), "\n".join(done + failed) or "policy: nothing to do"
    return 0, session_command(tenants_file, args)


def answer(args) -> tuple[int, str, str]:
    """(exit status, standard output, error message) of one command: 0 done, 75 deferred or busy, 1 refused."""
    try:
        code, out = outcome(args)
        return code, out, ""
    except (hibernation.Deferred, locks.Busy) as e:
        return 75, "", f"tos-session: {e}"
    except (NodeError, OSError, json.JSONDecodeError) as e:
        return 1, "", f"tos-session: {e}"


def reader(lines, write) -> int:
    """`tos-session reader`: the node API's resident reader (nodeapi/reader.py). A command a line in (its
    argv as a JSON list), one JSON line out ({"code", "out", "err"}: what the command would have exited
    with and printed), until its input ends. Only READS: it answers what the node API asks most often
    without a new Python process each time (0.4 of a call's 0.7 s on the lab's nodes), and changes nothing."""
    commands = parser()
    for line in lines:
        try:
            argv = json.loads(line)
            if not (isinstance(argv, list) and argv and argv[0] in READS
                    and all(isinstance(a, str) and not a.startswith("-") for a in argv)):  # no --help
                raise ValueError(f"not one of {', '.join(READS)} with its arguments")
            args = commands.parse_args(argv)
        except (ValueError, SystemExit) as e:  # argparse has said why on standard error
            code, out, err = 2, "", f"tos-session reader: refused {line.strip()[:200]!r}: {e}"
        else:
            code, out, err = answer(args)
        write(json.dumps({"code": code, "out": out, "err": err}) + "\n")
    return 0


def main(argv=None) -> int:
    commands = parser()
    args = commands.parse_args(argv)
    if args.command == "exec" and not args.cmd:
        commands.error("exec needs a command")
    if args.command == "reader":
        return reader(sys.stdin, lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    code, out, err = answer(args)
    if out:
        print(out)
    if err:
        print(err, file=sys.stderr)
    return code
