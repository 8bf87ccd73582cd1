"""The embedded Reber grammar: generator, recogniser, legal next-symbol sets, arrays, and the two tasks."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.tasks.reber import grammar as reber
from sparse_rnn_jax.tasks.reber.task import reber_classification_task, reber_next_symbol_task


def test_generator_is_deterministic_and_seeds_differ():
    a = reber.generate_strings(300, 7, max_len=25)
    assert a == reber.generate_strings(300, 7, max_len=25)
    assert a != reber.generate_strings(300, 8, max_len=25)
    assert all(reber.MIN_EMBEDDED_LENGTH <= len(s) <= 25 for s in a)
    cfg = reber.ReberConfig(train_size=50, val_size=20, test_size=20, max_len=20)
    s1, s2 = reber.load_reber(cfg), reber.load_reber(cfg)
    for split in reber.SPLITS:
        assert s1[split].strings == s2[split].strings
        for k, v in s1[split].arrays.items():
            np.testing.assert_array_equal(v, s2[split].arrays[k])
    assert s1["train"].strings[:20] != s1["val"].strings  # distinct seeds per split


def test_generated_strings_are_grammatical_and_embedded():
    strings = reber.generate_strings(2000, 0, max_len=40)
    assert all(reber.is_grammatical(s) for s in strings)
    assert all(s[0] == "B" and s[-1] == "E" and s[1] == s[-2] and s[1] in "TP" for s in strings)
    assert {s[1] for s in strings} == {"T", "P"}
    # The branch probabilities are 1/2: about half the strings embed with T.
    assert 0.45 < np.mean([s[1] == "T" for s in strings]) < 0.55


@pytest.mark.parametrize(
    "string, ok",
    [
        ("BTBTXSETE", True),
        ("BPBPVVEPE", True),
        ("BTBPTTVPXVVETE", True),
        ("BTBTSSXXTVVETE", True),
        ("BTBTXSEPE", False),  # embedding mismatch
        ("BTBTXSET", False),  # incomplete
        ("BTBTXSETEE", False),  # trailing symbol
        ("BTBTSXETE", False),  # S X then E: state 4 needs X or S first
        ("", False),
        ("TBTXSETE", False),
        ("BTTXSETE", False),
    ],
)
def test_recogniser(string, ok):
    assert reber.is_grammatical(string) is ok


def test_legal_next_sets_hand_checked():
    # B T B P V V E T E: embedding T, inner Reber BPVVE (states 1 -P-> 3 -V-> 5 -V-> 6).
    assert reber.legal_next_sets("BTBPVVETE") == ["TP", "B", "TP", "TV", "PV", "E", "T", "E", ""]
    # Sets are written in SYMBOLS order (B T P S X V E): state 4's {X, S} is "SX".
    assert reber.legal_next_sets("BPBTSXXVPSEPE") == [
        "TP",
        "B",
        "TP",
        "SX",
        "SX",
        "SX",
        "TV",
        "PV",
        "SX",
        "E",
        "P",
        "E",
        "",
    ]
    assert reber.legal_next("") == "B"
    with pytest.raises(ValueError):
        reber.legal_next("BX")


@pytest.mark.parametrize("corruption", reber.CORRUPTIONS)
def test_classification_strings_balanced_and_corrupted_are_ungrammatical(corruption):
    strings, labels = reber.classification_strings(501, 3, max_len=30, corruption=corruption)
    assert labels.dtype == np.int32 and int((labels == 0).sum()) == 250
    assert all(reber.is_grammatical(s) == bool(y) for s, y in zip(strings, labels))
    clean = reber.generate_strings(501, 3, max_len=30)
    for s, c, y in zip(strings, clean, labels):
        assert len(s) == len(c)  # a corruption keeps the length
        if not y:
            diff = [i for i in range(len(s)) if s[i] != c[i]]
            assert len(diff) == 1 and (corruption == "substitute" or diff[0] == len(s) - 2)


def test_next_symbol_arrays():
    strings = ["BTBTXSETE", "BPBPVVEPE", "BTBPVVETE"]
    d = reber.next_symbol_arrays(strings, 12)
    assert d["x"].shape == (3, 12, 7) and d["targets"].shape == (3, 12, 7) and d["step_mask"].shape == (3, 12)
    assert d["x"].dtype == np.float32 and d["step_mask"].dtype == bool
    np.testing.assert_array_equal(d["lengths"], [8, 8, 8])
    assert reber.decode(d["x"][2]) == "BTBPVVET"  # the input drops the final E
    legal = ["".join(reber.SYMBOLS[k] for k in np.flatnonzero(row)) for row in d["targets"][2, :8]]
    assert legal == reber.legal_next_sets("BTBPVVETE")[:8]
    assert not d["targets"][:, 8:].any() and not d["x"][:, 8:].any() and not d["step_mask"][:, 8:].any()


def test_classification_arrays_and_config_errors():
    cfg = reber.ReberConfig(variant="classification", train_size=40, val_size=10, test_size=10, max_len=20)
    split = reber.make_split(cfg, "train")
    a = split.arrays
    assert set(a) == {"x", "label", "lengths"} and a["x"].shape == (40, 20, 7) and cfg.dims == (7, 2)
    for i, s in enumerate(split.strings):
        assert reber.decode(a["x"][i]) == s and a["lengths"][i] == len(s)
    assert reber.ReberConfig().dims == (7, 7)
    for bad in (dict(variant="x"), dict(max_len=8), dict(train_size=0), dict(corruption="x"), dict(seed=-1)):
        with pytest.raises(ValueError):
            reber.ReberConfig(**bad)


# ------------------------------------------------------------------------------------------------- tasks


def _next_batch(strings, max_len=14):
    d = reber.next_symbol_arrays(strings, max_len)
    task = reber_next_symbol_task()
    return d, task.make_batch({k: jnp.asarray(v) for k, v in d.items()}, jnp.arange(len(strings)))


def test_next_symbol_task_perfect_and_wrong_predictors():
    strings = reber.generate_strings(8, 1, max_len=14)
    d, batch = _next_batch(strings)
    task = reber_next_symbol_task()
    assert (task.input_dim, task.output_dim, task.has_accuracy) == (7, 7, True)
    perfect = jnp.where(jnp.asarray(d["targets"]) > 0, 12.0, -12.0)
    loss_sum, count, correct = task.score(perfect, batch)
    np.testing.assert_allclose(np.asarray(count), d["lengths"] * 7)
    assert np.all(np.asarray(correct) == 1.0)
    assert float(jnp.sum(loss_sum) / jnp.sum(count)) < 1e-4
    # Padded steps are ignored: garbage there changes nothing.
    garbage = perfect + jnp.where(jnp.asarray(d["step_mask"])[..., None], 0.0, 50.0)
    np.testing.assert_allclose(np.asarray(task.score(garbage, batch)[0]), np.asarray(loss_sum), atol=1e-6)
    assert np.all(np.asarray(task.score(garbage, batch)[2]) == 1.0)
    # All-zero logits: sigmoid 1/2 everywhere, BCE ln 2 per output; nothing predicted, so no string is correct.
    zeros = jnp.zeros_like(perfect)
    loss_sum, count, correct = task.score(zeros, batch)
    np.testing.assert_allclose(float(jnp.sum(loss_sum) / jnp.sum(count)), np.log(2), rtol=1e-5)
    assert np.all(np.asarray(correct) == 0.0)
    # One wrong step (the remembered embedding symbol after the inner E) makes that string wrong.
    wrong = np.asarray(perfect).copy()
    t = len(strings[0]) - 3  # input step of the inner E; its target is the embedding symbol
    wrong[0, t] = np.where(d["targets"][0, t] > 0, -12.0, 12.0)
    correct = np.asarray(task.score(jnp.asarray(wrong), batch)[2])
    assert correct[0] == 0.0 and np.all(correct[1:] == 1.0)


def test_classification_task_reads_last_valid_step():
    strings, labels = reber.classification_strings(6, 2, max_len=16)
    d = reber.classification_arrays(strings, labels, 16)
    task = reber_classification_task()
    assert (task.output_dim, task.has_accuracy) == (2, True) and task.chance_loss == pytest.approx(np.log(2))
    batch = task.make_batch({k: jnp.asarray(v) for k, v in d.items()}, jnp.arange(6))
    y = np.zeros((6, 16, 2), np.float32)
    y[:, :, 0] = 9.0  # wrong everywhere except at the last valid step, where the label wins
    for i, n in enumerate(d["lengths"]):
        y[i, n - 1] = 0.0
        y[i, n - 1, labels[i]] = 9.0
    loss, count, correct = (np.asarray(a) for a in task.score(jnp.asarray(y), batch))
    assert np.all(correct == 1.0) and np.all(count == 1.0) and loss.max() < 1e-3
    loss, _, correct = (np.asarray(a) for a in task.score(jnp.zeros_like(jnp.asarray(y)), batch))
    np.testing.assert_allclose(loss, np.log(2), rtol=1e-6)


def test_generation_speed():
    import time

    t0 = time.perf_counter()
    reber.load_reber(reber.ReberConfig(train_size=5000, val_size=500, test_size=500))
    assert time.perf_counter() - t0 < 10.0
