"""Tests for sparse_rnn_jax.tasks.rad.generate on the embedded MNIST digits (offline default)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from sparse_rnn_jax.tasks.rad import generate as rad
from sparse_rnn_jax.tasks.rad.mnist import MnistDigits, load_mnist
from tests.conftest import REPO  # noqa: E402

SMALL = rad.RadConfig(train_size=300, val_size=100, test_size=100)


@pytest.fixture(scope="module")
def digits() -> MnistDigits:
    return load_mnist("embedded")


@pytest.fixture(scope="module")
def train(digits) -> rad.RadSplit:
    return rad.make_rad_split(digits, SMALL, "train")


def test_recipes_and_dims():
    assert rad.RECIPES == (
        "baseline",
        "perspective_0.5",
        "perspective_0.9",
        "erasing",
        "gaussian_noise",
        "erasing_perspective_0.5",
        "gaussian_blur",
        "sharpness_4",
    )
    assert rad.rad_dims(rad.RadConfig()) == (2500, 10, 11)
    assert rad.rad_dims(rad.RadConfig(images_per_sequence=5, image_size=20)) == (400, 5, 6)


@pytest.mark.parametrize(
    "field, value",
    [
        ("images_per_sequence", 2),
        ("image_size", 0),
        ("train_size", 0),
        ("val_size", -1),
        ("test_size", 1.5),
        ("seed", -1),
        ("split_fractions", (0.8, 0.2, 0.1)),
        ("split_fractions", (0.5, 0.5)),
        ("split_fractions", (0.8, 0.0, 0.1)),
        ("train_size", True),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        rad.RadConfig(**{field: value})


def test_shapes_and_dtypes(train):
    n, d = SMALL.images_per_sequence, SMALL.image_size**2
    expected = {
        "images": ((300, n, d), np.uint8),
        "labels": ((300,), np.int32),
        "recipes": ((300, 2), np.int8),
        "digits": ((300,), np.int8),
        "source_index": ((300, n), np.int32),
    }
    for name, (shape, dtype) in expected.items():
        a = getattr(train, name)
        assert a.shape == shape and a.dtype == dtype, name


def test_same_config_same_bytes(digits, train):
    again = rad.make_rad_split(digits, SMALL, "train", threads=1)
    for a, b in zip(train, again):
        assert a.tobytes() == b.tobytes()
    other_seed = rad.make_rad_split(digits, dataclasses.replace(SMALL, seed=1), "train")
    assert not np.array_equal(other_seed.source_index, train.source_index)


def test_sequence_structure(digits, train):
    n = SMALL.images_per_sequence
    assert ((train.labels >= 0) & (train.labels < n)).all()
    assert (train.recipes[:, 0] != train.recipes[:, 1]).all()
    assert ((train.recipes >= 0) & (train.recipes < len(rad.RECIPES))).all()
    np.testing.assert_array_equal(digits.labels[train.source_index], train.digits[:, None].repeat(n, 1))
    assert all(len(set(row)) == n for row in train.source_index.tolist())  # distinct images
    assert np.bincount(train.labels, minlength=n).min() > 0  # every position gets the anomaly
    assert np.bincount(train.recipes[:, 0], minlength=8).min() > 0


def test_anomaly_sits_at_the_label(digits, train):
    """Baseline images equal the clean rendering exactly; so with recipe A = baseline only the
    label's image may differ, and with recipe B = baseline the label's image is the clean one."""
    clean = rad.render_clean(digits.images[train.source_index], SMALL.image_size)
    differs = (train.images != clean).any(axis=-1)  # [N, n]
    rows = np.arange(len(train.labels))
    a_base, b_base = train.recipes[:, 0] == 0, train.recipes[:, 1] == 0
    assert a_base.sum() > 10 and b_base.sum() > 10
    others = differs.copy()
    others[rows, train.labels] = False
    assert not others[a_base].any()
    assert differs[a_base, train.labels[a_base]].mean() > 0.8  # B transformed the anomaly
    assert not differs[b_base, train.labels[b_base]].any()
    assert differs[b_base].sum(axis=1).mean() > 0.8 * (SMALL.images_per_sequence - 1)


def test_clamped_to_the_clean_images_range(digits, train):
    clean = rad.render_clean(digits.images[train.source_index], SMALL.image_size)
    assert (train.images >= clean.min(axis=-1, keepdims=True)).all()
    assert (train.images <= clean.max(axis=-1, keepdims=True)).all()


@pytest.mark.parametrize("recipe", range(len(rad.RECIPES)))
def test_each_recipe_changes_images_and_baseline_only_resizes(digits, recipe):
    images = digits.images[:300]
    clean = rad.render_clean(images, 50)
    out = rad.render(images, np.full(300, recipe), np.random.default_rng(recipe), 50)
    changed = (out != clean).any(axis=1).mean()
    if recipe == 0:
        np.testing.assert_array_equal(out, clean)
    else:  # erasing can miss every stroke; a blur with sigma near 0.1 is the identity
        assert changed > 0.85, rad.RECIPES[recipe]


def test_render_clean_is_a_bilinear_resize(digits):
    img = digits.images[:3]
    big = rad.render_clean(img, 56).reshape(3, 56, 56)
    assert big.dtype == np.uint8
    # An exact 2x upscale with half-pixel centres: interior output pixel 2i+1 is 0.75·p[i] + 0.25·p[i+1].
    p = img.astype(np.float64)
    want = 0.75 * (0.75 * p[:, :-1, :-1] + 0.25 * p[:, 1:, :-1]) + 0.25 * (0.75 * p[:, :-1, 1:] + 0.25 * p[:, 1:, 1:])
    np.testing.assert_allclose(big[:, 1:-1:2, 1:-1:2], np.rint(want), atol=1)


def test_perspective_identity_and_corners():
    rng = np.random.default_rng(0)
    img = rng.random((4, 28, 28)).astype(np.float32)
    corners = np.array([[0, 0], [27, 0], [27, 27], [0, 27]])
    np.testing.assert_array_equal(rad.perspective(img, np.broadcast_to(corners, (4, 4, 2))), img)
    ends = rad.perspective_endpoints(rng, 5000, 0.9, 28, 28)
    assert (ends[:, 0] <= 12).all() and (ends[:, 2] >= 15).all()
    hom = rad.perspective_homography(ends, 28, 28)
    mapped = np.einsum("mij,mkj->mki", hom, np.concatenate([ends, np.ones((5000, 4, 1))], axis=-1))
    np.testing.assert_allclose(mapped[..., :2] / mapped[..., 2:], np.broadcast_to(corners, (5000, 4, 2)), atol=1e-6)
    warped = rad.perspective(np.ones((50, 28, 28), np.float32), ends[:50])
    assert np.isfinite(warped).all() and (warped.min(axis=(1, 2)) == 0).all()  # zero fill shows


def test_erasing_box_area_and_value():
    rng = np.random.default_rng(0)
    boxes = rad.erasing_boxes(rng, 2000, 28, 28)
    area = boxes[:, 2] * boxes[:, 3] / 784
    assert area.min() > 0.07 and area.max() < 0.24  # U(0.1, 0.2) of the area, sides rounded
    erased = rad.erase(np.ones((2000, 28, 28), np.float32), boxes)
    np.testing.assert_allclose((erased == 0).mean(axis=(1, 2)), area)


def test_noise_blur_sharpness_on_simple_images():
    rng = np.random.default_rng(0)
    flat = np.full((200, 28, 28), 0.5, np.float32)
    noisy = rad.apply_recipe(flat, rad.RECIPES.index("gaussian_noise"), rng)
    assert abs(float(np.std(noisy - flat)) - rad.NOISE_STD) < 1e-3
    np.testing.assert_allclose(rad.apply_recipe(flat, rad.RECIPES.index("gaussian_blur"), rng), flat, atol=1e-5)
    np.testing.assert_allclose(rad.adjust_sharpness(flat, 4.0), flat, atol=1e-6)
    dot = np.zeros((1, 28, 28), np.float32)
    dot[0, 14, 14] = 0.5
    sharp = rad.adjust_sharpness(dot, 4.0)
    assert sharp[0, 14, 14] == pytest.approx(min(1.0, 4 * 0.5 - 3 * 0.5 * 5 / 13))
    assert sharp[0, 13, 13] == 0.0  # 4·0 - 3·(0.5/13) < 0, clipped
    blurred = rad.gaussian_blur(dot, np.array([2.0]))
    assert blurred[0, 14, 14] < 0.5 and blurred.sum() == pytest.approx(0.5, rel=1e-4)


def test_draw_distinct_is_a_uniform_ordered_sample():
    rng = np.random.default_rng(0)
    sizes = np.array([10, 11, 50, 400] * 500)
    draws = rad._draw_distinct(rng, sizes, 10)
    assert all(len(set(r)) == 10 for r in draws.tolist())
    assert ((draws >= 0) & (draws < sizes[:, None])).all()
    first = draws[sizes == 11, 0]
    assert np.bincount(first, minlength=11).min() > 20  # every offset can come first


def test_splits_use_disjoint_source_digits(digits):
    splits = {s: rad.make_rad_split(digits, SMALL, s) for s in ("val", "test")}
    splits["train"] = rad.make_rad_split(digits, SMALL, "train")
    used = {s: set(v.source_index.ravel().tolist()) for s, v in splits.items()}
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]
    pools = rad.split_pools(digits.labels, SMALL)
    assert [len(p) for p in pools.values()] == [4000, 500, 500]
    for s in used:
        assert used[s] <= set(pools[s].tolist())


def test_to_model_inputs_normalises_and_appends_the_blank_step(train):
    x, y = rad.to_model_inputs(train.images[:4], train.labels[:4])
    assert x.shape == (4, 11, 2500) and x.dtype == np.float32 and y.dtype == np.int32
    want = (train.images[:4].astype(np.float32) / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(np.asarray(x[:, :10]), want, rtol=1e-6, atol=1e-6)
    assert (np.asarray(x[:, 10]) == 0).all()
    np.testing.assert_array_equal(np.asarray(y), train.labels[:4])
    xj, yj = jax.jit(rad.to_model_inputs)(jax.numpy.asarray(train.images[:4]), train.labels[:4])
    np.testing.assert_allclose(np.asarray(xj), np.asarray(x), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(yj), np.asarray(y))


def test_too_few_digits_per_class_is_reported(digits):
    few = MnistDigits(digits.images[:40], digits.labels[:40], "tiny")
    with pytest.raises(ValueError, match="no digit class with >= 10 images"):
        rad.make_rad_split(few, SMALL, "val")
    with pytest.raises(ValueError, match="split"):
        rad.make_rad_split(digits, SMALL, "validation")


# --- cache ------------------------------------------------------------------------------------------

CACHED = rad.RadConfig(train_size=60, val_size=20, test_size=20)


def test_cache_hit_gives_identical_arrays(digits, tmp_path):
    first_log: list[str] = []
    first = rad.load_rad(digits, CACHED, tmp_path, log=first_log.append)
    assert sum("generating" in m for m in first_log) == 3
    assert len(list(tmp_path.glob("rad_*.npz"))) == 3 and not list(tmp_path.glob("*.tmp"))
    second_log: list[str] = []
    second = rad.load_rad(digits, CACHED, tmp_path, log=second_log.append)
    assert sum("from cache" in m for m in second_log) == 3 and not any("generating" in m for m in second_log)
    for split in rad.SPLITS:
        for a, b in zip(first[split], second[split]):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_cache_key_covers_every_parameter(digits):
    base = rad.cache_key(digits, CACHED, "train")
    assert rad.cache_key(digits, dataclasses.replace(CACHED, seed=1), "train") != base
    assert rad.cache_key(digits, dataclasses.replace(CACHED, image_size=28), "train") != base
    assert rad.cache_key(digits, CACHED, "val") != base
    assert rad.cache_key(digits._replace(source="other"), CACHED, "train") != base
    touched = digits.images.copy()
    touched[0, 0, 0] = 1
    assert rad.cache_key(digits._replace(images=touched), CACHED, "train") != base


def test_corrupted_cache_is_detected_and_regenerated(digits, tmp_path):
    clean = rad.load_rad(digits, CACHED, tmp_path)
    key = rad.cache_key(digits, CACHED, "val")
    path = rad.cache_path(tmp_path, key, "val")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    log: list[str] = []
    again = rad.load_rad(digits, CACHED, tmp_path, log=log.append)
    assert any("rejected" in m and "val" in m for m in log)
    np.testing.assert_array_equal(again["val"].images, clean["val"].images)
    # A readable file whose arrays do not match its stored content hash is rejected too.
    tampered = dict(np.load(path, allow_pickle=False))
    tampered["labels"] = (tampered["labels"] + 1) % CACHED.images_per_sequence
    np.savez(path, **tampered)
    log.clear()
    rad.load_rad(digits, CACHED, tmp_path, log=log.append)
    assert any("content hash mismatch" in m for m in log)
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["labels"], clean["val"].labels)


def test_cache_never_overwrites_a_valid_file_of_another_key(digits, tmp_path):
    other = dataclasses.replace(CACHED, seed=7)
    rad.load_rad(digits, other, tmp_path)
    target = rad.cache_path(tmp_path, rad.cache_key(digits, CACHED, "test"), "test")
    os.replace(rad.cache_path(tmp_path, rad.cache_key(digits, other, "test"), "test"), target)
    before = target.read_bytes()
    log: list[str] = []
    result = rad.load_rad(digits, CACHED, tmp_path, log=log.append)
    assert any("not overwriting" in m for m in log)
    assert target.read_bytes() == before
    np.testing.assert_array_equal(result["test"].images, rad.make_rad_split(digits, CACHED, "test").images)


def test_no_cache_dir_writes_nothing(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = rad.load_rad(digits, CACHED, None)
    assert set(out) == {"train", "val", "test"} and not list(tmp_path.iterdir())


# --- experiments/show_rad.py ------------------------------------------------------------------------


def _show_rad(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.show_rad", *flags], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_show_rad_writes_a_png(tmp_path):
    out = tmp_path / "rad.png"
    done = _show_rad(f"--out={out}", "--mnist_source=embedded", "--num_sequences=2", "--split=val")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_rad_bad_flag_is_one_line_and_exit_2(tmp_path):
    done = _show_rad(f"--out={tmp_path / 'x.png'}", "--num_sequences=0")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "num_sequences" in done.stderr


def test_digit_reuse_warning_names_the_reuse():
    from sparse_rnn_jax.tasks.rad import RadTaskConfig
    from sparse_rnn_jax.tasks.rad.task import DIGIT_REUSE_WARNING, digit_reuse, load

    assert digit_reuse(5000, RadTaskConfig()) == pytest.approx(75.0)  # 30,000 x 10 / 4,000
    assert digit_reuse(10_000, RadTaskConfig(train_size=4000)) == pytest.approx(5.0)
    logs: list[str] = []
    data = load(
        RadTaskConfig(mnist_source="embedded", train_size=4100, val_size=8, test_size=8, image_size=8, cache_dir=""),
        logs.append,
    )
    warned = [s for s in logs if s.startswith("warning:")]
    assert data.info["digit_reuse"] > DIGIT_REUSE_WARNING and len(warned) == 1 and "about 5 times" not in warned[0]
