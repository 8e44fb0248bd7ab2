"""Reaching a gateway as a browser does, from the operator's machine: its HTTPS endpoint, a TLS
client trusting Vault's gateway CA (or the system's, for a site's own certificate)."""

import socket
import ssl


def endpoint(target) -> tuple:
    return target.data.get("gateway_audit_address") or target.address, target.data["gateway_audit_port"]


def handshake(target, context: ssl.SSLContext) -> ssl.SSLSocket:
    address, port = endpoint(target)
    raw = socket.create_connection((address, port), timeout=10)
    return context.wrap_socket(raw, server_hostname=target.data["gateway_server_name"])


def client(vault_ca, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if vault_ca:
        context.load_verify_locations(cadata=vault_ca)
    else:
        context.load_default_certs()
    context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # offered for real, so only the gateway can refuse
    return context
