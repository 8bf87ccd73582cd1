"""The last edges of the run protocol, as named regressions: a symlinked managed folder, damaged run.json and
manifest.json of valid JSON, a full disk and the file-size limit, paths that pass the permission bits but refuse
writes, bad data found only by the loader, stale temporaries of killed writes, a stale lock record, the data cache of
a revisited run, a deleted results table warned once. Each ends in one line and a non-zero exit (2 for bad input, 4
for no room), with nothing outside the workdir touched."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.engine import workdir as wd
from sparse_rnn_jax.engine.checkpoint import SweepLedger
from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.run.train import RunError, load_run, train_and_evaluate
from sparse_rnn_jax.tasks.npz import NpzConfig
from sparse_rnn_jax.tasks.rad import DEFAULT_CACHE_DIR, RadTaskConfig
from sparse_rnn_jax.tasks.rad.generate import remove_stale_temporaries
from tests.conftest import REPO

CONFIG = RunConfig(
    "rad",
    RadTaskConfig(mnist_source="embedded", train_size=64, val_size=16, test_size=16, image_size=8, cache_dir=""),
    PopulationConfig(num_models=2, budget=2000),
    TrainConfig(epochs=2, steps_per_call=2, max_buckets=1),
)
CLI = [
    "--mnist_source=embedded",
    "--train_size=64",
    "--val_size=16",
    "--test_size=16",
    "--image_size=8",
    "--budget=2000",
    "--num_models=2",
    "--configs=dense",
    "--epochs=2",
    "--max_buckets=2",
    "--steps_per_call=1",
    "--progress=false",
]


def _train(config, workdir, logs=None, **kw):
    return train_and_evaluate(
        config, workdir, progress=False, log=(logs.append if logs is not None else lambda _m: None), **kw
    )


def _epochs(config, n):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=n))


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    work = tmp_path_factory.mktemp("edges") / "w"
    result = _train(CONFIG, work)
    assert result.record["status"] == "complete"
    return result.frame, work


def _copy(complete, tmp_path):
    shutil.copytree(complete[1], tmp_path / "w", symlinks=True)
    return tmp_path / "w"


def _contents(root) -> dict:
    """Every file under ``root`` (not following links) with its bytes, and every folder."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = os.readlink(path) if os.path.islink(path) else open(path, "rb").read()
    return out


def _without_lock(contents: dict) -> dict:
    return {k: v for k, v in contents.items() if not k.startswith("run.lock")}


# ----------------------------------------------------------------------------------- 1. links out of the workdir


@pytest.mark.parametrize("overwrite", [False, True])
def test_symlinked_checkpoints_are_refused_and_nothing_outside_is_touched(tmp_path, complete, overwrite):
    work = _copy(complete, tmp_path)
    outside = tmp_path / "outside"
    shutil.move(work / "checkpoints", outside)
    (outside / "precious").mkdir()
    (outside / "precious" / "a.txt").write_text("keep me")
    (outside / "notes.txt").write_text("keep me too")
    (work / "checkpoints").symlink_to(outside)
    before = _contents(outside)
    with pytest.raises(RunError, match="checkpoints in workdir .* is a symbolic link"):
        _train(_epochs(CONFIG, 3), work, overwrite=overwrite)
    assert _contents(outside) == before
    assert (work / "checkpoints").is_symlink()


