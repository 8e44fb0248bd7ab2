"""The session image's build on the operator's machine: recipe, cache, naming, errors, import.

mmdebstrap itself is replaced by a stand-in here (it takes a minute and the mirror); the real
build, upload and import are what the lab's first deploy does, and the audit checks the result."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from roles.sessions import STAGED_IMAGE, import_command
from toskit import session_image
from toskit.session_image import ImageBuildError, Recipe, SessionImage, ensure_built, mmdebstrap_argv

ROOT = Path(__file__).resolve().parents[2]
RECIPE = Recipe("trixie", "http://mirror.lab/debian", "http://mirror.lab/debian-security", None)


def test_the_recipe_key_follows_what_goes_into_the_image_not_how_it_is_fetched():
    keys = {RECIPE.key(), replace(RECIPE, suite="bookworm").key(), replace(RECIPE, mirror="http://m2/debian").key(),
            replace(RECIPE, security_mirror=None).key()}
    assert len(keys) == 4
    assert replace(RECIPE, proxy="http://127.0.0.1:3142").key() == RECIPE.key()


def test_mmdebstrap_gets_the_sources_and_the_proxy_only_when_set(tmp_path):
    argv = mmdebstrap_argv(RECIPE, tmp_path / "rootfs.tar")
    assert argv[-4:] == [str(tmp_path / "rootfs.tar"), "deb http://mirror.lab/debian trixie main",
                         "deb http://mirror.lab/debian trixie-updates main",
                         "deb http://mirror.lab/debian-security trixie-security main"]
    assert not any("Proxy" in a for a in argv)
    proxied = mmdebstrap_argv(replace(RECIPE, proxy="http://127.0.0.1:3142"), tmp_path / "rootfs.tar")
    assert '--aptopt=Acquire::http::Proxy "http://127.0.0.1:3142"' in proxied
    assert len(mmdebstrap_argv(replace(RECIPE, security_mirror=None), tmp_path / "x.tar")) == len(argv) - 1


def test_the_tag_and_the_layer_are_the_tarballs_sha256():
    image = SessionImage(None, "ab" * 32)
    assert image.tag == "tos-session:" + "ab" * 6 and image.layer == "sha256:" + "ab" * 32


@pytest.fixture
def fake_mmdebstrap(tmp_path, monkeypatch):
    """An mmdebstrap that writes its SOURCE_DATE_EPOCH into the output (the argument before the
    sources) and counts its runs; FAIL=1 makes it fail."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mmdebstrap"
    script.write_text('#!/bin/sh\necho run >> "$RUNS"\n[ "$FAIL" = 1 ] && { echo "E: mirror down" >&2; exit 1; }\n'
                      'for a; do case $a in *.tar) out=$a;; esac; done\necho "$SOURCE_DATE_EPOCH" > "$out"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ensure_built.cache_clear()
    yield tmp_path / "runs"
    ensure_built.cache_clear()


def test_an_image_is_built_once_then_taken_from_the_cache(fake_mmdebstrap, tmp_path):
    first = ensure_built(RECIPE, log=lambda _: None)
    assert first.tarball.read_text() == session_image.SOURCE_DATE_EPOCH + "\n"
    ensure_built.cache_clear()  # a new deploy: only the cache on disk remains
    assert ensure_built(RECIPE, log=lambda _: None) == first
    assert fake_mmdebstrap.read_text().count("run") == 1
    assert first.tarball.parent.parent == tmp_path / "cache" / "tos" / "session-images"


def test_a_failed_build_names_the_mirror_and_leaves_no_cache_entry(fake_mmdebstrap, monkeypatch):
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(ImageBuildError, match=r"(?s)mirror down.*fix: check that this machine reaches "
                                              r"http://mirror\.lab/debian"):
        ensure_built(RECIPE, log=lambda _: None)
    assert not list(session_image.cache_dir().glob("[!.]*"))


def test_no_mmdebstrap_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    ensure_built.cache_clear()
    with pytest.raises(ImageBuildError, match="apt install mmdebstrap"):
        ensure_built(RECIPE, log=lambda _: None)


def test_the_import_command_is_valid_shell_and_checks_the_layer():
    command = import_command(SessionImage(None, "cd" * 32))
    subprocess.run(["sh", "-n", "-c", command], check=True)
    assert f"!= sha256:{'cd' * 32}" in command and command.endswith(f"rm -f {STAGED_IMAGE}")


def test_hosts_planned_at_once_by_pyinfra_share_one_build(fake_mmdebstrap):
    """pyinfra plans hosts in gevent greenlets: the second must wait for the first's build
    without blocking the process (a blocking flock here once hung the deploy)."""
    script = ("from gevent import monkey; monkey.patch_all()\n"
              "import gevent\n"
              "from toskit.session_image import Recipe, ensure_built\n"
              f"RECIPE = {RECIPE!r}\n"
              "jobs = [gevent.spawn(ensure_built, RECIPE, print) for _ in range(3)]\n"
              "gevent.joinall(jobs, timeout=30, raise_error=True)\n"
              "assert all(j.successful() for j in jobs) and len({j.value for j in jobs}) == 1\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert fake_mmdebstrap.read_text().count("run") == 1


def test_an_image_imported_without_todays_health_check_is_imported_again():
    from roles.sessions import HEALTHCHECK, healthcheck_instruction, imported_as_built
    assert healthcheck_instruction().endswith('CMD ["/usr/local/bin/tos-session-health"]')
    assert imported_as_built([{"Config": {"Healthcheck": dict(HEALTHCHECK)}}])
    assert not imported_as_built([]) and not imported_as_built([{"Config": {"Healthcheck": None}}])
    assert not imported_as_built([{"Config": {"Healthcheck": {**HEALTHCHECK, "Retries": 5}}}])
