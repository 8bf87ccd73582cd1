"""Bad inputs across every entry point: each ends in one line on stderr and exit status 2, before any data is loaded
(no cache folder appears) and without a traceback.

Each entry point runs once per module in a subprocess that parses and runs all of its cases in turn (absl flags
reset between cases), so the table stays fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, runpy, sys, traceback
    from absl import flags
    from experiments import common

    module, cases = sys.argv[1], json.loads(sys.stdin.read())
    captured, run = [], common.run
    common.run = captured.append  # the module's __main__ block hands its main function here
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    common.run = run
    out = []
    for args in cases:
        flags.FLAGS.unparse_flags()
        sys.argv = [module, *args]
        err = io.StringIO()
        code = None
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                common.run(captured[0])
            except SystemExit as e:
                code = e.code
            except BaseException:
                code = "exception"
                traceback.print_exc()
        out.append({"code": code, "stderr": err.getvalue()})
    print(json.dumps(out))
    """
)

TINY = [
    "--mnist_source=embedded",
    "--train_size=64",
    "--val_size=16",
    "--test_size=16",
    "--image_size=8",
    "--num_models=2",
    "--epochs=2",
    "--progress=false",
]
ROOT_CAN_WRITE = hasattr(os, "geteuid") and os.geteuid() == 0


def _sweep(*args, budget="--budget=2000"):
    """A tiny rad sweep with ``args`` (its workdir under {T}, its own cache folder {C})."""
    return ["--workdir={T}/w", "--cache_dir={C}", *TINY, budget, *args]