def test_a_symlinked_lock_file_is_refused_before_it_is_opened(tmp_path, complete):
    work = _copy(complete, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("not a lock")
    (work / "run.lock").unlink()
    (work / "run.lock").symlink_to(victim)
    with pytest.raises(RunError, match="run.lock in workdir .* is a symbolic link"):
        _train(CONFIG, work)
    assert victim.read_text() == "not a lock"  # opening the lock would have truncated it


def test_checkpoint_cleanup_removes_only_its_own_file_names(tmp_path):
    work = tmp_path / "w"
    ckpt = work / "checkpoints"
    ckpt.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x").write_text("outside")
    for name in ("ckpt-000009.npz", ".ckpt-000009.npz.ab_c12.tmp", "notes.txt", "ckpt-1.npz"):
        (ckpt / name).write_text("x")
    (ckpt / "sub").mkdir()
    (ckpt / "sub" / "ckpt-000001.npz").write_text("x")
    (ckpt / "ckpt-000010.npz").symlink_to(outside)  # a link under a checkpoint's name: the link goes, not its target
    SweepLedger(wd.absolute(work), [], log=lambda _m: None)._collect_garbage()
    assert sorted(p.name for p in ckpt.iterdir()) == ["ckpt-1.npz", "notes.txt", "sub"]
    assert (ckpt / "sub" / "ckpt-000001.npz").exists() and (outside / "x").read_text() == "outside"
    shutil.rmtree(ckpt)
    ckpt.symlink_to(outside)
    (outside / "ckpt-000003.npz").write_text("x")
    SweepLedger(wd.absolute(work), [], log=lambda _m: None)._collect_garbage()
    assert sorted(p.name for p in outside.iterdir()) == ["ckpt-000003.npz", "x"]  # never through the link


# ------------------------------------------------------------------------ 2. damaged records of valid JSON


def _damage_record(path, change):
    record = json.loads(path.read_text())
    path.write_text(json.dumps(change(record)))


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda r: [], "not a JSON object (a list)"),
        (lambda r: "x", "not a JSON object (a str)"),
        (lambda r: {**r, "config": {**r["config"], "train": {**r["config"]["train"], "epochs": "3"}}}, "train.epochs"),
        (lambda r: {**r, "chunk_models": "abc"}, "'chunk_models'"),
        (lambda r: {**r, "wall_time_s": "abc", "status": "running"}, "'wall_time_s'"),
        (lambda r: {**r, "status": "done"}, "'status'"),
        (lambda r: {**r, "config": {**r["config"], "population": []}}, "population"),
    ],
    ids=["list", "string", "epochs-string", "chunk_models", "wall_time_s", "status", "population-list"],
)
def test_damaged_run_json_is_refused_in_one_line_naming_the_field(tmp_path, complete, change, named):
    work = _copy(complete, tmp_path)
    _damage_record(work / "run.json", change)
    before = _without_lock(_contents(work))
    with pytest.raises(RunError, match="run.json is damaged") as info:
        _train(CONFIG, work)
    assert named in str(info.value) and "\n" not in str(info.value) and info.value.overwritable
    assert _without_lock(_contents(work)) == before  # nothing trained, nothing rewritten
    with pytest.raises(RunError, match="run.json is damaged"):
        load_run(work)  # prune and diagnose read it the same way


@pytest.mark.parametrize("damage", ["deleted", "garbled", "wrong-types", "foreign-file-name"])
def test_damaged_and_deleted_manifest_are_refused_alike_and_overwrite_recovers(tmp_path, complete, damage):
    work = _copy(complete, tmp_path)
    manifest = work / "manifest.json"
    if damage == "deleted":
        manifest.unlink()
    elif damage == "garbled":
        manifest.write_text("{not json")
    elif damage == "wrong-types":
        _damage_record(manifest, lambda m: {**m, "chunks": []})
    else:
        _damage_record(manifest, lambda m: {**m, "checkpoints": [{**m["checkpoints"][0], "file": "../../x"}]})
    with pytest.raises(RunError, match="cannot be verified") as info:
        _train(CONFIG, work)
    assert info.value.overwritable
    result = _train(CONFIG, work, overwrite=True)
    pd.testing.assert_frame_equal(result.frame, complete[0], check_exact=True)


# ------------------------------------------------------------------------------- 3. a full disk, ulimit -f


def test_a_full_disk_is_one_line_naming_the_path_the_bytes_and_the_free_space(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wd.os, "replace", full)
    with pytest.raises(wd.NoSpaceError) as info:
        wd.write_bytes_atomic(b"x" * 1000, tmp_path / "manifest.json")
    text = str(info.value)
    assert info.value.errno == errno.ENOSPC and "\n" not in text
    assert str(tmp_path / "manifest.json") in text and "1,000 bytes" in text and "bytes free" in text
    assert list(tmp_path.iterdir()) == []  # the temporary is gone


