"""TOS host toolkit: which roles run on which hosts.

    pyinfra -y inventories/lab.py deploy.py        (the lab; `make lab` does this for you)
    pyinfra inventories/production.py deploy.py    (your cluster; add --dry to see the plan)
"""

from pyinfra import host

from roles import packages_of
from roles.base import base
from roles.hibernation import hibernation
from roles.quotas import quotas
from roles.runtime import runtime
from roles.sessions import sessions
from roles.storage import storage
from roles.storage_server import storage_server
from roles.vault import vault

ROLES_BY_GROUP = {
    "storage": [
        storage_server,  # NFS v4.2 export of the tenants' (encrypted) volume files, to the nodes only
    ],
    "nodes": [
        runtime,   # hardened Docker with user namespaces, auditd watching it
        quotas,    # one slice (quotas) and one network per tenant
        sessions,  # the session image, built here, and the tos-session tool
        storage,   # the volume share, LUKS tools; volumes open on demand for sessions
        vault,     # tenants' keys and this node's AppRole in Vault; the node enrolled (secret in RAM)
        hibernation,  # CRIU checkpoints of idle sessions into their volumes; the idle policy timer
    ],
}
roles = [role for group, members in ROLES_BY_GROUP.items() if group in host.groups for role in members]

base(role_packages=packages_of(roles, host.data))  # every host: hostname, time, packages, hardened sshd
for role in roles:
    role()
