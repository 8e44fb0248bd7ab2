"""What every host's Vault credential must look like (a node's tos-session, a gateway's portal)."""


def assert_in_ram_for_root_only(host, check: str, folder: str) -> None:
    """`check` (the host tool's vault-check) logs in; the secret_id sits in a root-only tmpfs
    folder, 0600, and no unused wrapping token is left beside it."""
    assert host.check_output(check) == "ok"
    found = host.file(folder)
    assert (found.user, found.mode) == ("root", 0o700)
    assert host.check_output(f"findmnt -n -o FSTYPE -T {folder}") == "tmpfs"
    secret = host.file(f"{folder}/secret-id")
    assert (secret.user, secret.mode) == ("root", 0o600)
    assert not host.file(f"{folder}/wrapping-token").exists
