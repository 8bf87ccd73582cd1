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


def test_bench_needs_json_path():
    res = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--tiny"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2 and "--json" in res.stderr
