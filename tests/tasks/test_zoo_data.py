"""The task zoo's data generators (adding, copy, Mackey-Glass, NARMA-10, sequential MNIST, npz files): shapes,
determinism, definitions, chance losses and every malformed npz file as a one-line ValueError."""

from __future__ import annotations

import gzip
import math
import os
import zipfile

import numpy as np
import pytest

from sparse_rnn_jax.tasks import adding, copy_task, mackey_glass, narma, seq_mnist
from sparse_rnn_jax.tasks import npz as npz_task
from tests.conftest import SHARED

MNIST_DIR = str(SHARED / "data" / "mnist")
SPLITS = ("train", "val", "test")
DESCRIPTOR_KEYS = {"name", "input_dim", "output_dim", "seq_len", "loss", "chance_loss", "train_size"}

# (module, make function, small config, expected array keys)
GENERATORS = {
    "adding": (adding, adding.make_adding, adding.AddingConfig(seq_len=12, train_size=64, val_size=16, test_size=8)),
    "copy": (
        copy_task,
        copy_task.make_copy,
        copy_task.CopyConfig(num_symbols=5, length=3, delay=4, train_size=64, val_size=16, test_size=8),
    ),
    "mackey_glass": (
        mackey_glass,
        mackey_glass.make_mackey_glass,
        mackey_glass.MackeyGlassConfig(seq_len=20, horizon=2, train_size=30, val_size=10, test_size=5, burn_in=100),
    ),
    "narma": (
        narma,
        narma.make_narma,
        narma.NarmaConfig(seq_len=30, washout=5, train_size=64, val_size=16, test_size=8),
    ),
}
REGRESSION_KEYS = {"x", "targets", "step_mask"}
PER_STEP_CE_KEYS = {"x", "labels", "step_mask"}


# ----------------------------------------------------------------------------------------------------------------------
# shared conventions


@pytest.mark.parametrize("task", sorted(GENERATORS))
@pytest.mark.parametrize("split", SPLITS)
def test_shapes_dtypes_keys(task: str, split: str) -> None:
    module, make, cfg = GENERATORS[task]
    arrays = make(cfg, split, 3)
    desc = module.descriptor(cfg)
    assert set(desc) == DESCRIPTOR_KEYS
    n = getattr(cfg, f"{split}_size")
    t, xdim, ydim = desc["seq_len"], desc["input_dim"], desc["output_dim"]
    assert arrays["x"].dtype == np.float32 and arrays["x"].shape == (n, t, xdim)
    assert arrays["step_mask"].dtype == np.bool_ and arrays["step_mask"].shape == (n, t)
    if desc["loss"] == "mse":
        assert set(arrays) == REGRESSION_KEYS
        assert arrays["targets"].dtype == np.float32 and arrays["targets"].shape == (n, t, ydim)
    else:
        assert desc["loss"] == "ce"
        assert set(arrays) == PER_STEP_CE_KEYS
        assert arrays["labels"].dtype == np.int32 and arrays["labels"].shape == (n, t)
        assert arrays["labels"].min() >= 0 and arrays["labels"].max() < ydim
    assert desc["train_size"] == cfg.train_size
    assert math.isfinite(desc["chance_loss"]) and desc["chance_loss"] > 0
    for v in arrays.values():
        assert v.flags.c_contiguous
    assert all(np.all(np.isfinite(v)) for v in arrays.values() if v.dtype == np.float32)


@pytest.mark.parametrize("task", sorted(GENERATORS))
def test_determinism_and_independent_splits(task: str) -> None:
    _, make, cfg = GENERATORS[task]
    a = make(cfg, "train", 11)
    b = make(cfg, "train", 11)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    other_seed = make(cfg, "train", 12)
    assert a["x"].tobytes() != other_seed["x"].tobytes()
    val = make(cfg, "val", 11)
    test = make(cfg, "test", 11)
    n = min(a["x"].shape[0], val["x"].shape[0], test["x"].shape[0])
    assert not np.array_equal(a["x"][:n], val["x"][:n])
    assert not np.array_equal(val["x"][:n], test["x"][:n])


@pytest.mark.parametrize("task", sorted(GENERATORS))
def test_bad_split_and_seed(task: str) -> None:
    _, make, cfg = GENERATORS[task]
    with pytest.raises(ValueError, match="split"):
        make(cfg, "validation", 0)
    with pytest.raises(ValueError, match="seed"):
        make(cfg, "train", -1)


