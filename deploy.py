"""TOS host toolkit: which roles run on which hosts.

    pyinfra -y inventories/lab.py deploy.py        (the lab; `make lab` does this for you)
    pyinfra inventories/production.py deploy.py    (your cluster; add --dry to see the plan)
"""

from pyinfra import host

from roles.base import base
from roles.quotas import quotas
from roles.runtime import runtime
from roles.sessions import sessions

base()  # every host: hostname, time sync, essential packages, hardened sshd

if "nodes" in host.groups:
    runtime()  # hardened Docker with user namespaces, auditd watching it
    quotas()   # one slice (quotas) and one network per tenant
    sessions()  # the session image, built here, and the tos-session tool
