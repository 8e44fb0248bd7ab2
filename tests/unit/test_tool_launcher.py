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


# As on a node: Python may write bytecode (some shells, this one's CI too, switch that off).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def imports_from(folder: str) -> str:
    """`python -v`'s account of importing tosnode.cli from the folder (what it read, what it wrote)."""
    code = f"import sys; sys.path.insert(0, {folder!r}); import tosnode.cli"
    return subprocess.run([sys.executable, "-v", "-c", code], capture_output=True, text=True, check=True,
                          env=ENV).stderr


def run_tool(tool, cache) -> str:
    env = {**ENV, "TOS_SESSION_CACHE": str(cache)}
    return subprocess.run([sys.executable, str(tool), "--help"], capture_output=True, text=True, check=True,
                          env=env).stdout


@needs_root
def test_root_unpacks_once_per_version_and_runs_from_bytecode_the_second_time(tool, tmp_path):
    cache = tmp_path / "cache"
    folder = launcher.unpacked(str(tool), str(cache))
    assert folder and os.path.isfile(os.path.join(folder, "tosnode", "cli.py"))
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700"
    first = imports_from(folder)  # the first call compiles and keeps the bytecode
    assert "# created '" in first
    second = imports_from(folder)
    assert f"code object from '{folder}/tosnode/__pycache__/cli." in second and "# created '" not in second
    assert launcher.unpacked(str(tool), str(cache)) == folder  # same version, same folder


@needs_root
def test_a_new_version_replaces_old_ones_once_they_are_old_and_nothing_else(tool, tmp_path):
    cache = tmp_path / "cache"
    old = launcher.unpacked(str(tool), str(cache))
    (cache / "notes").mkdir()  # not the launcher's: never touched
    tool.write_bytes(tool.read_bytes() + b"\n")
    newer = launcher.unpacked(str(tool), str(cache))
    assert newer != old and os.path.isdir(old)  # kept: a call of that version may still be importing
    os.utime(old, (0, 0))
    tool.write_bytes(tool.read_bytes() + b"\n")
    newest = launcher.unpacked(str(tool), str(cache))
    assert sorted(os.listdir(cache)) == sorted([os.path.basename(newer), os.path.basename(newest), "notes"])


@needs_root
def test_a_cache_folder_others_can_write_or_a_link_is_not_used(tool, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    assert launcher.unpacked(str(tool), str(cache)) is None
    assert os.listdir(cache) == []
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    assert launcher.unpacked(str(tool), str(link)) is None


def test_other_users_run_from_the_zip(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert launcher.unpacked(str(tool), str(tmp_path / "cache")) is None
    assert not (tmp_path / "cache").exists()


def test_the_tool_runs_through_its_launcher(tool, tmp_path):
    help_text = run_tool(tool, tmp_path / "cache")
    assert "volume open TENANT" in help_text and "vault-enrol" in help_text
    assert "hibernate TENANT" in help_text and "restore TENANT" in help_text
    if os.geteuid() == 0:  # it ran from the unpacked copy, and Python kept the bytecode there
        [version] = os.listdir(tmp_path / "cache")
        assert (tmp_path / "cache" / version / "tosnode" / "__pycache__").is_dir()


@needs_root
def test_a_damaged_copy_runs_from_the_zip_and_is_unpacked_again(tool, tmp_path):
    run_tool(tool, tmp_path / "cache")
    [version] = os.listdir(tmp_path / "cache")
    cli = tmp_path / "cache" / version / "tosnode" / "cli.py"
    cli.write_text("")  # as a crash mid-write could have left it
    for cached in (cli.parent / "__pycache__").iterdir():
        cached.unlink()
    assert "volume open TENANT" in run_tool(tool, tmp_path / "cache")
    assert not (tmp_path / "cache" / version).exists()
    run_tool(tool, tmp_path / "cache")
    assert cli.read_text().startswith('"""tos-session')