@pytest.mark.parametrize(
    ("factory", "kwargs", "field"),
    [
        (adding.AddingConfig, {"seq_len": 1}, "seq_len must be >= 2, got 1"),
        (adding.AddingConfig, {"train_size": 0}, "train_size"),
        (adding.AddingConfig, {"seq_len": 5.0}, "seq_len must be an int"),
        (copy_task.CopyConfig, {"num_symbols": 1}, "num_symbols"),
        (copy_task.CopyConfig, {"length": 0}, "length"),
        (copy_task.CopyConfig, {"delay": -1}, "delay"),
        (mackey_glass.MackeyGlassConfig, {"horizon": 0}, "horizon"),
        (mackey_glass.MackeyGlassConfig, {"tau": -1.0}, "tau"),
        (mackey_glass.MackeyGlassConfig, {"tau": 17.05}, "tau \\* substeps"),
        (mackey_glass.MackeyGlassConfig, {"stride": 0}, "stride"),
        (mackey_glass.MackeyGlassConfig, {"gamma": float("nan")}, "gamma"),
        (narma.NarmaConfig, {"washout": 100}, "washout"),
        (narma.NarmaConfig, {"diverge_threshold": 0.1}, "diverge_threshold"),
        (narma.NarmaConfig, {"val_size": True}, "val_size"),
        (seq_mnist.SeqMnistConfig, {"fractions": (0.5, 0.2, 0.2)}, "fractions"),
        (seq_mnist.SeqMnistConfig, {"permutation_seed": -3}, "permutation_seed"),
        (seq_mnist.SeqMnistConfig, {"permuted": 1}, "permuted"),
        (seq_mnist.SeqMnistConfig, {"test_size": 0}, "test_size"),
    ],
)
def test_config_validation(factory, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        factory(**kwargs)


def test_configs_are_frozen() -> None:
    cfg = adding.AddingConfig()
    with pytest.raises(AttributeError):
        cfg.seq_len = 3  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------------------------------
# adding


def test_adding_target_is_sum_of_marked_values() -> None:
    cfg = adding.AddingConfig(seq_len=15, train_size=500)
    arr = adding.make_adding(cfg, "train", 0)
    x, targets, mask = arr["x"], arr["targets"], arr["step_mask"]
    t = cfg.seq_len
    markers = x[:, :, 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, : t // 2].sum(axis=1) == 1) and np.all(markers[:, t // 2 :].sum(axis=1) == 1)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))
    expected = (x[:, :, 0].astype(np.float64) * markers).sum(axis=1)
    np.testing.assert_allclose(targets[:, -1, 0], expected, rtol=0, atol=1e-6)
    assert np.all(mask[:, -1]) and not mask[:, :-1].any()
    assert np.all(targets[:, :-1] == 0)


def test_adding_chance_loss_empirical() -> None:
    cfg = adding.AddingConfig(train_size=20000)
    arr = adding.make_adding(cfg, "train", 1)
    last = arr["targets"][:, -1, 0].astype(np.float64)
    chance = adding.descriptor(cfg)["chance_loss"]
    assert chance == pytest.approx(1 / 6)
    assert np.mean((last - 1.0) ** 2) == pytest.approx(chance, abs=0.01)
    assert last.var() == pytest.approx(chance, abs=0.01)


# ----------------------------------------------------------------------------------------------------------------------
# copy


def test_copy_targets_equal_shown_symbols() -> None:
    cfg = copy_task.CopyConfig(num_symbols=6, length=4, delay=3, train_size=300)
    arr = copy_task.make_copy(cfg, "train", 5)
    x, labels, mask = arr["x"], arr["labels"], arr["step_mask"]
    k, length, delay = cfg.num_symbols, cfg.length, cfg.delay
    assert cfg.seq_len == 2 * length + delay == x.shape[1]
    assert np.all(x.sum(axis=2) == 1)  # exactly one active channel per step
    shown = x[:, :length, :k].argmax(axis=2)
    assert np.all(x[:, :length, k:] == 0)
    np.testing.assert_array_equal(labels[:, length + delay :], shown)
    assert np.all(x[:, length : length + delay, cfg.blank_channel] == 1)
    assert np.all(x[:, length + delay :, cfg.cue_channel] == 1)
    assert np.all(mask[:, length + delay :]) and not mask[:, : length + delay].any()
    assert np.all(labels[:, : length + delay] == 0)


def test_copy_chance_is_ln_k() -> None:
    cfg = copy_task.CopyConfig(num_symbols=8, train_size=4000)
    desc = copy_task.descriptor(cfg)
    assert desc["chance_loss"] == pytest.approx(math.log(8))
    assert desc["input_dim"] == 10 and desc["output_dim"] == 8
    arr = copy_task.make_copy(cfg, "train", 0)
    freq = np.bincount(arr["labels"][arr["step_mask"]], minlength=8) / arr["step_mask"].sum()
    entropy = -(freq * np.log(freq)).sum()
    assert entropy == pytest.approx(math.log(8), abs=0.01)


def test_copy_zero_delay() -> None:
    cfg = copy_task.CopyConfig(num_symbols=3, length=2, delay=0, train_size=10)
    arr = copy_task.make_copy(cfg, "train", 0)
    assert arr["x"].shape == (10, 4, 5)
    np.testing.assert_array_equal(arr["labels"][:, 2:], arr["x"][:, :2, :3].argmax(axis=2))


# ----------------------------------------------------------------------------------------------------------------------
# Mackey-Glass


def test_mackey_glass_bounded_and_chaotic() -> None:
    raw = mackey_glass.integrate(3000, 0.5, burn_in=300)
    assert np.all(np.isfinite(raw))
    assert raw.min() > 0.2 and raw.max() < 1.6  # the tau=17 attractor lives in roughly [0.4, 1.35]
    assert raw.std() > 0.15
    # sensitivity to initial conditions (largest Lyapunov exponent ~0.007 per unit): a 1e-7 perturbation of the
    # history grows to an O(0.1) difference within 3300 time units
    near = mackey_glass.integrate(3000, 0.5 + 1e-7, burn_in=300)
    assert abs(raw[0] - near[0]) < 1e-4
    assert np.max(np.abs(raw[-500:] - near[-500:])) > 0.2
    # aperiodic-looking: the autocorrelation decays well below 1 at long lags
    z = raw - raw.mean()
    lags = np.array([np.dot(z[:-lag], z[lag:]) / np.dot(z, z) for lag in range(100, 400)])
    assert lags.max() < 0.9


def test_mackey_glass_windows_and_shifted_targets() -> None:
    cfg = mackey_glass.MackeyGlassConfig(seq_len=25, horizon=3, stride=10, train_size=40, burn_in=200)
    arr = mackey_glass.make_mackey_glass(cfg, "train", 4)
    x, y = arr["x"][:, :, 0], arr["targets"][:, :, 0]
    h = cfg.horizon
    np.testing.assert_array_equal(y[:, :-h], x[:, h:])
    series = mackey_glass.make_series(cfg, "train", 4, mackey_glass.series_length(cfg, "train")).astype(np.float32)
    for i in (0, 7, 39):
        np.testing.assert_array_equal(x[i], series[i * 10 : i * 10 + 25])
        np.testing.assert_array_equal(y[i], series[i * 10 + h : i * 10 + 25 + h])
    assert arr["step_mask"].all()
    assert x.std() > 0.3


def test_mackey_glass_default_stride_and_chance() -> None:
    cfg = mackey_glass.MackeyGlassConfig(seq_len=10, horizon=1, train_size=300, val_size=300, burn_in=100)
    tr = mackey_glass.make_mackey_glass(cfg, "train", 0)
    va = mackey_glass.make_mackey_glass(cfg, "val", 0)
    np.testing.assert_array_equal(tr["x"][1:, 0, 0], tr["targets"][:-1, -1, 0])  # contiguous windows
    # splits come from different trajectories: no shared values at all
    assert np.intersect1d(tr["x"].ravel(), va["x"].ravel()).size == 0
    desc = mackey_glass.descriptor(cfg, tr)
    assert desc["chance_loss"] == pytest.approx(float(tr["targets"].astype(np.float64).var()), rel=1e-9)
    assert 0.5 < desc["chance_loss"] < 1.5  # reference normalisation keeps it near 1
    assert mackey_glass.descriptor(cfg)["chance_loss"] == pytest.approx(desc["chance_loss"], rel=1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# NARMA-10


def _narma_reference(u: np.ndarray) -> np.ndarray:
    y = [0.0] * 11  # y[-9..0] padding, list index k -> time k - 10
    for t in range(len(u)):
        yt = y[-1]
        s = sum(y[-10:])
        ulag = u[t - 9] if t >= 9 else 0.0
        y.append(0.3 * yt + 0.05 * yt * s + 1.5 * ulag * u[t] + 0.1)
    return np.array(y[11:])


def test_narma_recurrence() -> None:
    cfg = narma.NarmaConfig(seq_len=40, washout=7, train_size=20)
    arr = narma.make_narma(cfg, "train", 2)
    u, y = arr["x"][:, :, 0], arr["targets"][:, :, 0]
    assert np.all((u >= 0) & (u < 0.5))
    for i in range(5):
        ref = _narma_reference(arr["x"][i, :, 0].astype(np.float64))
        np.testing.assert_allclose(y[i], ref, rtol=1e-5, atol=1e-6)
    # first outputs: y[1] = 0.1, y[2] = 0.3 * 0.1 + 0.05 * 0.1 * 0.1 + 0.1
    np.testing.assert_allclose(y[:, 0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(y[:, 1], 0.1305, rtol=1e-6)
    assert not arr["step_mask"][:, :7].any() and arr["step_mask"][:, 7:].all()


def test_narma_redraws_diverging_series() -> None:
    cfg = narma.NarmaConfig(seq_len=60, diverge_threshold=0.7, train_size=400)
    ref = narma.narma10(np.random.default_rng(0).uniform(0, 0.5, (400, 60)))
    assert (np.abs(ref) > 0.7).any(axis=1).sum() > 5  # the threshold does bite at this setting
    arr = narma.make_narma(cfg, "train", 0)
    y = arr["targets"][:, :, 0]
    assert np.all(np.abs(y) <= 0.7 + 1e-6)
    # redrawn rows still satisfy the recurrence with their (redrawn) inputs
    np.testing.assert_allclose(y, narma.narma10(arr["x"][:, :, 0].astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_narma_chance_is_masked_target_variance() -> None:
    cfg = narma.NarmaConfig(seq_len=50, washout=10, train_size=200)
    arr = narma.make_narma(cfg, "train", 0)
    valid = arr["targets"][:, 10:, 0].astype(np.float64)
    assert narma.descriptor(cfg, arr)["chance_loss"] == pytest.approx(valid.var(), rel=1e-9)


# ----------------------------------------------------------------------------------------------------------------------
# sequential MNIST


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    img_path = os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")
    lab_path = os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz")
    if not (os.path.exists(img_path) and os.path.exists(lab_path)):
        pytest.skip("MNIST IDX files not available")
    images, labels = _read_idx(img_path), _read_idx(lab_path)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    return images, labels.astype(np.int64)


def test_split_digits_disjoint_stratified(mnist) -> None:
    _, labels = mnist
    pools = seq_mnist.split_digits(labels, (0.8, 0.1, 0.1), seed=0)
    assert set(pools) == set(SPLITS)
    allidx = np.concatenate([pools[s] for s in SPLITS])
    assert allidx.size == labels.size and np.unique(allidx).size == labels.size
    assert abs(pools["train"].size - 8000) <= 10 and abs(pools["val"].size - 1000) <= 10
    for cls in range(10):
        share = np.mean(labels[pools["val"]] == cls)
        assert share == pytest.approx(np.mean(labels == cls), abs=0.01)
    again = seq_mnist.split_digits(labels, (0.8, 0.1, 0.1), seed=0)
    other = seq_mnist.split_digits(labels, (0.8, 0.1, 0.1), seed=1)
    assert all(np.array_equal(pools[s], again[s]) for s in SPLITS)
    assert not np.array_equal(pools["val"], other["val"])


def _pool_lookup(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> dict[bytes, set[int]]:
    out: dict[bytes, set[int]] = {}
    for i in idx:
        out.setdefault(images[i].tobytes(), set()).add(int(labels[i]))
    return out


def test_seq_mnist_rows_are_image_rows(mnist) -> None:
    images, labels = mnist
    cfg = seq_mnist.SeqMnistConfig(train_size=300, val_size=200, test_size=100)
    pools = seq_mnist.split_digits(labels, cfg.fractions, cfg.split_seed)
    for split in SPLITS:
        arr = seq_mnist.make_seq_mnist(cfg, images, labels, split, 0)
        n = getattr(cfg, f"{split}_size")
        assert set(arr) == {"x", "labels"}
        assert arr["x"].dtype == np.float32 and arr["x"].shape == (n, 28, 28)
        assert arr["labels"].dtype == np.int32 and arr["labels"].shape == (n,)
        back = np.rint((arr["x"].astype(np.float64) * 0.3081 + 0.1307) * 255.0)
        assert np.abs((arr["x"].astype(np.float64) * 0.3081 + 0.1307) * 255.0 - back).max() < 1e-3
        lookup = _pool_lookup(images, labels, pools[split])
        for i in range(n):
            key = back[i].astype(np.uint8).tobytes()
            assert key in lookup and int(arr["labels"][i]) in lookup[key]
    # row layout: step t is image row t
    seqs = seq_mnist.to_sequences(images[:5])
    np.testing.assert_allclose(seqs[:, 7, :], (images[:5, 7, :] / 255.0 - 0.1307) / 0.3081, rtol=1e-5, atol=1e-5)
    desc = seq_mnist.descriptor(cfg)
    assert (desc["input_dim"], desc["seq_len"], desc["output_dim"], desc["loss"]) == (28, 28, 10, "ce")
    assert desc["chance_loss"] == pytest.approx(math.log(10))


def test_seq_mnist_permuted_is_fixed_permutation(mnist) -> None:
    images, labels = mnist
    plain_cfg = seq_mnist.SeqMnistConfig(train_size=100, val_size=50, test_size=50)
    perm_cfg = seq_mnist.SeqMnistConfig(permuted=True, train_size=100, val_size=50, test_size=50)
    perm = seq_mnist.pixel_permutation(perm_cfg)
    assert np.array_equal(np.sort(perm), np.arange(784)) and not np.array_equal(perm, np.arange(784))
    for split in SPLITS:
        plain = seq_mnist.make_seq_mnist(plain_cfg, images, labels, split, 9)
        permd = seq_mnist.make_seq_mnist(perm_cfg, images, labels, split, 9)
        np.testing.assert_array_equal(permd["labels"], plain["labels"])
        np.testing.assert_array_equal(permd["x"].reshape(-1, 784), plain["x"].reshape(-1, 784)[:, perm])
    assert np.array_equal(seq_mnist.pixel_permutation(perm_cfg), perm)
    other = seq_mnist.SeqMnistConfig(permuted=True, permutation_seed=1)
    assert not np.array_equal(seq_mnist.pixel_permutation(other), perm)
    assert seq_mnist.descriptor(perm_cfg)["name"] != seq_mnist.descriptor(plain_cfg)["name"]


def test_seq_mnist_determinism_and_reuse(mnist) -> None:
    images, labels = mnist
    cfg = seq_mnist.SeqMnistConfig(train_size=200, val_size=2500, test_size=50)  # val pool has ~1000 images
    a = seq_mnist.make_seq_mnist(cfg, images, labels, "val", 3)
    b = seq_mnist.make_seq_mnist(cfg, images, labels, "val", 3)
    assert a["x"].tobytes() == b["x"].tobytes() and a["labels"].tobytes() == b["labels"].tobytes()
    c = seq_mnist.make_seq_mnist(cfg, images, labels, "val", 4)
    assert a["x"].tobytes() != c["x"].tobytes()
    pool = seq_mnist.split_digits(labels, cfg.fractions, cfg.split_seed)["val"]
    assert seq_mnist.reuse_factor(pool.size, 2500) == pytest.approx(2500 / pool.size)
    assert seq_mnist.reuse_factor(pool.size, 500) == 1.0
    assert a["x"].shape[0] == 2500
    # balanced reuse: every pool entry appears floor or ceil(n / P) times
    rng = np.random.default_rng(0)
    counts = np.bincount(seq_mnist._draw(rng, np.arange(7), 30), minlength=7)
    assert counts.sum() == 30 and counts.min() == 4 and counts.max() == 5
    assert np.unique(seq_mnist._draw(rng, np.arange(100), 60)).size == 60


def test_seq_mnist_bad_inputs(mnist) -> None:
    images, labels = mnist
    cfg = seq_mnist.SeqMnistConfig(train_size=10)
    with pytest.raises(ValueError, match="images must be uint8"):
        seq_mnist.make_seq_mnist(cfg, images.astype(np.float32), labels, "train", 0)
    with pytest.raises(ValueError, match="labels has 9"):
        seq_mnist.make_seq_mnist(cfg, images[:10], labels[:9], "train", 0)
    with pytest.raises(ValueError, match="labels must be in"):
        seq_mnist.make_seq_mnist(cfg, images[:10], labels[:10] + 10, "train", 0)


# ----------------------------------------------------------------------------------------------------------------------
# npz


def _save(tmp_path, name: str = "task.npz", **arrays) -> str:
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path


def _x(n: int = 6, t: int = 4, xdim: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, t, xdim)).astype(np.float32)


def _bad_not_zip(tmp_path) -> tuple[str, dict]:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip archive at all" * 10)
    return str(path), {}


def _bad_npy(tmp_path) -> tuple[str, dict]:
    path = str(tmp_path / "plain.npy")
    np.save(path, _x())
    return path, {}


def _bad_corrupt_member(tmp_path) -> tuple[str, dict]:
    path = _save(tmp_path, x=_x(), labels=np.zeros(6, dtype=np.int64))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("x.npy")
    raw = bytearray(open(path, "rb").read())
    start = info.header_offset + 30 + len(info.filename) + 200  # inside the stored x.npy payload
    raw[start : start + 8] = b"\xff" * 8
    open(path, "wb").write(bytes(raw))
    return path, {}


def _bad_object(tmp_path) -> tuple[str, dict]:
    labels = np.empty(6, dtype=object)
    labels[:] = [[1], [2], [3], [4], [5], [6]]
    return _save(tmp_path, x=_x(), labels=labels), {}


def _mask_with_empty_row() -> np.ndarray:
    mask = np.ones((6, 4), dtype=bool)
    mask[2] = False
    return mask


Z6 = np.zeros(6, dtype=np.int64)  # valid last-step labels for 6 sequences

BAD_NPZ_CASES = [
    ("not_zip", _bad_not_zip, "not an .npz archive"),
    ("npy_file", _bad_npy, "not an .npz archive"),
    ("corrupt_member", _bad_corrupt_member, "could not be read"),
    ("missing_x", lambda p: (_save(p, labels=Z6), {}), "missing array 'x'"),
    ("x_ndim", lambda p: (_save(p, x=np.zeros((6, 4)), labels=Z6), {}), "'x' must have ndim 3"),
    ("x_empty", lambda p: (_save(p, x=np.zeros((0, 4, 3)), labels=np.zeros(0, dtype=np.int64)), {}), "non-empty"),
    ("missing_target", lambda p: (_save(p, x=_x()), {}), "missing target"),
    (
        "both_targets",
        lambda p: (_save(p, x=_x(), labels=Z6, targets=np.zeros((6, 1))), {}),
        "both 'labels' and 'targets'",
    ),
    ("labels_n_mismatch", lambda p: (_save(p, x=_x(), labels=np.zeros(5, dtype=np.int64)), {}), "N mismatch"),
    ("targets_n_mismatch", lambda p: (_save(p, x=_x(), targets=np.zeros((7, 4, 2))), {}), "N mismatch"),
    ("labels_t_mismatch", lambda p: (_save(p, x=_x(), labels=np.zeros((6, 5), dtype=np.int64)), {}), "T mismatch"),
    ("targets_t_mismatch", lambda p: (_save(p, x=_x(), targets=np.zeros((6, 3, 2))), {}), "T mismatch"),
    (
        "mask_t_mismatch",
        lambda p: (_save(p, x=_x(), targets=np.zeros((6, 4, 2)), step_mask=np.ones((6, 3), bool)), {}),
        "T mismatch",
    ),
    (
        "labels_ndim",
        lambda p: (_save(p, x=_x(), labels=np.zeros((6, 4, 1), dtype=np.int64)), {}),
        "'labels' must have ndim",
    ),
    ("targets_ndim", lambda p: (_save(p, x=_x(), targets=np.zeros(6)), {}), "'targets' must have ndim"),
    ("nan_x", lambda p: (_save(p, x=np.where(_x() > 1.5, np.nan, _x()), labels=Z6), {}), "'x' contains .* NaN/inf"),
    (
        "inf_targets",
        lambda p: (_save(p, x=_x(), targets=np.full((6, 4, 1), np.inf)), {}),
        "'targets' contains .* NaN/inf",
    ),
    ("overflow_x", lambda p: (_save(p, x=np.full((6, 4, 3), 1e300), labels=Z6), {}), "NaN/inf"),
    ("object_array", _bad_object, "object array"),
    ("string_x", lambda p: (_save(p, x=np.full((6, 4, 3), "a"), labels=Z6), {}), "real numeric"),
    ("negative_class", lambda p: (_save(p, x=_x(), labels=np.array([0, 1, -1, 2, 0, 1])), {}), "negative class id -1"),
    (
        "class_too_large",
        lambda p: (_save(p, x=_x(), labels=np.array([0, 1, 3, 2, 0, 1])), {"num_classes": 3}),
        "class id 3, too large",
    ),
    ("class_huge", lambda p: (_save(p, x=_x(), labels=np.array([0, 1, 10**9, 2, 0, 1])), {}), "too large"),
    ("float_labels", lambda p: (_save(p, x=_x(), labels=np.zeros(6)), {}), "'labels' must be an integer array"),
    (
        "empty_mask_row",
        lambda p: (_save(p, x=_x(), labels=np.zeros((6, 4), dtype=np.int64), step_mask=_mask_with_empty_row()), {}),
        "row 2 has no True step",
    ),
    (
        "float_mask",
        lambda p: (_save(p, x=_x(), targets=np.zeros((6, 4, 1)), step_mask=np.ones((6, 4))), {}),
        "'step_mask' must be bool",
    ),
    ("unknown_loss", lambda p: (_save(p, x=_x(), labels=Z6), {"loss": "hinge"}), "unknown loss 'hinge'"),
    (
        "ce_with_float_targets",
        lambda p: (_save(p, x=_x(), targets=np.zeros((6, 4, 2))), {"loss": "ce"}),
        "loss 'ce' needs integer 'labels'",
    ),
    ("mse_with_labels", lambda p: (_save(p, x=_x(), labels=Z6), {"loss": "mse"}), "loss 'mse' needs float 'targets'"),
    (
        "bce_out_of_range",
        lambda p: (_save(p, x=_x(), targets=np.full((6, 4, 2), 1.5)), {"loss": "bce"}),
        "needs targets in \\[0, 1\\]",
    ),
]


@pytest.mark.parametrize(("case", "build", "pattern"), BAD_NPZ_CASES, ids=[c[0] for c in BAD_NPZ_CASES])
def test_bad_npz_files(tmp_path, case: str, build, pattern: str) -> None:
    path, kwargs = build(tmp_path)
    with pytest.raises(ValueError, match=pattern) as info:
        npz_task.load_npz_task(path, **kwargs)
    assert "\n" not in str(info.value)


def test_npz_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        npz_task.load_npz_task(str(tmp_path / "nope.npz"))


def test_npz_infers_ce_last_step(tmp_path) -> None:
    labels = np.array([0, 2, 2, 1, 2, 0], dtype=np.int64)
    arrays, desc = npz_task.load_npz_task(_save(tmp_path, "cls.npz", x=_x(), labels=labels))
    assert set(arrays) == {"x", "labels"}
    assert arrays["labels"].dtype == np.int32 and arrays["labels"].shape == (6,)
    assert arrays["x"].dtype == np.float32
    assert desc["loss"] == "ce" and desc["output_dim"] == 3 and desc["name"] == "npz_cls"
    assert (desc["input_dim"], desc["seq_len"], desc["train_size"]) == (3, 4, 6)
    p = np.array([2, 1, 3]) / 6
    assert desc["chance_loss"] == pytest.approx(float(-(p * np.log(p)).sum()))
    _, desc5 = npz_task.load_npz_task(_save(tmp_path, "cls.npz", x=_x(), labels=labels), num_classes=5)
    assert desc5["output_dim"] == 5


def test_npz_per_step_labels_with_padding(tmp_path) -> None:
    labels = np.full((6, 4), -100, dtype=np.int64)
    mask = np.zeros((6, 4), dtype=bool)
    mask[:, :2] = True
    labels[:, :2] = [[1, 0]] * 6
    arrays, desc = npz_task.load_npz_task(_save(tmp_path, x=_x(), labels=labels, step_mask=mask))
    assert set(arrays) == {"x", "labels", "step_mask"}
    assert np.array_equal(arrays["step_mask"], mask)
    assert arrays["labels"].min() == 0 and np.array_equal(arrays["labels"][:, :2], labels[:, :2])
    assert desc["loss"] == "ce" and desc["output_dim"] == 2 and desc["chance_loss"] == pytest.approx(math.log(2))


def test_npz_last_step_labels_with_mask_use_last_valid_step(tmp_path) -> None:
    mask = np.ones((6, 4), dtype=bool)
    mask[0, 2:] = False
    path = _save(tmp_path, x=_x(), labels=np.arange(6) % 3 + 1, step_mask=mask.astype(np.uint8))
    arrays, _ = npz_task.load_npz_task(path)
    assert arrays["labels"].shape == (6, 4)
    assert arrays["step_mask"][0].tolist() == [False, True, False, False]
    assert arrays["step_mask"][1:, 3].all() and arrays["step_mask"].sum() == 6
    assert arrays["labels"][0, 1] == 1 and arrays["labels"][3, 3] == 1


def test_npz_infers_bce_and_chance(tmp_path) -> None:
    rng = np.random.default_rng(1)
    targets = (rng.random((6, 4, 3)) < np.array([0.2, 0.5, 0.9])).astype(np.float64)
    arrays, desc = npz_task.load_npz_task(_save(tmp_path, x=_x(), targets=targets))
    assert desc["loss"] == "bce" and desc["output_dim"] == 3
    assert arrays["targets"].dtype == np.float32 and arrays["step_mask"].all()
    p = targets.reshape(-1, 3).mean(axis=0)
    h = -(p * np.log(np.where(p > 0, p, 1)) + (1 - p) * np.log(np.where(p < 1, 1 - p, 1)))
    assert desc["chance_loss"] == pytest.approx(float(h.mean()))
    # integer multi-hot also infers bce; an explicit mse overrides inference
    _, desc_u8 = npz_task.load_npz_task(_save(tmp_path, x=_x(), targets=targets.astype(np.uint8)))
    assert desc_u8["loss"] == "bce"
    _, desc_mse = npz_task.load_npz_task(_save(tmp_path, x=_x(), targets=targets), loss="mse")
    assert desc_mse["loss"] == "mse"
    assert desc_mse["chance_loss"] == pytest.approx(float(targets.reshape(-1, 3).var(axis=0).mean()))


def test_npz_infers_mse_and_last_step_targets(tmp_path) -> None:
    targets = np.random.default_rng(2).normal(size=(6, 2))
    arrays, desc = npz_task.load_npz_task(_save(tmp_path, x=_x(), targets=targets))
    assert desc["loss"] == "mse" and desc["output_dim"] == 2
    assert arrays["targets"].shape == (6, 4, 2)
    assert arrays["step_mask"][:, -1].all() and not arrays["step_mask"][:, :-1].any()
    np.testing.assert_allclose(arrays["targets"][:, -1], targets, rtol=1e-6)
    assert np.all(arrays["targets"][:, :-1] == 0)
    assert desc["chance_loss"] == pytest.approx(float(targets.var(axis=0).mean()), rel=1e-5)
    assert npz_task.infer_loss({"targets": np.array([0.0, 1.0, 0.5])}) == "mse"
    assert npz_task.infer_loss({"targets": np.array([0.0, 1.0])}) == "bce"
    assert npz_task.infer_loss({"labels": np.array([3])}) == "ce"


def test_split_npz_disjoint_deterministic(tmp_path) -> None:
    n = 50
    x = np.arange(n * 2 * 1, dtype=np.float32).reshape(n, 2, 1)
    arrays, _ = npz_task.load_npz_task(_save(tmp_path, x=x, labels=np.arange(n) % 4))
    splits = npz_task.split_npz(arrays, (0.8, 0.1, 0.1), seed=0)
    assert [splits[s]["x"].shape[0] for s in SPLITS] == [40, 5, 5]
    rows = [set(splits[s]["x"][:, 0, 0].astype(int) // 2) for s in SPLITS]
    assert rows[0] | rows[1] | rows[2] == set(range(n))
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    for s in SPLITS:  # rows stay aligned across keys
        assert np.array_equal(splits[s]["labels"], (splits[s]["x"][:, 0, 0].astype(int) // 2) % 4)
        assert set(splits[s]) == set(arrays)
    again = npz_task.split_npz(arrays, (0.8, 0.1, 0.1), seed=0)
    assert all(again[s]["x"].tobytes() == splits[s]["x"].tobytes() for s in SPLITS)
    other = npz_task.split_npz(arrays, (0.8, 0.1, 0.1), seed=1)
    assert other["val"]["x"].tobytes() != splits["val"]["x"].tobytes()
    desc = npz_task.describe_arrays(splits["train"], "ce")
    assert desc["train_size"] == 40
    with pytest.raises(ValueError, match="fractions"):
        npz_task.split_npz(arrays, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="would be empty"):
        npz_task.split_npz({k: v[:3] for k, v in arrays.items()}, (0.8, 0.1, 0.1))