# (module, args, text the one line must contain). {C}: the case's own cache folder. {T}: the test's folder (a file
# "blocker", a read-only folder "ro", a run.json of an unfinished run in "unfinished", a garbled results.parquet in
# "garbled").
SPEC = "s:h=4:lr=0.001:hx=1/0/0.1:hh=1/0/0.1:hy=1/0/0.1:yx=1/0/0.1:yh=1/0/0.1:yy=1/0/0.1"
CASES: list[tuple[str, list[str], str]] = [
    # the sweeps
    ("experiments.rad_sweep", _sweep("--sampler=normal", "--hidden_mean=nan"), "--hidden_mean"),
    ("experiments.rad_sweep", _sweep("--sampler=normal", "--hidden_std=nan"), "--hidden_std"),
    ("experiments.rad_sweep", _sweep("--seed=-1"), "--seed"),
    ("experiments.rad_sweep", _sweep("--hh_graph=ws", "--hh_graph_beta=nan"), "--hh_graph_beta"),
    ("experiments.rad_sweep", _sweep("--configs=dense", "--hidden_dim=50"), "--hidden_dim"),
    ("experiments.rad_sweep", _sweep("--num_models=2000000000"), "host memory"),
    ("experiments.rad_sweep", _sweep("--configs=dense", budget="--budget=1e10"), "host memory"),
    ("experiments.rad_sweep", _sweep(budget="--budget=1e14"), "--budget must be a number in (0, 1e+10]"),
    ("experiments.rad_sweep", _sweep(budget="--budget=inf"), "--budget"),
    ("experiments.rad_sweep", _sweep("--configs=dense", "--config_lr=inf"), "--config_lr"),
    ("experiments.rad_sweep", _sweep("--uniform_density=nan", "--configs=uniform"), "--uniform_density"),
    ("experiments.rad_sweep", _sweep("--leak=fixed", "--leak_alpha=nan"), "--leak_alpha"),
    ("experiments.rad_sweep", _sweep("--epochs=0"), "--epochs"),
    ("experiments.rad_sweep", _sweep("--max_models_per_chunk=-1"), "--max_models_per_chunk"),
    ("experiments.rad_sweep", _sweep("--data_seed=-1"), "--data_seed"),
    ("experiments.rad_sweep", _sweep("--mnist_source=bogus"), "--mnist_source"),
    ("experiments.rad_sweep", _sweep("--batch_size=128"), "batch"),
    ("experiments.rad_sweep", _sweep("--workdir={T}/blocker/w"), "--workdir"),
    ("experiments.rad_sweep", _sweep("--workdir={T}/blocker"), "--workdir"),
    ("experiments.rad_sweep", _sweep("--workdir={T}/ro/w"), "--workdir"),
    ("experiments.rad_sweep", _sweep("--cache_dir={T}/blocker/c"), "--cache_dir"),
    ("experiments.rad_sweep", _sweep("--cache_dir={T}/ro/c"), "--cache_dir"),
    ("experiments.rad_sweep", _sweep("extra"), "positional"),
    # paths that pass the permission bits but refuse writes (probed), and bounds shared by every entry
    ("experiments.rad_sweep", _sweep("--cache_dir=/proc/x"), "--cache_dir: cannot create /proc/x"),
    ("experiments.rad_sweep", _sweep("--workdir=/proc/x"), "--workdir: cannot create /proc/x"),
    ("experiments.rad_sweep", _sweep("--seed=18446744073709551616"), "--seed must be an integer in [0, 4294967295]"),
    ("experiments.rad_sweep", _sweep("--eval_batch_size=1000000000000"), "--eval_batch_size"),
    ("experiments.rad_sweep", _sweep("--unroll=1000000"), "--unroll must be an integer in [1, 1024]"),
    (
        "experiments.sweep",
        ["--task=npz", "--data={T}/small.npz", "--workdir={T}/npzw", "--budget=200", "--num_models=1"],
        "split 'val' would be empty",
    ),
    ("experiments.rad_sweep", TINY, "--workdir"),
    ("experiments.sweep", ["--task=bogus", "--workdir={T}/w"], "--task"),
    ("experiments.sweep", ["--task=reber", "--workdir={T}/w", "--mnist_source=embedded"], "--mnist_source"),
    ("experiments.sweep", ["--task=rad", *_sweep("--sampler=bogus")], "--sampler"),
    ("experiments.reber_sweep", ["--workdir={T}/w", "--budget=2000", "--epochs=-2"], "--epochs"),
    ("experiments.reber_sweep", ["--workdir={T}/blocker/w"], "--workdir"),
    ("experiments.ah_sweep", ["--workdir={T}/w", "--budget=2000", "--seed=-3"], "--seed"),
    ("experiments.ah_sweep", ["--workdir={T}/blocker/x/y"], "--workdir"),
    (
        "experiments.minari_sweep",
        ["--workdir={T}/w", "--budget=2000", "--spec_repeats=0", "--specs=" + SPEC],
        "spec_repeats",
    ),
    # describe
    (
        "experiments.describe",
        ["--input_dim=10", "--output_dim=3", "--config=custom", "--densities=0,0,0,0,0,0", "--budget=1000"],
        "density 0",
    ),
    (
        "experiments.describe",
        ["--input_dim=10", "--output_dim=3", "--config=custom", "--densities=nan,1,1,1,1,1", "--budget=1000"],
        "--densities",
    ),
    ("experiments.describe", ["--input_dim=10", "--output_dim=3", "--budget=nan"], "--budget"),
    ("experiments.describe", ["--input_dim=10", "--output_dim=3", "--budget=1000", "--hidden_dim=5"], "one of"),
    ("experiments.describe", ["--input_dim=0", "--output_dim=3", "--budget=1000"], "--input_dim"),
    ("experiments.describe", ["--input_dim=10", "--output_dim=3", "--budget=1e300"], "--budget"),
    # analyze
    ("experiments.analyze", ["--results={T}/nowhere", "--out={T}/a"], "does not exist"),
    ("experiments.analyze", ["--results={T}/garbled", "--out={T}/blocker/a"], "blocker"),
    ("experiments.analyze", ["--results={T}/garbled", "--out={T}/a"], "cannot read results"),
    ("experiments.analyze", ["--results={T}/garbled", "--out={T}/a", "--trees=0"], "--trees"),
    ("experiments.analyze", ["--results={T}/garbled", "--out=/proc/x"], "--out: cannot create /proc/x"),
    ("experiments.analyze", ["--results={T}/garbled", "--out={T}/a", "--seed=-1"], "--seed"),
    # recommend
    ("experiments.recommend", ["--input_dim=10", "--output_dim=3", "--budget=nan"], "--budget"),
    ("experiments.recommend", ["--input_dim=0", "--output_dim=3", "--budget=1000"], "--input_dim"),
    (
        "experiments.recommend",
        ["--input_dim=10", "--output_dim=3", "--budget=1000", "--balance_targets=nan"],
        "--balance_targets",
    ),
    (
        "experiments.recommend",
        ["--input_dim=10", "--output_dim=3", "--budget=1000", "--predictor={T}/nowhere"],
        "predictor",
    ),
    ("experiments.recommend", ["--input_dim=10", "--output_dim=3", "--budget=1e30"], "--budget"),
    (
        "experiments.recommend",
        ["--input_dim=10", "--output_dim=3", "--budget=1000", "--seq_len=5", "--loss=ce", "--num_candidates=-1"],
        "--num_candidates",
    ),
    (
        "experiments.recommend",
        ["--input_dim=10", "--output_dim=3", "--budget=1000", "--seq_len=5", "--loss=ce", "--top=-1"],
        "--top",
    ),
    # prune
    ("experiments.prune", ["--workdir={T}/nowhere"], "run.json"),
    ("experiments.prune", ["--workdir={T}/unfinished"], "not complete"),
    ("experiments.prune", ["--workdir={T}/unfinished", "--fractions=nan"], "--fractions"),
    ("experiments.prune", ["--workdir={T}/unfinished", "--out={T}/blocker/p"], "--out"),
    ("experiments.prune", ["--workdir={T}/unfinished", "--out=/proc/x"], "--out"),
    # diagnose
    ("experiments.diagnose", ["--workdir={T}/unfinished", "--out={T}/d", "--max_lag=0"], "--max_lag"),
    ("experiments.diagnose", ["--workdir={T}/nowhere", "--out={T}/d"], "run.json"),
    ("experiments.diagnose", ["--workdir={T}/unfinished", "--out={T}/blocker/d"], "--out"),
    ("experiments.diagnose", ["--workdir={T}/unfinished", "--out=/proc/x"], "--out"),
    ("experiments.diagnose", ["--workdir={T}/unfinished", "--out={T}/d"], "not complete"),
    # bench
    ("experiments.bench", ["--tiny", "--json={T}/blocker/b.json"], "--json"),
    ("experiments.bench", ["--tiny", "--json={T}/b.json", "--sizes=0"], "--sizes"),
    ("experiments.bench", ["--tiny", "--json={T}/b.json", "--steps_per_call=0"], "--steps_per_call"),
    ("experiments.bench", ["--tiny", "--json=/proc/x.json"], "--json"),
    ("experiments.bench", ["--tiny", "--json={T}/b.json", "--unroll=1000000"], "--unroll"),
    # zoo, replicate
    ("experiments.zoo", ["--workdir=/proc/x"], "--workdir: cannot create /proc/x"),
    ("experiments.replicate", ["--fig1={T}/garbled", "--out=/proc/x"], "--out"),
    # show_rad
    ("experiments.show_rad", ["--out={T}/blocker/r.png", "--mnist_source=embedded"], "--out"),
    ("experiments.show_rad", ["--out=/proc/x.png", "--mnist_source=embedded"], "--out"),
    ("experiments.show_rad", ["--out={T}/r.png", "--num_sequences=0"], "num_sequences"),
    ("experiments.show_rad", ["--out={T}/r.png", "--mnist_source=bogus"], "bogus"),
    # collect_minari
    (
        "experiments.collect_minari",
        ["--env_id=X-v0", "--policy_npz={T}/nowhere.npz", "--episodes=0", "--dataset_id=local/x-v0"],
        "--episodes",
    ),
    (
        "experiments.collect_minari",
        ["--policy_npz={T}/nowhere.npz", "--episodes=2", "--dataset_id=local/x-v0"],
        "--env_id",
    ),
]


