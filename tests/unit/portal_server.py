"""The portal as uvicorn serves it on a gateway, for the browser tests on this machine:
`python -m uvicorn --factory portal_server:app` with the settings file TOS_PORTAL_SETTINGS names."""

import os
from pathlib import Path

from toskit.gateway.portal.app import Portal
from toskit.gateway.portal.settings import load


def app():
    return Portal(load(Path(os.environ["TOS_PORTAL_SETTINGS"]))).application()
