"""Programs the roles install on nodes: the session tool (tosnode, bundled by roles/sessions.py) and the
session image's programs. The roles read their constants; nothing here runs on the operator's machine."""
