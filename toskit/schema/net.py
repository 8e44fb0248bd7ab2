"""Addresses, networks and URLs of the site's data. They end up in sshd_config, chrony.conf, NFS
exports and Vault's CIDR bindings, so each is parsed by `ipaddress` and also held to its plain
characters: `ipaddress` takes any text after an IPv6 zone's '%' (newlines included)."""

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Strict
from pydantic_core import PydanticCustomError

from .types import is_hostname, refuse

IP_CHARACTERS = re.compile(r"[0-9A-Fa-f:.]+", re.ASCII)  # no zone ids, no spaces, nothing else
ADDRESS_FIX = "write an address such as 10.0.0.5 or fd00::5"


def parse_ip(value: str):
    if not IP_CHARACTERS.fullmatch(value):
        refuse("is not an IP address (digits, hex, ':' and '.' only; no zone ids)", ADDRESS_FIX)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        refuse("is not an IP address", ADDRESS_FIX)


def _ip(value: str) -> str:
    parse_ip(value)
    return value


def _unicast(value: str) -> str:
    address = parse_ip(value)
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved \
            or address == ipaddress.ip_address("255.255.255.255"):
        refuse("is not an address another host can reach (unspecified, loopback, multicast or reserved)",
               "write the host's own address on the cluster network, e.g. 10.0.0.21")
    return value


IPAddress = Annotated[str, Strict(), AfterValidator(_ip)]
HostAddress = Annotated[str, Strict(), AfterValidator(_unicast)]


def _address(value: str) -> str:
    if IP_CHARACTERS.fullmatch(value) and ":" in value or re.fullmatch(r"[0-9.]+", value):
        return _ip(value)
    name = value[:-1] if value.endswith(".") else value  # a fully qualified name may end in '.'
    if not is_hostname(name.lower()):
        refuse("is not an IP address or a hostname", "write an address such as 10.0.0.5, or a name such as "
               "ntp.example.org")
    return value


Address = Annotated[str, Strict(), AfterValidator(_address)]


def parse_network(value: str):
    fix = "write a network such as 10.0.0.0/24 (no host bits set) or 10.0.0.5/32"
    if not re.fullmatch(r"[0-9A-Fa-f:.]+/[0-9]{1,3}", value, re.ASCII):
        refuse("is not a network in CIDR form (address/prefix length)", fix)
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        refuse(f"is not a network in CIDR form ({e})", fix)


def _network(value: str) -> str:
    parse_network(value)
    return value


def _private_network(value: str) -> str:
    if not parse_network(value).is_private:
        refuse("is not a private network: hosts on the internet would be served",
               "write the cluster's own network, e.g. 10.0.0.0/24")
    return value


def _one_host(value: str) -> str:
    network = parse_network(value)
    if network.num_addresses != 1:
        refuse(f"covers {network.num_addresses} addresses: the node's Vault credential would work from all",
               "write the one address the node's requests come from, e.g. 10.0.0.21/32")
    return value


Network = Annotated[str, Strict(), AfterValidator(_network)]
PrivateNetwork = Annotated[str, Strict(), AfterValidator(_private_network)]
OneHostNetwork = Annotated[str, Strict(), AfterValidator(_one_host)]


def _url(value: str, fix: str, *, https_only: bool, path: bool):
    if not value.isascii() or not value.isprintable() or " " in value:  # urlsplit drops some silently
        refuse("is not a URL (it has spaces or control characters)", fix)
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError:
        refuse("is not a URL", fix)
    if https_only and not value.startswith("https://"):
        refuse("is not an https:// address: what it carries would travel in the clear", fix)
    if not value.startswith(("http://", "https://")):
        refuse("is not an http:// or https:// address", fix)
    if url.username or url.password or url.query or url.fragment or port == 0 \
            or (not path and url.path not in ("", "/")):
        refuse(f"has more than a scheme, host{', path' if path else ''} and port", fix)
    try:
        _address(url.hostname or "")
    except PydanticCustomError:
        refuse("does not name a valid host", fix)
    return value


def _https_url(value: str) -> str:
    return _url(value, "write it like https://vault.example.org:8200 (https, a host, an optional port, nothing else)",
                https_only=True, path=False)


def _issuer_url(value: str) -> str:
    return _url(value, "write the issuer exactly as the provider publishes it, e.g. https://sso.example.org/realms/staff",
                https_only=True, path=True)


def _mirror_url(value: str) -> str:
    # apt checks every package's signature, so plain http is how most Debian mirrors are reached.
    return _url(value, "write it like http://deb.debian.org/debian (http or https, a host, a port, a path)",
                https_only=False, path=True)


HttpsUrl = Annotated[str, Strict(), AfterValidator(_https_url)]
# An OpenID Connect issuer: https, a host, an optional port and path (kept exactly as written: the
# ID token's `iss` must equal it).
IssuerUrl = Annotated[str, Strict(), AfterValidator(_issuer_url)]
# A Debian mirror or an http proxy: http(s), a host, an optional port and path.
MirrorUrl = Annotated[str, Strict(), AfterValidator(_mirror_url)]


def network_of(address: str) -> str:
    """The network of one address: 10.0.0.5/32, fd00::5/128 (NFS exports, Vault CIDRs)."""
    return str(ipaddress.ip_network(address))
