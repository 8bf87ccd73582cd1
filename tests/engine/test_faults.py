"""The write protocol under faults (in-process, toy task): a kill at every named write boundary, a chain of kills,
corrupted files of many kinds, and the per-epoch hook; every run that resumes ends bit for bit equal to an
uninterrupted run. A kill is an ``engine.workdir.Faults`` passed to ``run_sweep`` whose exit raises an exception,
so the process survives to resume (nothing the engine writes happens on the way out; the CLI tests kill for real)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.engine import workdir as wd
from sparse_rnn_jax.engine.checkpoint import CheckpointError, pack_arrays, unpack_arrays
from sparse_rnn_jax.engine.run_plan import plan_members
from sparse_rnn_jax.engine.sweep import SweepInterrupted, TrainConfig, load_final_params, run_sweep
from tests.toy import toy_data, toy_members, toy_task

CFG = TrainConfig(epochs=3, batch_size=16, eval_batch_size=40, max_buckets=2, steps_per_call=4)
MEMBERS = toy_members(5)  # two buckets: two chunks


class Killed(BaseException):
    """What the patched ``os._exit`` raises."""


ARMED: dict[str, wd.Faults] = {"faults": wd.NO_FAULTS}
"""The faults the next ``_run`` passes to ``run_sweep`` (the ``kill`` fixture arms them)."""


def _run(workdir, cfg=CFG, logs=None, **kw):
    return run_sweep(
        MEMBERS,
        toy_task(),
        toy_data(),
        toy_data(48, seed=1),
        cfg,
        workdir,
        progress=False,
        log=(logs.append if logs is not None else lambda _m: None),
        faults=ARMED["faults"],
        **kw,
    )


@pytest.fixture
def kill():
    """kill(boundary, count): the next runs die the count-th time they reach ``boundary``; kill(None): no faults."""

    def exit_(status):
        raise Killed(status)

    def arm(boundary: str | None, count: int = 1):
        ARMED["faults"] = wd.NO_FAULTS if boundary is None else wd.Faults(boundary, count, exit=exit_)

    yield arm
    ARMED["faults"] = wd.NO_FAULTS


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uninterrupted run: its frame and its workdir (copied by tests that corrupt it)."""
    work = tmp_path_factory.mktemp("clean") / "w"
    return _run(work), work


def _same(df: pd.DataFrame, clean_df: pd.DataFrame, work) -> None:
    pd.testing.assert_frame_equal(df, clean_df, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(work / "results.parquet"), clean_df, check_exact=True)


def _copy(clean, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(clean[1], work)
    return work


# ------------------------------------------------------------------------------------------- kills


@pytest.mark.parametrize(
    "boundary, count",
    [
        ("before_results", 2),
        ("results_written", 1),  # the rows of epoch 1 written, no checkpoint or manifest names them
        ("results_written", 4),  # in the second chunk: the first chunk's rows stay committed
        ("checkpoint_partial", 1),
        ("checkpoint_partial", 5),
        ("checkpoint_written", 2),
        ("manifest_written", 3),  # the first chunk's last commit (its final checkpoint)
        ("chunk_done", 1),  # between the chunks
    ],
)
def test_kill_at_each_write_boundary_then_resume_is_identical(tmp_path, clean, kill, boundary, count):
    kill(boundary, count)
    with pytest.raises(Killed):
        _run(tmp_path / "w")
    kill(None)
    logs = []
    _same(_run(tmp_path / "w", logs=logs), clean[0], tmp_path / "w")
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "w").rglob("*"))  # leftovers removed


def test_final_weights_are_the_final_checkpoint_and_survive_a_kill(tmp_path, kill):
    reference = _run(tmp_path / "ref")
    kill("checkpoint_written", 2)
    with pytest.raises(Killed):
        _run(tmp_path / "w")
    kill(None)
    _same(_run(tmp_path / "w"), reference, tmp_path / "w")
    chunks = plan_members(MEMBERS, CFG, 1).chunks
    for chunk in chunks:
        (a, _), (b, _) = load_final_params(tmp_path / "ref", chunk), load_final_params(tmp_path / "w", chunk)
        assert a and all(np.all(np.isfinite(v)) for v in a.values())
        assert all(a[k].tobytes() == b[k].tobytes() for k in a)
        assert all(v.shape[0] == len(chunk.members) for v in a.values())  # ghosts dropped
    assert not (tmp_path / "w" / wd.FINAL_PARAMS_DIR).exists()  # one store of the weights
    final = json.loads((tmp_path / "w" / "manifest.json").read_text())["finals"][chunks[0].key]
    ckpt = tmp_path / "w" / "checkpoints" / final["file"]
    arrays = unpack_arrays(ckpt.read_bytes())
    name = next(k for k in sorted(arrays) if k.startswith("params|"))
    arrays[name] = arrays[name] + 1.0  # a well-formed file whose arrays are not the recorded ones
    ckpt.write_bytes(pack_arrays(arrays))
    with pytest.raises(CheckpointError, match=f"final checkpoint of chunk {chunks[0].key}.*sha256"):
        load_final_params(tmp_path / "w", chunks[0])


