"""The DVC pipeline (dvc.yaml + params.yaml) run for real with `dvc repro`.

The pipeline files are copied into a temporary git + DVC repository, with the
generator set to 20k lines and smaller models, and reproduced three times:

1. from nothing: every stage runs, dvc.lock records the hashes of the data
   and the models, the metrics files are JSON;
2. with no change: no stage runs (its wall time is printed);
3. after changing one hyperparameter: only train and evaluate run, and the
   data hashes in dvc.lock stay the same.

Needs the release `analytics` binary (`make setup`; found through
$ANALYTICS_BIN, else $CARGO_TARGET_DIR or target/ + release/analytics) and DVC
(`make dvc-env`). Run with `make test-pipeline`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_FILES = ["dvc.yaml", "params.yaml", ".dvcignore"]
STAGES = ["data", "clean", "train", "evaluate"]


def analytics_bin() -> Path:
    explicit = os.environ.get("ANALYTICS_BIN")
    if explicit:
        path = Path(explicit)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
        path = target / "release" / "analytics"
    if not path.is_file():
        pytest.fail(f"the release binary {path} is missing: run `make setup` (or set ANALYTICS_BIN)")
    return path.resolve()


def dvc_bin() -> str:
    beside = Path(sys.executable).parent / "dvc"
    found = str(beside) if beside.is_file() else shutil.which("dvc")
    if not found:
        pytest.fail("dvc is not installed: run `make dvc-env` and use .venv-dvc/bin/python")
    return found


def require_cli(binary: Path) -> None:
    """Fail with what is missing when the CLI lacks what dvc.yaml calls."""
    top = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    train = subprocess.run([binary, "train", "--help"], capture_output=True, text=True).stdout
    missing = []
    if not re.search(r"^\s+evaluate\s", top, re.MULTILINE):
        missing.append("an `evaluate` subcommand (`analytics evaluate --data DIR --models DIR --json`)")
    if "--params" not in train:
        missing.append("`analytics train --params FILE` (the train:/segments: sections of params.yaml)")
    if missing:
        pytest.fail(f"{binary} lacks what dvc.yaml calls: " + "; ".join(missing))


class Repo:
    """A temporary git + DVC repository holding the pipeline files."""

    def __init__(self, path: Path, binary: Path, dvc: str):
        self.path = path
        self.dvc = dvc
        self.env = dict(os.environ)
        self.env.update(
            ANALYTICS_BIN=str(binary),
            DVC_NO_ANALYTICS="1",
            OMP_WAIT_POLICY="PASSIVE",
            GIT_AUTHOR_NAME="pipeline test",
            GIT_AUTHOR_EMAIL="pipeline@test.invalid",
            GIT_COMMITTER_NAME="pipeline test",
            GIT_COMMITTER_EMAIL="pipeline@test.invalid",
        )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            list(args), cwd=self.path, env=self.env, capture_output=True, text=True, timeout=900
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"`{' '.join(args)}` exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def repro(self) -> tuple[list[str], float, str]:
        """`dvc repro`: the stages that ran, the wall time, the output."""
        t0 = time.perf_counter()
        proc = self.run(self.dvc, "repro")
        seconds = time.perf_counter() - t0
        out = proc.stdout + proc.stderr
        ran = re.findall(r"Running stage '([^']+)'", out)
        return ran, seconds, out

    def lock(self) -> dict:
        return yaml.safe_load((self.path / "dvc.lock").read_text())

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def write_params(self, params: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def out_hash(lock: dict, stage: str, path: str) -> dict:
    outs = {o["path"]: o for o in lock["stages"][stage].get("outs", [])}
    assert path in outs, f"dvc.lock: stage {stage} has no output {path}: {lock['stages'][stage]}"
    return outs[path]


@pytest.fixture()
def repo(tmp_path: Path) -> Repo:
    binary = analytics_bin()
    require_cli(binary)
    r = Repo(tmp_path / "repo", binary, dvc_bin())
    r.path.mkdir()
    for name in PIPELINE_FILES:
        shutil.copy2(ROOT / name, r.path / name)
    r.run("git", "init", "-q")
    r.run(r.dvc, "init", "-q")
    r.run(r.dvc, "config", "core.analytics", "false")
    r.run(r.dvc, "config", "core.check_update", "false")

    # Small data and small models: the test checks what reruns, not quality.
    params = r.params()
    params["data"]["lines"] = "20k"
    for candidate in params["train"]["candidates"]:
        if "random_forest" in candidate:
            candidate["random_forest"]["n_trees"] = 20
        if "xgboost" in candidate:
            candidate["xgboost"]["rounds"] = 40
    params["segments"]["kmeans"]["k_max"] = 5
    params["segments"]["kmeans"]["n_runs"] = 3
    r.write_params(params)
    r.run("git", "add", "-A")
    r.run("git", "commit", "-q", "-m", "pipeline")
    return r


def test_dvc_repro_reruns_only_what_changed(repo: Repo) -> None:
    # 1. From nothing: every stage, in order.
    ran, seconds, out = repo.repro()
    assert ran == STAGES, f"first repro ran {ran}, expected {STAGES}:\n{out}"
    print(f"\nfirst dvc repro (20k lines): {seconds:.2f} s")

    lock = repo.lock()
    assert set(lock["stages"]) == set(STAGES), lock["stages"].keys()
    hashes = {}
    for stage, path in [("data", "data/curated"), ("clean", "data/clean"), ("train", "models/pipeline")]:
        o = out_hash(lock, stage, path)
        assert re.fullmatch(r"[0-9a-f]{32}\.dir", o.get("md5", "")), f"{path}: {o}"
        assert o.get("nfiles", 0) > 0, f"{path}: {o}"
        hashes[path] = o["md5"]
    # The folder outputs are what dvc.lock says they are.
    assert (repo.path / "data/curated").is_dir() and (repo.path / "models/pipeline").is_dir()
    # Inputs are pinned too: train records the cleaned data's hash and its params.
    train_deps = {d["path"]: d["md5"] for d in lock["stages"]["train"]["deps"]}
    assert train_deps["data/clean"] == hashes["data/clean"]
    train_params = lock["stages"]["train"]["params"]["params.yaml"]
    assert train_params["train"]["holdout_seed"] == 42, train_params
    assert lock["stages"]["data"]["params"]["params.yaml"]["data"]["lines"] == "20k"
    evaluation = json.loads((repo.path / "metrics/evaluation.json").read_text())
    assert evaluation, "metrics/evaluation.json is empty"
    cleaning = json.loads((repo.path / "metrics/cleaning.json").read_text())
    assert cleaning, "metrics/cleaning.json is empty"

    # 2. No change: nothing reruns.
    ran, seconds, out = repo.repro()
    assert ran == [], f"a no-change repro reran {ran}:\n{out}"
    print(f"no-change dvc repro: {seconds:.2f} s")
    status = repo.run(repo.dvc, "status").stdout
    assert "up to date" in status, status

    # 3. One hyperparameter: only train and evaluate rerun.
    params = repo.params()
    xgb = next(c["xgboost"] for c in params["train"]["candidates"] if "xgboost" in c)
    xgb["max_depth"] = 4
    repo.write_params(params)
    status = repo.run(repo.dvc, "status").stdout
    assert "train" in status and "data:" not in status, status
    ran, seconds, out = repo.repro()
    assert ran == ["train", "evaluate"], f"after a hyperparameter change, ran {ran}:\n{out}"
    print(f"repro after one hyperparameter change: {seconds:.2f} s")
    lock = repo.lock()
    assert out_hash(lock, "data", "data/curated")["md5"] == hashes["data/curated"]
    assert out_hash(lock, "clean", "data/clean")["md5"] == hashes["data/clean"]
    assert out_hash(lock, "train", "models/pipeline")["md5"] != hashes["models/pipeline"]
    new_xgb = next(
        c["xgboost"]
        for c in lock["stages"]["train"]["params"]["params.yaml"]["train"]["candidates"]
        if "xgboost" in c
    )
    assert new_xgb["max_depth"] == 4
