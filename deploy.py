"""TOS host toolkit: every host gets base, then the roles of its inventory groups
(roles/__init__.py, ROLES_BY_GROUP: storage hosts serve the volumes, nodes run the sessions).

    pyinfra -y inventories/lab.py deploy.py        (the lab; `make lab` does this for you)
    pyinfra inventories/production.py deploy.py    (your cluster; add --dry to see the plan)
"""

from pyinfra import host

from roles import ROLE_DEPLOYS, roles_of
from roles.base import base

base()  # every host: hostname, time, packages (its roles' too), hardened sshd
for role in host.loop(ROLE_DEPLOYS):  # host.loop: each role's operations named apart (roles/__init__.py)
    if role in roles_of(host.groups):
        role()