def _skipped(args: list[str]) -> bool:
    return ROOT_CAN_WRITE and any("{T}/ro" in a for a in args)


def _fill(args: list[str], root: Path, i: int) -> list[str]:
    return [a.replace("{C}", str(root / f"cache{i}")).replace("{T}", str(root)) for a in args]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> tuple[Path, dict[tuple[str, int], dict]]:
    root = tmp_path_factory.mktemp("bad")
    (root / "blocker").write_text("a file in the way")
    (root / "ro").mkdir()
    (root / "ro").chmod(0o555)
    (root / "unfinished").mkdir()
    (root / "unfinished" / "run.json").write_text(json.dumps({"status": "running"}))
    (root / "garbled").mkdir()
    (root / "garbled" / "results.parquet").write_bytes(b"PAR1 this is not a parquet file")
    import numpy as np

    np.savez(root / "small.npz", x=np.zeros((3, 5, 2), np.float32), labels=np.array([0, 1, 0]))
    by_module: dict[str, list[int]] = {}
    for i, (module, args, _) in enumerate(CASES):
        if not _skipped(args):
            by_module.setdefault(module, []).append(i)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = {}
    for module, indices in by_module.items():
        cases = [_fill(CASES[i][1], root, i) for i in indices]
        res = subprocess.run(
            [sys.executable, "-c", DRIVER, module],
            input=json.dumps(cases),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, f"{module}: {res.stderr[-3000:]}"
        for i, outcome in zip(indices, json.loads(res.stdout.strip().splitlines()[-1])):
            out[i] = outcome
    yield root, out
    (root / "ro").chmod(0o755)


def test_at_least_forty_cases_over_every_entry_point():
    modules = {m for m, _, _ in CASES}
    assert len(CASES) >= 40
    assert {
        f"experiments.{n}" for n in ("sweep", "rad_sweep", "ah_sweep", "minari_sweep", "reber_sweep", "describe")
    } | {
        f"experiments.{n}" for n in ("analyze", "recommend", "prune", "diagnose", "bench", "show_rad", "collect_minari")
    } <= modules


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{m.split('.')[1]}:{' '.join(a[-2:])}" for m, a, _ in CASES])
def test_bad_input_is_one_line_exit_2_before_any_work(outcomes, i):
    module, args, needle = CASES[i]
    if _skipped(args):
        pytest.skip("a read-only folder is writable by root")
    root, out = outcomes
    outcome = out[i]
    lines = [line for line in outcome["stderr"].splitlines() if line.strip()]
    assert outcome["code"] == 2, outcome["stderr"][-2000:]
    assert len(lines) == 1 and needle in lines[0], outcome["stderr"][-2000:]
    assert lines[0].startswith("error: ")
    assert not (root / f"cache{i}").exists()  # refused before any data was loaded or generated
    assert not (root / "w" / "results.parquet").exists()
    assert not (root / "npzw").exists()  # the data is checked before the workdir is created
    assert not any(p.name.startswith(".sparse_rnn_probe.") for p in root.rglob("*"))  # probes removed


def test_balancer_warns_in_one_line_where_the_grid_misses_the_target():
    cases = [
        ["--input_dim=2500", "--output_dim=10", "--budget=1e10"],
        ["--input_dim=7", "--output_dim=7", "--budget=1e6"],
        ["--input_dim=2500", "--output_dim=10", "--budget=100000"],  # the paper's Eqn 13: on target, no warning
    ]
    res = subprocess.run(
        [sys.executable, "-c", DRIVER, "experiments.describe"],
        input=json.dumps(cases),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    outcomes = json.loads(res.stdout.strip().splitlines()[-1])
    for outcome, proportion in zip(outcomes[:2], ("0.778", "0.865")):
        lines = outcome["stderr"].strip().splitlines()
        assert outcome["code"] in (None, 0) and len(lines) == 1, outcome
        assert lines[0].startswith("warning: balanced densities") and f"hidden proportion {proportion}" in lines[0]
    assert outcomes[2]["code"] in (None, 0) and outcomes[2]["stderr"] == ""


def test_one_line_warnings_are_scoped_to_the_entry_point():
    import warnings

    from experiments import common

    before = warnings.formatwarning
    with common.one_line_warnings():
        assert warnings.formatwarning("slow", UserWarning, "f.py", 1) == "warning: slow\n"
    assert warnings.formatwarning is before
