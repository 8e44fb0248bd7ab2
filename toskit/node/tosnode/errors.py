"""The node tool's errors: each a message that says what happened and what to do (NodeError), with
Vault's two failures apart, as callers treat them differently (fail closed, or stop)."""


class NodeError(Exception):
    pass


class VaultUnreachable(NodeError):
    pass


class VaultDenied(NodeError):
    pass
