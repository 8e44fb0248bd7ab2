"""The roles' own facts and file operations, run for real on this machine (pyinfra's @local
connector, a POSIX shell): what a host would answer, and what a deploy does with it."""

import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from toskit.facts import CgroupLimits, ManagedFile

PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
ROOT = Path(__file__).resolve().parents[2]


def answer(fact, **args):
    """The fact as a host would give it: its command run by sh, its output processed."""
    out = subprocess.run(["sh", "-c", fact.command(**args)], capture_output=True, text=True, check=True).stdout
    return fact.process(out.splitlines())


def test_managed_file_is_owner_group_mode_and_sha1_in_one_answer(tmp_path):
    path = tmp_path / "it's here.conf"  # a quote and a space: the command quotes the path
    path.write_text("hello\n")
    path.chmod(0o640)
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    assert answer(ManagedFile(), path=str(path)) == {
        "type": "file", "user": me, "group": group, "mode": 0o640,
        "sha1": "f572d396fae9206628714fb2ce00f72e94f2258f"}


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir(), lambda p: p.symlink_to("/etc/hostname")],
                         ids=["absent", "a folder", "a symlink"])
def test_managed_file_tells_absent_from_not_a_regular_file(tmp_path, make):
    path = tmp_path / "x"
    make(path)
    assert answer(ManagedFile(), path=str(path)) == (None if not os.path.lexists(path) else {"type": "other"})


def test_cgroup_limits_reads_every_file_in_one_command(tmp_path):
    for name, text in (("memory.max", "268435456\n"), ("memory.swap.max", "0\n"), ("pids.max", "128\n"),
                       ("cpu.max", "50000 100000\n"), ("io.max", "254:0 rbps=1 wbps=2\n8:0 rbps=3 wbps=4\n")):
        (tmp_path / name).write_text(text)
    assert answer(CgroupLimits(), path=str(tmp_path)) == {
        "memory.max": "268435456", "memory.swap.max": "0", "pids.max": "128", "cpu.max": "50000 100000",
        "io.max": "254:0 rbps=1 wbps=2;8:0 rbps=3 wbps=4", "io": {"254:0": "rbps=1 wbps=2", "8:0": "rbps=3 wbps=4"},
        "disks": {}, "volume": None}
    (tmp_path / "io.max").write_text("")  # no IO limits: the kernel's file is empty
    assert answer(CgroupLimits(), path=str(tmp_path))["io"] == {}


def test_cgroup_limits_names_the_disks_by_their_numbers_and_a_closed_volume_by_none(tmp_path):
    disk = next((d for d in sorted(os.listdir("/sys/class/block")) if os.path.exists(f"/dev/{d}")
                 and not os.path.exists(f"/sys/class/block/{d}/partition")), None)
    if disk is None:
        pytest.skip("no whole disk on this machine")
    (tmp_path / "io.max").write_text("")
    found = answer(CgroupLimits(), path=str(tmp_path), disks=(f"/dev/{disk}",), volume="/dev/mapper/tos-vol-none")
    assert found["disks"] == {f"/dev/{disk}": open(f"/sys/class/block/{disk}/dev").read().strip()}
    assert found["volume"] is None
    assert answer(CgroupLimits(), path=str(tmp_path / "gone")) is None


DEPLOY = """
from io import StringIO
from toskit import operations
operations.put(name="the file", src=StringIO({text!r}), dest={dest!r}, user={user!r}, group={group!r}, mode="640",
               validate={validate!r})
"""


def deploy(tmp_path, text: str, validate: str | None = None, ok: bool = True) -> str:
    dest = tmp_path / "etc" / "tos" / "file.conf"
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    (tmp_path / "deploy.py").write_text(DEPLOY.format(text=text, dest=str(dest), user=me, group=group,
                                                      validate=validate))
    proc = subprocess.run([PYINFRA, "-y", "@local", str(tmp_path / "deploy.py")], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_put_creates_then_changes_nothing_then_repairs_drift(tmp_path):
    dest = tmp_path / "etc" / "tos" / "file.conf"
    assert "Success" in deploy(tmp_path, "one\n")  # the parent folders are made too
    assert dest.read_text() == "one\n" and dest.stat().st_mode & 0o777 == 0o640
    assert "No changes" in deploy(tmp_path, "one\n")
    dest.chmod(0o666)
    assert "Success" in deploy(tmp_path, "one\n") and dest.stat().st_mode & 0o777 == 0o640
    assert "Success" in deploy(tmp_path, "two\n") and dest.read_text() == "two\n"


def test_put_with_validate_keeps_the_old_file_when_the_new_one_fails_its_check(tmp_path):
    dest = tmp_path / "etc" / "tos" / "file.conf"
    check = "grep -qx good {path}"
    deploy(tmp_path, "good\n", validate=check)
    assert dest.read_text() == "good\n" and not Path(f"{dest}.tos-new").exists()
    deploy(tmp_path, "bad\n", validate=check, ok=False)
    assert dest.read_text() == "good\n"  # the refused file never took the old one's place
    deploy(tmp_path, "good\n", validate=check)
    assert "No changes" in deploy(tmp_path, "good\n", validate=check)
