"""TOS host toolkit: which roles run on which hosts.

    pyinfra -y inventories/lab.py deploy.py        (the lab; `make lab` does this for you)
    pyinfra inventories/production.py deploy.py    (your cluster; add --dry to see the plan)
"""

from roles.base import base

base()  # every host: hostname, time sync, essential packages, hardened sshd
