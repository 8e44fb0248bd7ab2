"""Programs the roles install on nodes: the session tool (tosnode and its launcher, bundled by
roles/sessions.py) and the session image's programs. The roles read them as files, to bundle or
upload them; nothing here is imported or run on the operator's machine (the unit tests do)."""
