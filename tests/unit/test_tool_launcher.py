"""tos-session's launcher (the zip's __main__): root's calls run from bytecode unpacked once per
version into a folder that is root's alone; anything else runs from the zip."""

import os
import subprocess
import sys

import pytest

from roles.sessions import tool_bundle
from toskit.node import launcher

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the cache is used by root only")


@pytest.fixture
def tool(tmp_path):
    path = tmp_path / "tos-session"
    path.write_bytes(tool_bundle())
    return path


def imports_from(folder: str, *flags: str) -> str:
    """`python -v`'s account of importing tosnode.cli from the folder (what it read, what it wrote)."""
    code = f"import sys; sys.path.insert(0, {folder!r}); import tosnode.cli"
    return subprocess.run([sys.executable, *flags, "-v", "-c", code], capture_output=True, text=True,
                          check=True).stderr


@needs_root
def test_root_unpacks_once_per_version_and_runs_from_bytecode_the_second_time(tool, tmp_path):
    cache = tmp_path / "cache"
    folder = launcher.unpacked(str(tool), str(cache))
    assert folder and os.path.isfile(os.path.join(folder, "tosnode", "cli.py"))
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700"
    imports_from(folder)  # the first call compiles and keeps the bytecode
    second = imports_from(folder)
    assert "matches" in second and "code object from" in second and "# wrote" not in second
    assert launcher.unpacked(str(tool), str(cache)) == folder  # same version, same folder
    # A new version replaces the old one's folder.
    tool.write_bytes(tool.read_bytes() + b"\n")
    newer = launcher.unpacked(str(tool), str(cache))
    assert newer != folder and os.listdir(cache) == [os.path.basename(newer)]


@needs_root
def test_a_cache_folder_others_can_write_is_not_used(tool, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    assert launcher.unpacked(str(tool), str(cache)) is None
    assert os.listdir(cache) == []


def test_other_users_run_from_the_zip(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert launcher.unpacked(str(tool), str(tmp_path / "cache")) is None
    assert not (tmp_path / "cache").exists()


def test_the_tool_runs_through_its_launcher(tool, tmp_path):
    env = {**os.environ, "TOS_SESSION_CACHE": str(tmp_path / "cache")}
    help_text = subprocess.run([sys.executable, str(tool), "--help"], capture_output=True, text=True, check=True,
                               env=env).stdout
    assert "volume open TENANT" in help_text and "vault-enrol" in help_text
    assert "hibernate TENANT" in help_text and "restore TENANT" in help_text
    if os.geteuid() == 0:
        assert len(os.listdir(tmp_path / "cache")) == 1
