"""The prerequisite check (scripts/prereqs.sh) fails in seconds, before any
build, naming what is missing and how to install it."""
import os
import pathlib
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
PREREQS = ROOT / "scripts" / "prereqs.sh"


def run_check(search, *groups, timeout=30):
    env = dict(os.environ, PREREQS_LIBCLANG_SEARCH=str(search), PREREQS_NO_INSTALL="1")
    start = time.monotonic()
    r = subprocess.run([str(PREREQS), *groups], env=env, capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - start


def test_no_libclang_fails_in_seconds_naming_it(tmp_path):
    r, seconds = run_check(tmp_path, "build")
    assert r.returncode == 1, r.stderr
    assert seconds < 10, seconds
    assert "libclang" in r.stderr
    assert "apt-get install -y libclang-dev" in r.stderr
    assert "LIBCLANG_PATH" in r.stderr


def test_the_library_itself_is_what_counts(tmp_path):
    # LLVM's C++ library (what a machine with llvm-config but without libclang
    # has) does not satisfy bindgen; the C library libclang.so.N does.
    (tmp_path / "libclang-cpp.so.14").write_bytes(b"")
    r, _ = run_check(tmp_path, "build")
    assert r.returncode == 1 and "libclang" in r.stderr, r.stderr
    (tmp_path / "libclang.so.1").write_bytes(b"")
    r, _ = run_check(tmp_path, "build")
    assert r.returncode == 0, r.stderr


def test_unknown_group_is_refused(tmp_path):
    r, _ = run_check(tmp_path, "gpu")
    assert r.returncode == 2 and "unknown group 'gpu'" in r.stderr


def test_make_run_stops_before_building(tmp_path):
    """`make run` checks first: with no libclang it stops in seconds, and the
    (empty) target folder shows that nothing was compiled."""
    target = tmp_path / "target"
    env = dict(os.environ, PREREQS_LIBCLANG_SEARCH=str(tmp_path / "empty"), PREREQS_NO_INSTALL="1",
               CARGO_TARGET_DIR=str(target))
    env.pop("RUSTC_WORKSPACE_WRAPPER", None)
    env.pop("MAKEFLAGS", None)
    start = time.monotonic()
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "run", f"DATA={tmp_path / 'data'}",
                        f"MODELS={tmp_path / 'models'}"],
                       env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - start
    assert r.returncode != 0, r.stdout + r.stderr
    assert "libclang" in r.stderr, r.stderr
    assert seconds < 30, seconds
    assert not (target / "release").exists(), "the build started before the check"
    assert not (tmp_path / "data").exists()
