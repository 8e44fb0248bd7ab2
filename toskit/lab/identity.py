"""The lab's enterprise sign-in: OpenBao as an OIDC provider, with one userpass person per lab tenant.

What a site's own identity provider would be, made real in the lab (no public provider is ever
contacted): a provider `tos` whose issuer is the name both a browser on this machine and the
gateway guest reach OpenBao by; the portal's confidential client; people as identity entities
(their e-mail in the entity's metadata, the claim the tenants' people lists name); passwords in a
0600 file of the lab's state folder. The client secret goes where the portal reads it: Vault's KV.
"""

import json
import secrets
from dataclasses import dataclass

import hvac
import hvac.exceptions

from . import keys
from ..vault import enable_kv_v2

PROVIDER = "tos"
CLIENT = "tos-portal"
KEY = "tos-portal"
ASSIGNMENT = "tos-lab-people"
USERPASS = "userpass"
SCOPES = {  # OpenBao templates: the claims each scope adds to the ID token
    "email": '{"email": {{identity.entity.metadata.email}}, "email_verified": true}',
    "profile": '{"name": {{identity.entity.name}}}',
}


@dataclass(frozen=True)
class LabPerson:
    username: str
    email: str


def _entity_id(client: hvac.Client, person: LabPerson, accessor: str) -> str:
    # Creating answers with the entity; updating answers 204 (hvac: a bare Response): read it then.
    client.secrets.identity.create_or_update_entity_by_name(person.username, metadata={"email": person.email})
    entity_id = client.secrets.identity.read_entity_by_name(person.username)["data"]["id"]
    aliases = client.secrets.identity.read_entity(entity_id)["data"].get("aliases") or []
    if not any(a["mount_accessor"] == accessor for a in aliases):
        client.secrets.identity.create_or_update_entity_alias(person.username, entity_id, accessor)
    return entity_id


def apply(client: hvac.Client, state_dir, issuer_host: str, redirect_uris: list, people: list) -> dict:
    """Makes OpenBao the lab's OIDC provider; returns {client_id, client_secret, issuer}. Idempotent:
    passwords already written are kept."""
    if f"{USERPASS}/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("userpass", path=USERPASS)
    accessor = client.sys.list_auth_methods()["data"][f"{USERPASS}/"]["accessor"]
    passwords_file = state_dir / "people.json"
    passwords = json.loads(passwords_file.read_text()) if passwords_file.exists() else {}
    entity_ids = []
    for person in people:
        passwords.setdefault(person.username, secrets.token_urlsafe(18))
        client.auth.userpass.create_or_update_user(person.username, passwords[person.username],
                                                   mount_point=USERPASS, token_ttl="10m")
        entity_ids.append(_entity_id(client, person, accessor))
    keys.write_secret(passwords_file, json.dumps(passwords, indent=2).encode())

    client.write_data(f"identity/oidc/key/{KEY}", data={"allowed_client_ids": ["*"], "algorithm": "ES256",
                                                         "verification_ttl": "2h", "rotation_period": "24h"})
    for scope, template in SCOPES.items():
        client.write_data(f"identity/oidc/scope/{scope}", data={"template": template})
    client.write_data(f"identity/oidc/assignment/{ASSIGNMENT}", data={"entity_ids": entity_ids})
    client.write_data(f"identity/oidc/client/{CLIENT}", data={
        "redirect_uris": redirect_uris, "assignments": [ASSIGNMENT], "key": KEY, "client_type": "confidential",
        "id_token_ttl": "5m", "access_token_ttl": "5m"})
    found = client.read(f"identity/oidc/client/{CLIENT}")["data"]
    client.write_data(f"identity/oidc/provider/{PROVIDER}", data={
        "issuer": issuer_host, "allowed_client_ids": [found["client_id"]], "scopes_supported": list(SCOPES)})
    issuer = client.read(f"identity/oidc/provider/{PROVIDER}")["data"]["issuer"]
    return {"client_id": found["client_id"], "client_secret": found["client_secret"], "issuer": issuer}


def password(state_dir, username: str) -> str:
    return json.loads((state_dir / "people.json").read_text())[username]


# A person the lab's provider knows who belongs to no tenant: the "access denied" case.
OUTSIDER = LabPerson("mallory", "mallory@outside.test")
CLIENT_FILE = "oidc-client.json"  # the provider's issuer and the portal's client_id (not secret)


def lab_people(tenants: list) -> list:
    """A userpass person per e-mail the lab's tenants list for the `lab` provider, and the outsider."""
    emails = [email for tenant in tenants for email in (tenant.get("people") or {}).get("lab", [])]
    return [LabPerson(email.split("@")[0], email) for email in emails] + [OUTSIDER]


def setup(config, vault, tenants: list, kv_mount: str, secret_path: str) -> dict:
    """The lab's provider for the lab's gateways, and the client secret where the portal reads it
    (as a site's administrator would put it there). Writes CLIENT_FILE; returns its content."""
    from .config import GATEWAY_SERVER_NAME, VAULT_NAME
    root = vault.root_client()
    redirect_uris = [f"https://{GATEWAY_SERVER_NAME}:{h.https_port}/auth/callback/lab"
                     for h in config.hosts if h.group == "gateways"]
    made = apply(root, vault.dir, f"https://{VAULT_NAME}:{config.vault_port}", redirect_uris, lab_people(tenants))
    if f"{kv_mount}/" not in root.sys.list_mounted_secrets_engines()["data"]:
        enable_kv_v2(root, kv_mount, secret_path)
    try:
        current = root.secrets.kv.v2.read_secret_version(secret_path, mount_point=kv_mount,
                                                         raise_on_deleted_version=True)["data"]["data"]
    except hvac.exceptions.InvalidPath:
        current = {}
    if current.get("client_secret") != made["client_secret"]:
        root.secrets.kv.v2.create_or_update_secret(secret_path, {"client_secret": made["client_secret"]},
                                                   mount_point=kv_mount)
    public = {"issuer": made["issuer"], "client_id": made["client_id"]}
    keys.write_secret(vault.dir / CLIENT_FILE, json.dumps(public).encode())
    return public


def client_info(state_dir) -> dict | None:
    path = state_dir / "vault" / CLIENT_FILE
    return json.loads(path.read_text()) if path.exists() else None
