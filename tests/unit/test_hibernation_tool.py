"""tos-session hibernate, run again after one was killed mid-checkpoint, waits for the request the
killed one left running; here: that such a request (runc checkpoint of the container) is
seen, and only for its own container, and that a checkpoint image is removed as an orphan (of a
restarted dockerd) only once this run has seen it for UNPACK_QUIET with its folder unwritten as
long, that a moment with nothing in sight is not taken for the end, dockerd's time and files played
by fakes; and that the checkpoint itself is runc, with dockerd's runc state, writing straight
into the volume (a stand-in runc). (The whole kill-and-rerun is proved on the lab, test_4.)"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from toskit.node.tosnode import hibernation
from toskit.node.tosnode.hibernation import UNPACK_QUIET, _runc_checkpointing

CONTAINER = "ab" * 32
NAME = "tos-session-acme"  # the container's name (sessions.container_name)
IMAGE = ("moby", f"containerd.io/checkpoint/{CONTAINER}:1700000000")
WALL = 1_700_000_000.0  # the wall clock at the fake's monotonic 0


def test_a_running_runc_checkpoint_of_the_container_is_seen_and_no_other():
    # A process that looks like containerd's `runc ... checkpoint ... <id>` (Python under that argv).
    proc = subprocess.Popen(["/usr/sbin/runc", "-c", "import time; time.sleep(60)", "checkpoint",
                             "--leave-running", CONTAINER], executable=sys.executable)
    try:
        deadline = time.monotonic() + 10
        while b"checkpoint" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert _runc_checkpointing(CONTAINER)
        assert not _runc_checkpointing("cd" * 32)  # another container's
    finally:
        proc.kill()
        proc.wait()
    assert not _runc_checkpointing(CONTAINER)


def test_unfinished_images_are_told_apart_and_their_last_write_is_known(tmp_path):
    from toskit.node.tosnode.hibernation import _discard_unfinished, _last_write, _unfinished
    assert _last_write(tmp_path) == 0.0
    done, unfinished, failed = (tmp_path / n for n in ("hib-1", "hib-2", "failed-hib-0"))
    for folder in (done, unfinished, failed):
        folder.mkdir()
        (folder / "pages-1.img").write_bytes(b"x")
        os.utime(folder / "pages-1.img", (1000, 1000))
        os.utime(folder, (1000, 1000))
    (tmp_path / "hib-1.manifest.json").write_text("{}")
    os.utime(unfinished / "pages-1.img", (2000, 2000))  # still being written
    assert _unfinished(tmp_path) == [unfinished] and _last_write(tmp_path) == 2000
    _discard_unfinished(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failed-hib-0", "hib-1", "hib-1.manifest.json"]



def test_the_room_an_interrupted_checkpoint_held_counts_as_free_for_the_next(tmp_path, monkeypatch):
    """A volume of 100 MiB holding 60 MiB of unfinished images, for a session needing ~41 MiB."""
    checkpoints, cgroup = tmp_path / "checkpoints", tmp_path / "cgroup"
    (checkpoints / "hib-killed").mkdir(parents=True)
    (checkpoints / "hib-killed" / "pages-1.img").write_bytes(b"\0" * (60 << 20))
    cgroup.mkdir()
    (cgroup / "memory.stat").write_text(f"anon {20 << 20}\nshmem 0\n")

    def statvfs(path):  # what the folder holds, out of 100 MiB
        used = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
        return SimpleNamespace(f_bavail=(100 << 20) - used, f_frsize=1)
    monkeypatch.setattr(hibernation.os, "statvfs", statvfs)
    volume = SimpleNamespace(tenant="beta", checkpoints=checkpoints)
    hibernation._make_room(volume, cgroup)
    assert list(checkpoints.iterdir()) == []
    # Control: a session needing more than the whole volume is still refused, with the numbers.
    (cgroup / "memory.stat").write_text(f"anon {90 << 20}\nshmem 0\n")
    with pytest.raises(hibernation.Deferred, match="100 MiB free and the checkpoint needs about 128 MiB"):
        hibernation._make_room(volume, cgroup)

class Dockerd:
    """The clock (monotonic from 0, and the wall clock), containerd's checkpoint images of the
    session and the images folder on the volume; sleeping runs what dockerd does meanwhile."""

    def __init__(self, folder: Path):
        self.now, self.folder, self.scratch = 0.0, folder, []
        self.images, self.removed, self.plan = [], [], []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return WALL + self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for step in [s for s in self.plan if s[0] <= self.now]:
            self.plan.remove(step)
            step[1]()

    def at(self, when: float, action) -> None:
        self.plan.append((when, action))

    def write(self, when: float) -> None:
        """dockerd writes into the unfinished images (it makes their folder when the request starts)."""
        images = self.folder / "hib-2"
        images.mkdir(exist_ok=True)
        (images / "pages-1.img").write_bytes(b"x")
        for path in (images / "pages-1.img", images):
            os.utime(path, (WALL + when, WALL + when))

    def ctr(self, argv: list, **kwargs) -> None:
        assert argv[:2] == ["ctr", "-n"] and argv[3:5] == ["images", "rm"]
        self.removed.append((self.now, argv[-1]))
        self.images.remove((argv[2], argv[-1]))


@pytest.fixture
def dockerd(monkeypatch, tmp_path):
    fake = Dockerd(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({"state": "checkpointing"}))
    monkeypatch.setattr(hibernation, "time", fake)
    monkeypatch.setattr(hibernation, "subprocess", SimpleNamespace(run=fake.ctr))
    monkeypatch.setattr(hibernation.sessions, "container", lambda tenant_id: {
        "Id": CONTAINER, "State": {"Status": "paused", "Paused": True}})
    monkeypatch.setattr(hibernation, "_runc_checkpointing", lambda container_id: False)
    monkeypatch.setattr(hibernation, "_dump_scratch", lambda: list(fake.scratch))
    monkeypatch.setattr(hibernation, "_checkpoint_images", lambda container_id: list(fake.images))
    return fake


def wait_for_earlier_checkpoint(dockerd: Dockerd) -> None:
    volume = SimpleNamespace(checkpoints=dockerd.folder, is_mounted=lambda: True)
    hibernation._earlier_checkpoint_ended(volume, "acme")


def test_after_a_long_dump_the_image_dockerd_is_about_to_unpack_is_no_orphan(dockerd):
    # The request started 300 s ago (dockerd made the folder then); the dump is over, the image
    # archived; dockerd unpacks it a second later, then deletes it.
    dockerd.write(-300)
    dockerd.images.append(IMAGE)
    dockerd.at(1, lambda: dockerd.write(1))
    dockerd.at(30, dockerd.images.clear)
    wait_for_earlier_checkpoint(dockerd)
    assert dockerd.removed == [] and dockerd.now == 30 + hibernation.CONFIRM_AFTER  # over: two looks


def test_a_moment_with_nothing_in_sight_between_two_steps_is_not_the_end(dockerd):
    # The first look falls between containerd removing its scratch folder and creating the image.
    dockerd.write(-300)
    dockerd.at(0.5, lambda: dockerd.images.append(IMAGE))
    dockerd.at(20, dockerd.images.clear)
    wait_for_earlier_checkpoint(dockerd)
    assert dockerd.removed == [] and dockerd.now == 20 + hibernation.CONFIRM_AFTER


def test_the_dump_and_the_archive_are_waited_for(dockerd):
    dockerd.scratch = ["/tmp/ctrd-checkpoint123"]
    dockerd.at(50, dockerd.scratch.clear)
    wait_for_earlier_checkpoint(dockerd)
    assert dockerd.now == 50 + hibernation.CONFIRM_AFTER


def test_a_scratch_folder_that_never_goes_defers_the_hibernation_and_names_it(dockerd):
    dockerd.scratch = ["/tmp/ctrd-checkpoint123"]
    with pytest.raises(hibernation.Deferred, match="ctrd-checkpoint123"):
        wait_for_earlier_checkpoint(dockerd)


def test_containerd_scratch_folders_of_restores_are_left_out(monkeypatch, tmp_path):
    staged, scratch = tmp_path / "staged", tmp_path / "tmp"
    staged.mkdir()
    scratch.mkdir()
    for name in ("ctrd-checkpoint1", "ctrd-checkpoint2", "other"):
        (scratch / name).mkdir()
    (staged / CONTAINER).write_text(f"{scratch / 'ctrd-checkpoint2'}\n")  # the CRIU hook's record of a restore
    (staged / f"{CONTAINER}.cgroup.img").write_bytes(b"\0")
    monkeypatch.setattr(hibernation, "criu_staged", lambda: staged)
    monkeypatch.setattr(hibernation, "CONTAINERD_TMP", scratch)
    assert hibernation._dump_scratch() == [scratch / "ctrd-checkpoint1"]


def test_an_image_no_dockerd_unpacks_is_removed_once_seen_for_the_quiet_time(dockerd):
    dockerd.write(-300)
    dockerd.images.append(IMAGE)
    wait_for_earlier_checkpoint(dockerd)
    assert dockerd.removed == [(UNPACK_QUIET, IMAGE[1])]


def test_a_write_into_the_folder_holds_the_removal_off_for_the_quiet_time(dockerd):
    dockerd.write(-300)
    dockerd.images.append(IMAGE)
    dockerd.at(100, lambda: dockerd.write(100))
    wait_for_earlier_checkpoint(dockerd)
    assert dockerd.removed == [(100 + UNPACK_QUIET + 0.5, IMAGE[1])]  # the first look after 220 s


def test_the_quiet_time_counts_from_the_last_checkpoint_seen_under_way(dockerd):
    dockerd.write(-300)
    dockerd.images.append(IMAGE)
    dockerd.at(100, lambda: dockerd.scratch.append("/tmp/ctrd-checkpoint9"))  # another checkpoint dumps
    dockerd.at(110, dockerd.scratch.clear)
    wait_for_earlier_checkpoint(dockerd)
    assert dockerd.removed == [(110 + UNPACK_QUIET, IMAGE[1])]


@pytest.fixture
def strangers(monkeypatch):
    """The session's exec'd processes as hibernate sees them, one listing per look; kills recorded."""
    fake = SimpleNamespace(looks=[], killed=[], clock=Dockerd(Path(".")))
    monkeypatch.setattr(hibernation, "time", fake.clock)
    monkeypatch.setattr(hibernation.sessions, "container", lambda tenant_id: {"State": {"Pid": 7}})
    monkeypatch.setattr(hibernation.freezer, "cgroup_of", lambda tenant_id, pid=None: Path("/cgroup"))
    monkeypatch.setattr(hibernation.freezer, "strangers",
                        lambda cgroup, init: fake.looks.pop(0) if len(fake.looks) > 1 else fake.looks[0])
    monkeypatch.setattr(hibernation.os, "kill", lambda pid, signum: fake.killed.append((pid, signum)))
    return fake


def test_what_is_left_of_dockers_probes_is_killed_and_the_checkpoint_goes_on(strangers):
    strangers.looks = [[(40, "runc:[2:INIT]", True), (41, "tos-session-hea", True)], []]
    hibernation._no_strangers("acme")
    assert strangers.killed == [(40, signal.SIGKILL), (41, signal.SIGKILL)]


def test_an_operators_exec_is_named_and_the_session_stays_paused(strangers):
    strangers.looks = [[(50, "sleep", False)]]
    with pytest.raises(hibernation.Deferred, match=r"50 \(sleep\).*kill -9"):
        hibernation._no_strangers("acme")
    assert strangers.killed == [] and strangers.clock.now > hibernation.STRANGER_TIMEOUT


@pytest.fixture
def runc_stand_in(tmp_path, monkeypatch):
    """A `runc` on PATH that records its argv and writes an image (or fails), dockerd's runc state
    folder with the container's, and criu's work folder: all under tmp_path."""
    bin_dir, roots = tmp_path / "bin", tmp_path / "runtime-runc"
    bin_dir.mkdir()
    (roots / "moby-100000.100000" / CONTAINER).mkdir(parents=True)
    (bin_dir / "runc").write_text(
        "#!/bin/sh\necho \"$@\" > \"$RUNC_ARGV\"\ncut -d' ' -f6 /proc/$$/stat > \"$RUNC_ARGV.sid\"\n"
        "[ -n \"$RUNC_FAILS\" ] && { echo 'criu failed: type NOTIFY' >&2; exit 1; }\n"
        "while [ \"$1\" != --image-path ]; do shift; done; mkdir -p \"$2\" && echo core > \"$2/core-1.img\"\n")
    (bin_dir / "runc").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("RUNC_ARGV", str(tmp_path / "argv"))
    monkeypatch.setattr(hibernation, "RUNC_ROOTS", roots)
    monkeypatch.setattr(hibernation, "CRIU_WORK", tmp_path / "criu-work")
    monkeypatch.setattr(hibernation, "SYSTEMD", tmp_path / "no-systemd")
    monkeypatch.setattr(hibernation.dockerapi, "container", lambda name: {"Id": CONTAINER} if name == NAME else None)
    return tmp_path


def test_the_checkpoint_is_runc_with_dockerds_state_writing_into_the_volume(runc_stand_in):
    folder = runc_stand_in / "volume" / "checkpoints"
    hibernation._checkpoint(NAME, folder, "hib-1")
    argv = (runc_stand_in / "argv").read_text().split()
    assert argv == ["--root", str(runc_stand_in / "runtime-runc" / "moby-100000.100000"), "checkpoint",
                    "--leave-running", "--image-path", str(folder / "hib-1"),
                    "--work-path", str(runc_stand_in / "criu-work" / CONTAINER), CONTAINER]
    assert (folder / "hib-1" / "core-1.img").read_text() == "core\n"
    assert not (runc_stand_in / "criu-work" / CONTAINER).exists()  # criu's work folder goes
    # Its own session: a Ctrl-C at the tool's terminal (its process group) does not reach criu.
    assert int((runc_stand_in / "argv.sid").read_text()) != os.getsid(0)


def test_under_systemd_runc_runs_in_a_scope_of_its_own(runc_stand_in, monkeypatch):
    """A stop of the unit that runs the tool (the idle policy's) kills its cgroup: not criu's."""
    (runc_stand_in / "systemd").mkdir()
    monkeypatch.setattr(hibernation, "SYSTEMD", runc_stand_in / "systemd")
    (runc_stand_in / "bin" / "systemd-run").write_text(
        "#!/bin/sh\necho \"$@\" > \"$RUNC_ARGV.systemd-run\"\nshift 3\nexec \"$@\"\n")
    (runc_stand_in / "bin" / "systemd-run").chmod(0o755)
    hibernation._checkpoint(NAME, runc_stand_in / "checkpoints", "hib-1")
    wrapped = (runc_stand_in / "argv.systemd-run").read_text().split()
    assert wrapped[:4] == ["--scope", "--quiet", "--collect", "runc"] and wrapped[-1] == CONTAINER
    assert (runc_stand_in / "checkpoints" / "hib-1" / "core-1.img").exists()


def test_a_container_gone_is_named(runc_stand_in):
    with pytest.raises(hibernation.NodeError, match="tos-session-beta: the container is gone"):
        hibernation._checkpoint("tos-session-beta", runc_stand_in / "checkpoints", "hib-1")


def test_a_failed_runc_checkpoint_says_why_and_leaves_no_work_folder(runc_stand_in, monkeypatch):
    monkeypatch.setenv("RUNC_FAILS", "1")
    with pytest.raises(hibernation.NodeError, match="runc checkpoint failed: criu failed: type NOTIFY"):
        hibernation._checkpoint(NAME, runc_stand_in / "checkpoints", "hib-1")
    assert not (runc_stand_in / "criu-work" / CONTAINER).exists()


def test_a_container_without_runc_state_is_named(runc_stand_in, monkeypatch):
    monkeypatch.setattr(hibernation.dockerapi, "container", lambda name: {"Id": "cd" * 32})
    with pytest.raises(hibernation.NodeError, match="tos-session-acme: its runc state is not under"):
        hibernation._checkpoint(NAME, runc_stand_in / "checkpoints", "hib-1")
