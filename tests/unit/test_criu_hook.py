"""The CRIU action script (templates/hibernation/tos-criu-hook.j2) touches only what containerd
staged for a restore, and only at pre-restore. (That it makes restores work is proved on the lab.)"""

import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from toskit.templating import TEMPLATES

MAPPED_ROOT = 100000


@pytest.fixture
def hook(tmp_path):
    template = (TEMPLATES / "hibernation" / "tos-criu-hook.j2").read_text()
    script = tmp_path / "tos-criu-hook"
    script.write_text(jinja2.Template(template).render(host={"data": {"docker_subid_start": MAPPED_ROOT}}))
    return script


def run(hook: Path, action: str, images: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRTOOLS_SCRIPT_ACTION": action, "CRTOOLS_IMAGE_DIR": str(images)}
    return subprocess.run([sys.executable, str(hook)], env=env, capture_output=True, text=True)


def staged(tmp_path: Path, name: str) -> Path:
    images = tmp_path / name
    images.mkdir()
    (images / "tty-info.img").write_bytes(b"x")
    return images


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_only_a_containerd_staged_restore_is_touched(hook, tmp_path):
    for action, name in (("pre-dump", "ctrd-checkpoint1"), ("post-resume", "ctrd-checkpoint2"),
                         ("pre-restore", "images-of-something-else")):
        images = staged(tmp_path, name)
        assert run(hook, action, images).returncode == 0
        assert (images / "tty-info.img").stat().st_uid == 0, (action, name)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_pre_restore_gives_the_images_to_the_mapped_root_and_refuses_outside_a_container(hook, tmp_path):
    images = staged(tmp_path, "ctrd-checkpoint123")
    proc = run(hook, "pre-restore", images)
    assert (images / "tty-info.img").stat().st_uid == MAPPED_ROOT
    # Here (not criu inside a container's scope) it cannot name the container: it says so and
    # fails, which makes criu stop rather than restore blind.
    assert proc.returncode == 1 and "not in a container's scope" in proc.stderr
