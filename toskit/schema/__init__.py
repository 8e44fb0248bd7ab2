"""One declared schema for the site's data: each role's keys (roles/*.py, a RoleData model each),
the inventory's own keys and its shape (toskit/schema/inventory.py). Checked before any host is
contacted (`python -m toskit.check`), and again by each role when pyinfra plans it."""

from .errors import SITE_PREFIX, DataError, DataErrors
from .model import RoleData

__all__ = ["SITE_PREFIX", "DataError", "DataErrors", "RoleData"]
