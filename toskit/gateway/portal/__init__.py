"""tos-portal: the gateway's Level-0 view and sign-in, behind nginx on loopback.

Runs on the gateway under Debian's python3 with Debian's starlette, uvicorn, authlib, httpx,
jinja2 and hvac: nothing here imports the toolkit (the deploy ships this package as one zipapp).
Settings come from /etc/tos/portal.json (no secret in it); client secrets from Vault.
"""
