"""The progress bar's rate and ETA: chunks weighted by their work, compilation measured and added per shape."""

import math

import pytest

from sparse_rnn_jax.engine.progress import SweepEta, format_seconds


def test_eta_weights_chunks_by_work_and_adds_the_compiles_left():
    eta = SweepEta([(1.0, 100, "a"), (2.0, 100, "b")])
    eta.start_chunk()
    eta.record(1.0, 10, 5.0, "a")  # the first call of shape a: compiled it
    assert math.isnan(eta.eta_seconds) and eta.postfix() == "? steps/s, ETA ?"
    eta.record(1.0, 10, 1.0, "a")  # 10 work/s; so a's first call spent 5 - 10 / 10 = 4 s compiling
    assert eta.work_rate == pytest.approx(10.0) and eta.steps_per_s == pytest.approx(10.0)
    assert eta.eta_seconds == pytest.approx((100 - 20 + 200) / 10 + 4.0)  # b's work is twice a's, b compiles once
    eta.start_chunk()
    eta.record(2.0, 10, 6.0, "b")
    assert eta.eta_seconds == pytest.approx((80 + 180) / 10)  # nothing left to compile
    assert eta.postfix() == f"? steps/s, ETA {format_seconds(26.0)}"


def test_format_seconds():
    assert [format_seconds(s) for s in (82, 3723, math.nan)] == ["1:22", "1:02:03", "?"]
