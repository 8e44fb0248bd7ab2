"""tosnode: the node side of the TOS toolkit (standard library only; runs on the nodes as root).

Installed by the sessions role under /usr/local/lib/tos/tosnode and driven by /usr/local/sbin/tos-session.
"""
