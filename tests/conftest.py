"""Options shared by every test tier (declared here so pytest sees them at start-up)."""

import os
import sys
from pathlib import Path

# Tests import the project's packages (toskit, roles) from the checkout itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pytest_addoption(parser):
    parser.addoption("--inventory", default=os.environ.get("TOS_INVENTORY", "inventories/lab.py"),
                     help="pyinfra inventory whose hosts the audits check (default: the lab's; "
                          "env TOS_INVENTORY)")
    parser.addoption("--limit", metavar="HOSTS", default=None,
                     help="audit only these inventory hosts or groups, comma-separated (as pyinfra's --limit)")
    parser.addoption("--audit-report", metavar="PATH", default=None,
                     help="also write the audits' per-host, per-control report there (Markdown)")
