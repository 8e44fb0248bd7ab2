"""The CRIU action script (templates/hibernation/tos-criu-hook.j2) touches only what containerd
staged for a restore, and only at pre-restore; the ownership it leaves lets criu's restored root
task open the images in both of its phases. The phases are reproduced here with the real kernel:
a child in a new user namespace opens an image through an inherited folder fd, as criu's root task
does, once before the parent has written its uid/gid maps (it is then still host uid 0) and once
after (mapped, setresuid/setresgid 0 inside: host uid/gid 100000). The restore itself is proved on
the lab (tests/lab, bench/restore_race_bench.py)."""

import ctypes
import errno
import os
import runpy
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from roles.hibernation import SHARED_WITH_TOOL, hibernation_json
from toskit.node.tosnode import nodeconfig
from toskit.templating import TEMPLATES

MAPPED_ROOT = 100000
CLONE_NEWUSER = 0x10000000
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown and id maps need root")


@pytest.fixture
def hook(tmp_path):
    template = (TEMPLATES / "hibernation" / "tos-criu-hook.j2").read_text()
    script = tmp_path / "tos-criu-hook"
    script.write_text(jinja2.Template(template).render(host={"data": {"docker_subid_start": MAPPED_ROOT}},
                                                       **SHARED_WITH_TOOL))
    return script


def run(hook: Path, action: str, images: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRTOOLS_SCRIPT_ACTION": action, "CRTOOLS_IMAGE_DIR": str(images)}
    return subprocess.run([sys.executable, str(hook)], env=env, capture_output=True, text=True)


def staged(tmp_path: Path, name: str) -> Path:
    """Images as containerd unpacks them: root-owned, 0700 folder, 0600 files."""
    images = tmp_path / name
    images.mkdir(mode=0o700)
    for image in ("timens-0.img", "tty-info.img"):
        (images / image).write_bytes(b"x")
        (images / image).chmod(0o600)
    return images


def opens_in_new_userns(images: Path, mapped: bool) -> int:
    """0 if a child in a new user namespace opens timens-0.img, else the errno. mapped: the parent
    writes the maps first and the child takes uid/gid 0 inside, as criu's prepare_userns_creds."""
    folder = os.open(images, os.O_RDONLY | os.O_DIRECTORY)  # criu's image folder fd, inherited
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the restored root task
        code = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWUSER) != 0:
                os._exit(100)
            os.write(ready_w, b"u")
            os.read(go_r, 1)
            if mapped:
                os.setresgid(0, 0, 0)
                os.setgroups([])
                os.setresuid(0, 0, 0)
            try:
                os.close(os.open("timens-0.img", os.O_RDONLY, dir_fd=folder))
                code = 0
            except OSError as e:
                code = e.errno
        finally:
            os._exit(code)
    os.read(ready_r, 1)
    if mapped:
        for map_file in ("uid_map", "gid_map"):
            Path(f"/proc/{pid}/{map_file}").write_text(f"0 {MAPPED_ROOT} 65536\n")
    os.write(go_w, b"g")
    for fd in (folder, ready_r, ready_w, go_r, go_w):
        os.close(fd)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if status == 100:
        pytest.skip("this kernel refuses new user namespaces")
    return status


def give_all_to_mapped_root(images: Path) -> None:
    """What this script did before (the race's losing side): everything to the mapped root."""
    for path in [images, *images.rglob("*")]:
        os.lchown(path, MAPPED_ROOT, MAPPED_ROOT)


LAYOUTS = {
    "containerd": lambda hook, images: None,
    "all-to-mapped-root": lambda hook, images: give_all_to_mapped_root(images),
    "hook": lambda hook, images: run(hook, "pre-restore", images),
}


def case(layout: str, mapped: bool, expected: int):
    phase = "after-maps" if mapped else "before-maps"
    return pytest.param(layout, mapped, expected, id=f"{layout}-{phase}-{errno.errorcode.get(expected, 'opens')}")


@as_root
@pytest.mark.parametrize("layout, mapped, expected", [
    case("containerd", False, 0), case("containerd", True, errno.EACCES),  # late opens always fail
    case("all-to-mapped-root", False, errno.EACCES), case("all-to-mapped-root", True, 0),  # the race
    case("hook", False, 0), case("hook", True, 0),
])
def test_restored_root_task_opens_the_images_before_and_after_its_maps(hook, tmp_path, layout, mapped, expected):
    images = staged(tmp_path, "ctrd-checkpoint42")
    LAYOUTS[layout](hook, images)
    assert opens_in_new_userns(images, mapped) == expected


@as_root
def test_hook_layout_is_root_owned_with_the_mapped_roots_group_and_nothing_for_others(hook, tmp_path):
    images = staged(tmp_path, "ctrd-checkpoint7")
    (images / "sub").mkdir()
    run(hook, "pre-restore", images)
    for path, mode in ((images, 0o750), (images / "sub", 0o750), (images / "tty-info.img", 0o640)):
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, MAPPED_ROOT, mode), path


@as_root
def test_only_a_containerd_staged_restore_is_touched(hook, tmp_path):
    for action, name in (("pre-dump", "ctrd-checkpoint1"), ("post-resume", "ctrd-checkpoint2"),
                         ("pre-restore", "images-of-something-else")):
        images = staged(tmp_path, name)
        assert run(hook, action, images).returncode == 0
        st = (images / "tty-info.img").stat()
        assert (st.st_gid, st.st_mode & 0o777) == (0, 0o600), (action, name)


@as_root
def test_pre_restore_refuses_outside_a_container(hook, tmp_path):
    # Here (not criu inside a container's scope) it cannot name the container: it says so and
    # fails, which makes criu stop rather than restore blind.
    proc = run(hook, "pre-restore", staged(tmp_path, "ctrd-checkpoint123"))
    assert proc.returncode == 1 and "not in a container's scope" in proc.stderr


def test_the_hook_records_the_staged_images_where_tos_session_looks_for_them(hook, tmp_path):
    # The hook as the role renders it, and tos-session reading the file the role writes for it.
    (tmp_path / "hibernation.json").write_text(hibernation_json())
    assert runpy.run_path(str(hook))["STAGED"] == nodeconfig.criu_staged(str(tmp_path))