def test_chain_of_kills_at_random_boundaries(tmp_path, clean, kill):
    rng = random.Random(13)
    boundaries = ["before_results", "results_written", "checkpoint_partial", "checkpoint_written", "manifest_written"]
    for _ in range(6):
        kill(rng.choice(boundaries), rng.randint(1, 3))
        try:
            _run(tmp_path / "w")
        except Killed:
            continue
    kill(None)
    _same(_run(tmp_path / "w"), clean[0], tmp_path / "w")


def test_stop_request_then_kill_during_the_stop_commit(tmp_path, clean, kill):
    calls = iter(range(100))
    kill("checkpoint_partial", 2)  # the mid-epoch stop's checkpoint is the second one written
    with pytest.raises(Killed):
        _run(tmp_path / "w", should_stop=lambda: next(calls) >= 3)
    kill(None)
    calls = iter(range(100))
    with pytest.raises(SweepInterrupted):
        _run(tmp_path / "w", should_stop=lambda: next(calls) >= 2)
    _same(_run(tmp_path / "w"), clean[0], tmp_path / "w")


# ------------------------------------------------------------------------------------------- corruption


def _interrupted(tmp_path, after_calls=5):
    calls = iter(range(1000))
    with pytest.raises(SweepInterrupted):
        _run(tmp_path / "w", should_stop=lambda: next(calls) >= after_calls)
    return tmp_path / "w"


def _latest_checkpoint(work):
    manifest = json.loads((work / "manifest.json").read_text())
    return work / "checkpoints" / manifest["checkpoints"][-1]["file"]


def test_flipped_bytes_in_checkpoint_data_fall_back_to_the_previous_one(tmp_path, clean):
    work = _interrupted(tmp_path)
    path = _latest_checkpoint(work)
    data = bytearray(path.read_bytes())
    weights = unpack_arrays(bytes(data))["params|W_hx"]
    start = data.find(weights[weights != 0][:4].tobytes())  # the stored non-zero weights themselves
    assert start > 0
    for i in range(start, start + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    logs = []
    _same(_run(work, logs=logs), clean[0], work)
    assert any("unreadable" in m and "previous intact" in m for m in logs), logs


def test_altered_checkpoint_values_are_detected_by_their_hash(tmp_path, clean):
    work = _interrupted(tmp_path)
    path = _latest_checkpoint(work)
    arrays = unpack_arrays(path.read_bytes())
    name = next(k for k in sorted(arrays) if k.startswith("params|"))
    arrays[name] = arrays[name].copy()
    arrays[name].reshape(-1)[np.flatnonzero(arrays[name].reshape(-1))[0]] += 0.003  # a valid file, wrong values
    path.write_bytes(pack_arrays(arrays))
    logs = []
    _same(_run(work, logs=logs), clean[0], work)
    assert any("do not match their recorded sha256" in m for m in logs), logs


@pytest.mark.parametrize("damage", ["unreadable", "deleted", "both"])
def test_unusable_latest_checkpoint(tmp_path, clean, damage):
    work = _interrupted(tmp_path, after_calls=7)
    manifest = json.loads((work / "manifest.json").read_text())
    paths = [work / "checkpoints" / e["file"] for e in manifest["checkpoints"]]
    for p in paths[-2:] if damage == "both" else paths[-1:]:
        if damage == "deleted":
            p.unlink()
        else:
            p.write_bytes(b"")
    logs = []
    _same(_run(work, logs=logs), clean[0], work)
    assert any(m.startswith("warning:") for m in logs), logs


@pytest.mark.parametrize("damage", ["deleted", "truncated", "garbled_ids", "extra_rows", "dropped_rows"])
def test_damaged_results_of_a_complete_run_are_rebuilt(tmp_path, clean, damage):
    work = _copy(clean, tmp_path)
    path = work / "results.parquet"
    df = pd.read_parquet(path)
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbled_ids":
        df.loc[df.index[:4], "model_id"] += 1000
        df.to_parquet(path, index=False)
    elif damage == "extra_rows":
        extra = df[df.epoch == 3].assign(epoch=4)
        pd.concat([df, extra]).to_parquet(path, index=False)
    else:
        df[df.model_id != 2].to_parquet(path, index=False)
    logs = []
    _same(_run(work, logs=logs), clean[0], work)
    assert any(m.startswith("warning: results.parquet") for m in logs), logs


@pytest.mark.parametrize("damage", ["garbled", "deleted", "malformed"])
def test_damaged_manifest_trusts_nothing_and_retrains(tmp_path, clean, damage):
    work = _copy(clean, tmp_path)
    if damage == "deleted":
        (work / "manifest.json").unlink()
    elif damage == "malformed":  # valid JSON, a chunk record without its epochs
        manifest = json.loads((work / "manifest.json").read_text())
        del next(iter(manifest["chunks"].values()))["epochs"]
        (work / "manifest.json").write_text(json.dumps(manifest))
    else:
        (work / "manifest.json").write_text('{"format": 1, "chunks": ')
    logs = []
    _same(_run(work, logs=logs), clean[0], work)
    assert any("warning" in m for m in logs), logs


def test_kill_while_repairing_results(tmp_path, clean, kill):
    work = _copy(clean, tmp_path)
    df = pd.read_parquet(work / "results.parquet")
    pd.concat([df, df[df.epoch == 3].assign(epoch=4)]).to_parquet(work / "results.parquet", index=False)
    kill("repair", 1)
    with pytest.raises(Killed):
        _run(work)
    kill(None)
    _same(_run(work), clean[0], work)


def test_complete_run_writes_nothing_on_rerun(tmp_path, clean):
    work = _copy(clean, tmp_path)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.rglob("*") if p.is_file()}
    _same(_run(work), clean[0], work)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.rglob("*") if p.is_file()}
    assert before == after