@pytest.mark.slow
def test_file_size_limit_mid_run_exits_4_in_one_line_and_the_rerun_resumes(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "experiments.rad_sweep", f"--workdir={tmp_path / 'w'}", f"--cache_dir={tmp_path}/c"]
    limited = subprocess.run(  # ulimit -f counts 1024-byte blocks: 40 KiB, less than the first two-chunk checkpoint
        ["bash", "-c", 'ulimit -f 40 && exec "$@"', "bash", *cmd, *CLI],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in limited.stderr.splitlines() if line.startswith("error")]
    assert limited.returncode == 4, limited.stderr[-2000:]
    assert "Traceback" not in limited.stderr and len(errors) == 1, limited.stderr[-2000:]
    assert "file-size limit (ulimit -f: 40,960 bytes)" in errors[0] and "rerun the same command" in errors[0]
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "w").rglob("*"))
    resumed = subprocess.run([*cmd, *CLI], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((tmp_path / "w" / "run.json").read_text())["status"] == "complete"
    assert len(pd.read_parquet(tmp_path / "w" / "results.parquet")) == 3 * 2  # 2 sampled + dense, 2 epochs


# ---------------------------------------------------------------- 4. paths that pass the permission bits


def test_a_folder_that_refuses_writes_is_found_by_a_probe_that_leaves_nothing(tmp_path):
    assert "cannot create /proc/x" in wd.path_problem("/proc/x")
    assert "cannot write" in wd.path_problem("/proc/x.json", "file") or "cannot create" in wd.path_problem(
        "/proc/x.json", "file"
    )
    assert wd.path_problem(tmp_path / "new" / "deeper") is None
    assert wd.path_problem(tmp_path / "f.json", "file") is None
    assert "unusable path" in wd.path_problem("bad\0name")
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_in_proc_is_refused_before_the_workdir_exists(tmp_path):
    config = dataclasses.replace(CONFIG, data=dataclasses.replace(CONFIG.data, cache_dir="/proc/x"))
    with pytest.raises(RunError, match="cache_dir: cannot create /proc/x"):
        _train(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


# ------------------------------------------------------------------------ 6. nothing left behind


def test_bad_npz_data_found_by_the_split_leaves_no_workdir(tmp_path):
    np.savez(tmp_path / "small.npz", x=np.zeros((3, 5, 2), np.float32), labels=np.array([0, 1, 0]))
    config = RunConfig(
        "npz", NpzConfig(data=str(tmp_path / "small.npz")), PopulationConfig(num_models=1, budget=200), TrainConfig()
    )
    with pytest.raises(RunError, match="split 'val' would be empty"):
        _train(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_a_killed_lock_record_write_leaves_no_temporary(tmp_path):
    (tmp_path / ".run.lock.json.abc123.tmp").write_bytes(b"")
    (tmp_path / "other.tmp").write_bytes(b"")
    lock = wd.WorkdirLock(tmp_path)
    lock.acquire()
    lock.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.tmp", "run.lock"]


def test_a_killed_cache_write_leaves_a_temporary_removed_on_the_next_start(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".rad_train_0123abcd.{dead.pid}.k_q9.tmp"
    live = tmp_path / f".rad_val_0123abcd.{os.getpid()}.k_q9.tmp"  # another run writing now
    for p in (stale, live):
        p.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [stale.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


# ------------------------------------------------------------------------------------------------ 7. smaller


def test_a_stale_record_of_a_dead_process_is_not_named_as_the_live_holder(tmp_path):
    import filelock

    dead = subprocess.Popen(["true"])
    dead.wait()
    holder = filelock.FileLock(str(tmp_path / "run.lock"), timeout=0)
    holder.acquire()  # a live holder that has not written its record yet
    try:
        stale = {"host": __import__("socket").gethostname(), "pid": dead.pid, "started": "then"}
        (tmp_path / "run.lock.json").write_text(json.dumps(stale))
        with pytest.raises(wd.WorkdirBusy) as info:
            wd.WorkdirLock(tmp_path).acquire()
        assert f"pid {dead.pid}" not in str(info.value) and "holder unknown" in str(info.value)
    finally:
        holder.release()


def test_a_deleted_results_table_is_warned_once_and_retrained(tmp_path, complete):
    work = _copy(complete, tmp_path)
    (work / "results.parquet").unlink()
    logs = []
    result = _train(CONFIG, work, logs)
    assert sum("results.parquet is missing" in m for m in logs) == 1, logs
    pd.testing.assert_frame_equal(result.frame, complete[0], check_exact=True)


def test_a_revisited_run_uses_this_invocations_cache_dir(tmp_path, complete):
    work = _copy(complete, tmp_path)
    _damage_record(
        work / "run.json",
        lambda r: {**r, "config": {**r["config"], "data": {**r["config"]["data"], "cache_dir": "/elsewhere"}}},
    )
    assert load_run(work).config.data.cache_dir == DEFAULT_CACHE_DIR
    given = str(tmp_path / "c")
    assert load_run(work, data_overrides={"cache_dir": given}).config.data.cache_dir == given


def test_run_config_from_dict_names_a_field_of_the_wrong_type():
    d = CONFIG.to_dict()
    for part, field, value in [("train", "epochs", "3"), ("train", "seed", 1.5), ("population", "configs", "dense")]:
        bad = {**d, part: {**d[part], field: value}}
        with pytest.raises(ValueError, match=f"{part}.{field}: "):
            RunConfig.from_dict(bad)
    with pytest.raises(ValueError, match="seed must be an integer in"):
        RunConfig.from_dict({**d, "train": {**d["train"], "seed": 2**64}})


@pytest.mark.slow
def test_diagnose_refuses_a_lag_beyond_the_sequences_instead_of_clamping_it(tmp_path, complete):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.diagnose",
            f"--workdir={complete[1]}",
            f"--out={tmp_path / 'd'}",
            f"--cache_dir={tmp_path / 'c'}",
            "--init_only",
            "--max_lag=100000",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr[-2000:]
    assert lines[0] == "error: --max_lag must be at most the 11 steps of the run's sequences, got 100000"
    assert not (tmp_path / "d").exists()


def test_analyze_refuses_a_results_folder_with_a_damaged_run_json(tmp_path, complete):
    from sparse_rnn_jax.analysis.report import AnalysisInputError, check_inputs

    work = _copy(complete, tmp_path)
    (work / "run.json").write_text("[]")
    with pytest.raises(AnalysisInputError, match="run.json is damaged: not a JSON object"):
        check_inputs([work], tmp_path / "out")
    assert not (tmp_path / "out").exists()
