# Site-wide data for every host. Each role documents all of its keys and defaults in
# roles/<role>.py (DEFAULTS); set here only what your site changes, and say why.
# Per-group files (group_data/nodes.py; add group_data/storage.py for the storage hosts) and the
# inventory override this.

# Extra packages wanted on every host of this site (added to roles/base.py's base_packages).
base_extra_packages = []
