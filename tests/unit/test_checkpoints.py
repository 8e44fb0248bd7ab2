"""A checkpoint is restored only when its manifest proves it complete and intact and the runtime
matches; anything else is named (and then the session starts cold, path stack kept)."""

import pytest

from toskit.node.tosnode import checkpoints

VERSIONS = {"criu": "4.1.1", "runc": "1.1.15", "docker": "26.1.5", "kernel": "6.12"}


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "hib-1"
    images.mkdir()
    for name in ("inventory.img", "pstree.img", "core-1.img", "pages-1.img"):
        (images / name).write_bytes(name.encode() * 100)
    return tmp_path


def test_a_sealed_checkpoint_verifies(folder):
    manifest = checkpoints.seal(folder, "hib-1", "tos-session:abc", VERSIONS)
    assert set(manifest["files"]) == {"inventory.img", "pstree.img", "core-1.img", "pages-1.img"}
    assert checkpoints.verify(folder, "hib-1", "tos-session:abc", VERSIONS) is None


def test_flush_puts_every_image_and_the_folder_through_to_storage(folder, monkeypatch):
    synced = []
    real = checkpoints.os.fsync
    monkeypatch.setattr(checkpoints.os, "fsync", lambda fd: (synced.append(checkpoints.os.readlink(
        f"/proc/self/fd/{fd}")), real(fd)))
    checkpoints.flush(folder / "hib-1")
    images = folder / "hib-1"
    assert sorted(synced) == sorted(str(p) for p in [*images.iterdir(), images])


def test_an_incomplete_dump_is_never_sealed(folder):
    (folder / "hib-1" / "pstree.img").unlink()
    with pytest.raises(ValueError, match="incomplete.*pstree.img"):
        checkpoints.seal(folder, "hib-1", "tos-session:abc", VERSIONS)
    assert "never completed" in checkpoints.verify(folder, "hib-1", "tos-session:abc", VERSIONS)


@pytest.mark.parametrize("damage,reason", [
    (lambda f: (f / "hib-1" / "pages-1.img").write_bytes(b"flipped"), "corrupt: pages-1.img"),
    (lambda f: (f / "hib-1" / "core-1.img").unlink(), "lacks or has extra files"),
    (lambda f: (f / "hib-1" / "extra.img").write_bytes(b"x"), "lacks or has extra files"),
])
def test_damage_after_sealing_is_named(folder, damage, reason):
    checkpoints.seal(folder, "hib-1", "tos-session:abc", VERSIONS)
    damage(folder)
    assert reason in checkpoints.verify(folder, "hib-1", "tos-session:abc", VERSIONS)


def test_another_criu_or_image_is_refused(folder):
    checkpoints.seal(folder, "hib-1", "tos-session:abc", VERSIONS)
    assert "criu changed (4.1.1 then, 4.2 here)" in \
        checkpoints.verify(folder, "hib-1", "tos-session:abc", {**VERSIONS, "criu": "4.2"})
    assert "session image changed" in checkpoints.verify(folder, "hib-1", "tos-session:def", VERSIONS)
    # The docker and kernel versions are recorded, not required to match.
    assert checkpoints.verify(folder, "hib-1", "tos-session:abc", {**VERSIONS, "docker": "27", "kernel": "6.13"}) is None


def test_state_defaults_to_running_and_is_written_whole(folder):
    assert checkpoints.read_state(folder) == {"state": "running"}
    checkpoints.write_state(folder, "node1", "checkpointed", "hib-1")
    state = checkpoints.read_state(folder)
    assert (state["state"], state["checkpoint"], state["node"]) == ("checkpointed", "hib-1", "node1")
    assert oct((folder / "state.json").stat().st_mode & 0o777) == "0o600"
