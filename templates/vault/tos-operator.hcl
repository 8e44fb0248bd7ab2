# The least a TOS operator's token needs to run the vault and gateway roles (deploys) and rotate
# tenant keys.
#   bao policy write tos-operator templates/vault/tos-operator.hcl
#   bao token create -policy=tos-operator -ttl=8h
# Paths assume the default mounts (vault_transit_mount = "transit", vault_approle_mount = "approle",
# gateway_pki_mount = "pki", vault_cluster_pki_mount = "tos-cluster-pki", portal_kv_mount = "tos-kv",
# portal_kv_prefix = "tos/portal").

# Check and enable the transit engine and the AppRole auth method.
path "sys/mounts" { capabilities = ["read"] }
path "sys/mounts/transit" { capabilities = ["create", "update", "read"] }
path "sys/mounts/pki" { capabilities = ["create", "update", "read"] }
path "sys/mounts/tos-cluster-pki" { capabilities = ["create", "update", "read"] }
path "sys/mounts/tos-kv" { capabilities = ["create", "update", "read"] }
path "sys/auth" { capabilities = ["read"] }
path "sys/auth/approle" { capabilities = ["create", "update", "sudo", "read"] }

# Per-node policies, and nothing else.
path "sys/policies/acl" { capabilities = ["list"] }
path "sys/policies/acl/tos-node-*" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/tos-gateway-*" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/tos-portal-*" { capabilities = ["create", "read", "update"] }

# Tenants' transit keys: create, read metadata, rotate (keys/<key>/rotate, below the key: covered by
# the rule's trailing `*`). Never export, never delete, never decrypt.
path "transit/keys/tos-tenant-*" { capabilities = ["create", "read", "update"] }

# Nodes' AppRoles: write the role, read its role_id, mint wrapped secret_ids, list them and see
# when they expire (a deploy past half a secret_id's life mints a new one), revoke old ones. A `*`
# matches only at the end of a path: this one rule covers the role and every path below it.
path "auth/approle/role/tos-node-*" { capabilities = ["create", "read", "update", "list"] }

# The gateways' CA (generated inside Vault once; its key never leaves), their PKI roles, and the
# CA's certificate. Never issue or sign: only a gateway has its own name signed.
path "pki/root/generate/internal" { capabilities = ["update"] }
path "pki/ca/pem" { capabilities = ["read"] }
path "pki/cert/ca" { capabilities = ["read"] }
path "pki/roles/tos-gateway-*" { capabilities = ["create", "read", "update"] }

# The cluster CA (gateway -> node mutual TLS), the same way: its roles sign each node's server
# name and each gateway's client name, and only the host itself has them signed.
path "tos-cluster-pki/root/generate/internal" { capabilities = ["update"] }
path "tos-cluster-pki/ca/pem" { capabilities = ["read"] }
path "tos-cluster-pki/cert/ca" { capabilities = ["read"] }
path "tos-cluster-pki/roles/tos-cluster-node-*" { capabilities = ["create", "read", "update"] }
path "tos-cluster-pki/roles/tos-cluster-gateway-*" { capabilities = ["create", "read", "update"] }

# Gateways' AppRoles, as the nodes'.
path "auth/approle/role/tos-gateway-*" { capabilities = ["create", "read", "update", "list"] }

# Portals' AppRoles, as the nodes'. The sign-in providers' client secrets: whether each is there
# (its metadata), never the secret itself (an administrator puts it there with `bao kv put`).
path "auth/approle/role/tos-portal-*" { capabilities = ["create", "read", "update", "list"] }
path "tos-kv/metadata/tos/portal/oidc/*" { capabilities = ["read"] }
