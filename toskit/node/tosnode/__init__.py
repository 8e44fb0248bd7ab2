"""tosnode: the node side of the TOS toolkit (standard library only; runs on the nodes as root).

Installed by the sessions role inside /usr/local/sbin/tos-session (one zipapp: roles/sessions.py tool_bundle).
"""
