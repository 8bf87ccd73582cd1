"""The benchmark in its smallest mode must keep running (no timings asserted)."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO  # noqa: E402


def test_bench_tiny_writes_all_keys(tmp_path):
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--tiny", f"--json={out}", "--table_iv_models=50"],
        cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    for key in (
        "population_speedup_vs_loop",
        "speedup_vs_reference_style",
        "flop_utilization",
        "padding_efficiency",
        "input_wait_fraction",
        "device",
    ):
        assert key in data
    assert 0 < data["padding_efficiency"] <= 1 and data["flop_utilization"] > 0
    assert data["population_speedup_vs_loop"] > 0
    mb = data["memory_bound"]
    assert mb["weight_entries"] > 0 and mb["seconds_per_step"] > 0 and mb["share_of_step"] > 0
    guard = data["guard"]
    assert set(guard) == {"flop_utilization_float32", "speedup_vs_reference_style", "padding_efficiency"}
    assert guard["padding_efficiency"]["ok"] == (data["padding_efficiency"] >= 0.85)
    assert guard["flop_utilization_float32"]["value"] == data["flop_utilization"]  # a float32 run's own
    assert "guard padding_efficiency:" in res.stdout


def test_regression_guard_verdicts():
    from sparse_rnn_jax.studies.benchmark import regression_guard

    g = regression_guard({"padding_efficiency": 0.84, "bfloat16_speedup": 1.31, "speedup_vs_reference_style": None})
    assert g["padding_efficiency"] == {"value": 0.84, "bar": 0.85, "ok": False}
    assert g["bfloat16_speedup"]["ok"] is True and g["speedup_vs_reference_style"]["ok"] is None
    assert "flop_utilization_float32" not in g


def test_weight_pass_times_the_memory_bound_update():
    from sparse_rnn_jax.studies.benchmark import weight_pass_seconds

    small, large = weight_pass_seconds(1_000, repeats=3), weight_pass_seconds(4_000_000, repeats=3)
    assert 0 < small < large  # 4,000x the bytes cannot be cheaper


def test_bench_needs_json_path():
    res = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--tiny"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2 and "--json" in res.stderr
