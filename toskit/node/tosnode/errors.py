"""The one error type the node tool reports: a message that says what happened and what to do."""


class NodeError(Exception):
    pass


class VaultUnreachable(NodeError):
    pass


class VaultDenied(NodeError):
    pass
