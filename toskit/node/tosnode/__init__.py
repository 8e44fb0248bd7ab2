"""tosnode: the node side of the TOS toolkit (standard library only; runs on the nodes as root).

Installed by the sessions role as /usr/local/sbin/tos-session (one zipapp: roles/sessions.py
tool_bundle); root's calls run it unpacked in /var/cache/tos-session (toskit/node/launcher.py).
"""
