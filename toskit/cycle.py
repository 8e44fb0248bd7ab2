"""Deploy then audit an inventory, and sum it up on one screen (`make lab`).

The last line is machine-readable:  lab: hosts=N changed=C audit_passed=P audit_failed=F
Exit status is non-zero if the deploy or any audit failed.
"""

import argparse
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# Each host's audits in a worker of their own (tests/audit/conftest.py): the lab's two nodes side by
# side, the storage host's and the gateway's audits in whichever worker is free first.
AUDIT_WORKERS = ["-n", "2", "--dist", "loadgroup"]
OP_RESULT = re.compile(r"^\s+\[(?P<host>[^\]]+)\]\s+(?P<result>Success|No changes|Error)", re.M)


def _tee(argv: list, log: Path) -> tuple[int, str]:
    """Runs argv, streaming its output to the terminal and to `log`; returns (status, output)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    output = []
    with open(log, "w") as out, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 text=True, cwd=PROJECT_ROOT) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            out.write(line)
            output.append(line)
    return proc.returncode, "".join(output)


def deploy_results(output: str) -> dict:
    """Per host: how many operations changed something, and how many failed (from pyinfra's output)."""
    results = {}
    for m in OP_RESULT.finditer(output):
        counts = results.setdefault(m["host"], {"changed": 0, "errors": 0})
        counts["changed"] += m["result"] == "Success"
        counts["errors"] += m["result"] == "Error"
    return results


def audit_results(junit: Path) -> tuple[int, int]:
    """(passed, failed) from pytest's junit report; errors count as failures."""
    try:
        suite = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return 0, 0
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return total - failed - int(suite.get("skipped", 0)), failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventories/lab.py")
    parser.add_argument("--label", default="lab", help="first word of the summary line")
    parser.add_argument("--audit-filter", metavar="EXPR", help="run only the audits pytest -k selects")
    parser.add_argument("--limit", metavar="HOSTS",
                        help="deploy and audit only these hosts or groups, comma-separated (pyinfra's --limit)")
    args = parser.parse_args(argv)
    logs = PROJECT_ROOT / ".lab" / "run"

    # Bad data is refused here, before any host is contacted.
    if subprocess.run([sys.executable, "-m", "toskit.check", args.inventory], cwd=PROJECT_ROOT).returncode:
        print(f"{args.label}: data check failed; nothing was deployed")
        return 1
    started = time.monotonic()
    patterns = [p.strip() for p in (args.limit or "").split(",") if p.strip()]
    deploy_status, output = _tee([str(VENV_BIN / "pyinfra"), "-y", args.inventory, "deploy.py",
                                  *(arg for p in patterns for arg in ("--limit", p))], logs / "deploy.log")
    deploy_seconds = time.monotonic() - started
    per_host = deploy_results(output)

    started = time.monotonic()
    junit = logs / "audit.xml"
    junit.unlink(missing_ok=True)
    _tee([str(VENV_BIN / "pytest"), "-q", "-p", "no:cacheprovider", "--durations=15", *AUDIT_WORKERS, "tests/audit",
          f"--inventory={args.inventory}", f"--junitxml={junit}", f"--audit-report={logs / 'audit-report.md'}",
          *([f"--limit={args.limit}"] if patterns else []),
          *(["-k", args.audit_filter] if args.audit_filter else [])], logs / "audit.log")
    audit_seconds = time.monotonic() - started
    passed, failed = audit_results(junit)

    changed = sum(h["changed"] for h in per_host.values())
    errors = sum(h["errors"] for h in per_host.values())
    print(f"\n== {args.label} summary ({args.inventory})")
    for host, result in per_host.items():
        print(f"  {host:12} changed={result['changed']:<4} errors={result['errors']}")
    print(f"  deploy: {'ok' if deploy_status == 0 else f'FAILED (exit {deploy_status})'} in {deploy_seconds:.1f} s"
          f"; log {logs / 'deploy.log'}")
    print(f"  audit:  {passed} passed, {failed} failed in {audit_seconds:.1f} s; log {logs / 'audit.log'}, "
          f"report {logs / 'audit-report.md'}")
    print(f"{args.label}: hosts={len(per_host)} changed={changed} audit_passed={passed} audit_failed={failed}")
    return 0 if deploy_status == 0 and errors == 0 and failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