# ------------------------------------------------------------------------------------------- more epochs, hook


def test_more_epochs_continue_from_the_final_state(tmp_path):
    two, three = dataclasses.replace(CFG, epochs=2), CFG
    from_scratch = _run(tmp_path / "three", three)
    _run(tmp_path / "w", two)
    logs = []
    extended = _run(tmp_path / "w", three, logs=logs)
    pd.testing.assert_frame_equal(extended, from_scratch, check_exact=True)
    assert any("resuming chunk b000c0000 at epoch 3, step 0" in m for m in logs), logs


def test_on_epoch_sees_every_committed_epoch(tmp_path):
    calls = []
    df = _run(tmp_path / "w", on_epoch=lambda key, epoch, rows, seconds: calls.append((key, epoch, rows, seconds)))
    assert [(k, e) for k, e, _, _ in calls] == [(k, e) for k in ("b000c0000", "b001c0000") for e in (1, 2, 3)]
    rows = pd.DataFrame([r for _, _, rs, _ in calls for r in rs])
    pd.testing.assert_frame_equal(
        rows.sort_values(["model_id", "epoch"]).reset_index(drop=True)[df.columns], df, check_dtype=False
    )
    assert all(s > 0 for *_, s in calls)
    # resumed after a stop: only the epochs trained in this run
    calls.clear()
    stops = iter(range(1000))
    with pytest.raises(SweepInterrupted):
        _run(tmp_path / "s", should_stop=lambda: next(stops) >= 5, on_epoch=lambda *a: calls.append(a[:2]))
    first = list(calls)
    _run(tmp_path / "s", on_epoch=lambda *a: calls.append(a[:2]))
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 6 and first


# ------------------------------------------------------------------------------------------- files


def test_checkpoint_format_round_trips_bits():
    arrays = {
        "params|w": np.array([[0.0, -0.0, 1.5], [np.nan, 0.0, 3.0]], np.float32),
        "count": np.array([3, 0], np.int32),
        "diverged": np.array([True, False]),
    }
    back = unpack_arrays(pack_arrays(arrays))
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].tobytes() == v.tobytes()


def test_files_follow_the_umask(tmp_path, clean):
    old = os.umask(0o022)
    try:
        wd.write_bytes_atomic(b"x", tmp_path / "f")
        assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        wd.write_bytes_atomic(b"x", tmp_path / "g")
        assert (tmp_path / "g").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert (clean[1] / "results.parquet").stat().st_mode & 0o044  # readable by others under the default umask


def test_path_problem_names_the_obstacle(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is a file" in wd.path_problem(tmp_path / "file" / "sub")
    assert "not a folder" in wd.path_problem(tmp_path / "file")
    assert wd.path_problem(tmp_path / "new" / "deeper") is None
    assert wd.path_problem("gs://bucket/x") is None
    assert str(wd.absolute("~/x")) == os.path.expanduser("~/x")
    assert wd.lock_path(tmp_path) == tmp_path / "run.lock"
    remote = wd.lock_path("gs://bucket/sweep")  # a cloud workdir's lock is a local file: it guards this host only
    assert remote.is_relative_to(os.path.expanduser("~")) and remote != wd.lock_path("gs://bucket/other")


def test_faults_name_a_known_boundary_and_count_for_themselves():
    with pytest.raises(ValueError, match="boundary must be one of"):
        wd.Faults("no_such_boundary")
    exits = []
    a, b = wd.Faults("chunk_done", 2, exit=exits.append), wd.Faults("chunk_done", 2, exit=exits.append)
    for faults in (a, b, a, b):
        faults.reach("chunk_done")
        faults.reach("repair")
    assert exits == [wd.FAULT_EXIT_STATUS, wd.FAULT_EXIT_STATUS]
    wd.NO_FAULTS.reach("chunk_done")  # nothing happens
