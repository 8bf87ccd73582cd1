"""Random Anomaly Detection (RAD) sequences built from MNIST digits.

A sequence holds ``images_per_sequence`` (n, default 10) distinct images of one digit class. All but
one get transformation recipe A (its random parts drawn per image); the one at a uniformly random
position, the anomaly, gets a different recipe B. The model sees the n images, then one blank
(all-zero) step, and must name the anomaly's position 0..n-1 at that last step.

Recipes (ids 0..7, torchvision semantics, reimplemented in numpy and vectorised over images):

0 ``baseline``: none.
1 ``perspective_0.5`` / 2 ``perspective_0.9``: RandomPerspective(distortion_scale, p=1): four
  integer corner offsets, homography per image, bilinear sampling, zero fill. The homography is
  built in closed form, and the rare corner draws with three collinear corners (no homography)
  are redrawn; elsewhere it equals torchvision's.
3 ``erasing``: RandomErasing(p=1, scale=(0.1, 0.2), ratio=(0.3, 3.3), value=0).
4 ``gaussian_noise``: additive N(0, 0.01²) noise on [0, 1] pixels.
5 ``erasing_perspective_0.5``: erasing, then perspective 0.5.
6 ``gaussian_blur``: GaussianBlur(15, sigma ~ U(0.1, 2.0)), reflect padding.
7 ``sharpness_4``: adjust_sharpness(factor=4) (3×3 smoothing kernel blend, borders kept).

Order of operations (as in a torchvision pipeline "transform, then Resize"): each 28×28 digit is
transformed at its native 28×28 resolution in [0, 1] pixel space, then resized to
``image_size``² (bilinear, half-pixel centres like torch ``align_corners=False``), then clamped to
the [min, max] of the same digit resized without transformation, then quantised to uint8
(``rint(255·p)``). Normalising with mean 0.1307 and std 0.3081 is monotone, so clamping in pixel
space equals the clamp in normalised space; :func:`to_model_inputs` normalises on device.

Sampling: source digits are partitioned once per seed into disjoint train/val/test pools
(``split_fractions``). A sequence picks its digit class uniformly among the classes with at least
n digits in its split's pool, then n distinct digits of that class, the anomaly position, recipe A
uniformly from the eight and B uniformly from the other seven.

Determinism: a split is a pure function of (digits, config, split name): each chunk of
``CHUNK_SEQUENCES`` sequences draws from its own PCG64 stream keyed by (seed, split, chunk), so the
result does not depend on the number of threads. Same inputs and library versions on the same
machine give the same bytes. :func:`load_rad` caches splits as uncompressed ``.npz`` files (about
750 MB for the default training split; fast to write and read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.engine.workdir import process_alive
from sparse_rnn_jax.tasks.rad.mnist import MnistDigits, digits_sha256

Log = Optional[Callable[[str], object]]

GENERATOR_VERSION = "rad-np-1"
RECIPES: tuple[str, ...] = (
    "baseline",
    "perspective_0.5",
    "perspective_0.9",
    "erasing",
    "gaussian_noise",
    "erasing_perspective_0.5",
    "gaussian_blur",
    "sharpness_4",
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
NOISE_STD = 0.01
BLUR_KERNEL = 15
BLUR_SIGMA = (0.1, 2.0)
ERASE_SCALE = (0.1, 0.2)
ERASE_RATIO = (0.3, 3.3)
SHARPNESS_FACTOR = 4.0
CHUNK_SEQUENCES = 250
PROGRESS_MIN_SEQUENCES = 5000


@dataclasses.dataclass(frozen=True)
class RadConfig:
    """What to generate. Sizes are numbers of sequences; fractions are of the source digits."""

    images_per_sequence: int = 10
    image_size: int = 50
    train_size: int = 30_000
    val_size: int = 1_000
    test_size: int = 1_000
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)

    def __post_init__(self) -> None:
        def need_int(name: str, low: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"RadConfig.{name} must be an int >= {low}, got {v!r}")
            object.__setattr__(self, name, int(v))

        need_int("images_per_sequence", 3)
        need_int("image_size", 2)
        need_int("train_size", 1)
        need_int("val_size", 1)
        need_int("test_size", 1)
        need_int("seed", 0)
        fr = self.split_fractions
        if (
            not isinstance(fr, (tuple, list))
            or len(fr) != 3
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in fr)
            or sum(fr) > 1.0 + 1e-9
        ):
            raise ValueError(f"RadConfig.split_fractions must be 3 positive numbers summing to <= 1, got {fr!r}")
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in fr))

    def split_size(self, split: str) -> int:
        """Number of sequences in ``split``."""
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}[_check_split(split)]


class RadSplit(NamedTuple):
    """One split of RAD sequences (N sequences, n = images_per_sequence, D = image_size²).

    images: u8[N, n, D], transformed, resized, clamped pixels (p/255 in [0, 1]).
    labels: i32[N], the anomaly's position 0..n-1.
    recipes: i8[N, 2], recipe ids (A for the normal images, B for the anomaly), A != B.
    digits: i8[N], the digit class of the sequence.
    source_index: i32[N, n], index of each image into the MnistDigits arrays.
    """

    images: np.ndarray
    labels: np.ndarray
    recipes: np.ndarray
    digits: np.ndarray
    source_index: np.ndarray


def rad_dims(config: RadConfig) -> tuple[int, int, int]:
    """(input_dim, output_dim, seq_len) = (image_size², images_per_sequence, images_per_sequence + 1)."""
    n = config.images_per_sequence
    return config.image_size * config.image_size, n, n + 1


def to_model_inputs(images_u8, labels):
    """Model inputs from a batch of stored sequences; pure and jittable.

    images_u8: u8[B, n, D]; labels: int[B].
    Returns x: f32[B, n + 1, D] = (p/255 - 0.1307) / 0.3081 with a final all-zero (blank) step,
    and y: i32[B].
    """
    x = (jnp.asarray(images_u8).astype(jnp.float32) / 255.0 - MNIST_MEAN) / MNIST_STD
    blank = jnp.zeros_like(x[:, :1])
    return jnp.concatenate([x, blank], axis=1), jnp.asarray(labels).astype(jnp.int32)


# --- transforms on f32[M, H, W] images in [0, 1] pixel space ---------------------------------------


def perspective_endpoints(rng: np.random.Generator, m: int, distortion: float, h: int, w: int) -> np.ndarray:
    """Random corner targets as torchvision RandomPerspective.get_params: i64[m, 4, 2] (x, y).

    Corners in order top-left, top-right, bottom-right, bottom-left. Draws where three corners
    are collinear (no homography exists; ~0.3 % of draws at distortion 0.9, none at 0.5) are redrawn.
    """
    dw, dh = int(distortion * (w // 2)), int(distortion * (h // 2))

    def draw(k: int) -> np.ndarray:
        lo_x = rng.integers(0, dw + 1, size=(k, 2))  # top-left x, bottom-left x
        hi_x = rng.integers(w - dw - 1, w, size=(k, 2))  # top-right x, bottom-right x
        lo_y = rng.integers(0, dh + 1, size=(k, 2))  # top-left y, top-right y
        hi_y = rng.integers(h - dh - 1, h, size=(k, 2))  # bottom-right y, bottom-left y
        xs = np.stack([lo_x[:, 0], hi_x[:, 0], hi_x[:, 1], lo_x[:, 1]], axis=1)
        ys = np.stack([lo_y[:, 0], lo_y[:, 1], hi_y[:, 0], hi_y[:, 1]], axis=1)
        return np.stack([xs, ys], axis=-1)

    points = draw(m)
    bad = np.flatnonzero(_has_collinear_triple(points))
    while bad.size:
        points[bad] = draw(bad.size)
        bad = bad[_has_collinear_triple(points[bad])]
    return points


def _has_collinear_triple(points: np.ndarray) -> np.ndarray:
    """Whether any three of four integer points are collinear: i64[m, 4, 2] -> bool[m]."""
    out = np.zeros(len(points), bool)
    for skip in range(4):
        a, b, c = (points[:, k] for k in range(4) if k != skip)
        out |= (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) == (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return out


def perspective_homography(endpoints: np.ndarray, h: int, w: int) -> np.ndarray:
    """Homographies mapping output pixel (x, y, 1) to input coordinates (up to scale): f64[m, 3, 3].

    The map sends ``endpoints`` to the image corners (0, 0), (W-1, 0), (W-1, H-1), (0, H-1), the
    map torchvision's _get_perspective_coeffs(endpoints -> startpoints) solves for. Built in closed
    form (unit square -> quad, Heckbert 1989, then inverted), so it also covers the rare quads whose
    homography has a zero (3, 3) entry, where torchvision's 8-unknown least squares is singular.
    """
    p = endpoints.astype(np.float64)
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = (p[:, k].T for k in range(4))
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    det = dx1 * dy2 - dx2 * dy1
    g, hh = (sx * dy2 - dx2 * sy) / det, (dx1 * sy - sx * dy1) / det
    square_to_quad = np.stack(
        [
            np.stack([x1 - x0 + g * x1, x3 - x0 + hh * x3, x0], axis=-1),
            np.stack([y1 - y0 + g * y1, y3 - y0 + hh * y3, y0], axis=-1),
            np.stack([g, hh, np.ones_like(g)], axis=-1),
        ],
        axis=1,
    )
    square_to_image = np.diag([w - 1.0, h - 1.0, 1.0])
    return square_to_image @ np.linalg.inv(square_to_quad)


def perspective(images: np.ndarray, endpoints: np.ndarray) -> np.ndarray:
    """Warps f32[m, H, W] so the image corners move to ``endpoints`` (bilinear, zero outside).

    As torchvision's perspective on tensors: output pixel centres (x + 0.5, y + 0.5) are mapped by
    the homography and sampled at (u - 0.5, v - 0.5) (grid_sample, align_corners=False).
    """
    m, h, w = images.shape
    if m == 0:
        return images.copy()
    hom = perspective_homography(endpoints, h, w)[:, :, :, None]  # [m, 3, 3, 1]
    gy, gx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    gx, gy = gx.ravel()[None], gy.ravel()[None]  # [1, H*W], pixel centres
    num_x, num_y, den = (hom[:, r, 0] * gx + hom[:, r, 1] * gy + hom[:, r, 2] for r in range(3))
    safe = np.abs(den) > 1e-12 * np.abs(hom[:, 2]).sum(axis=1)  # pixels mapped to infinity: empty
    den = np.where(safe, den, 1.0)
    sx = np.where(safe, num_x / den - 0.5, -1.0)
    sy = np.where(safe, num_y / den - 0.5, -1.0)
    return _bilinear_sample(images, sx, sy).reshape(m, h, w)


def _bilinear_sample(images: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Samples f32[m, H, W] at pixel-index coordinates sx, sy: [m, P] -> f32[m, P]; zero outside.

    Coordinates are clipped to [-1, W] x [-1, H] (beyond that every tap is outside anyway) and the
    images zero-padded by 1 before and 2 after, so the four taps need no bounds masks.
    """
    m, h, w = images.shape
    padded = np.pad(images, ((0, 0), (1, 2), (1, 2))).reshape(m, -1)
    pw = w + 3
    sx, sy = np.clip(sx, -1.0, w), np.clip(sy, -1.0, h)
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0).astype(np.float32), (sy - y0).astype(np.float32)
    base = (y0.astype(np.int64) + 1) * pw + (x0.astype(np.int64) + 1)

    def tap(offset: int) -> np.ndarray:
        return np.take_along_axis(padded, base + offset, axis=1)

    top = tap(0) + fx * (tap(1) - tap(0))
    bottom = tap(pw) + fx * (tap(pw + 1) - tap(pw))
    return top + fy * (bottom - top)


def erasing_boxes(rng: np.random.Generator, m: int, h: int, w: int) -> np.ndarray:
    """Random rectangles as torchvision RandomErasing.get_params: i64[m, 4] (top, left, height, width).

    Area ~ U(0.1, 0.2)·H·W, log aspect ratio ~ U(log 0.3, log 3.3). Such a box always fits
    (its sides are at most ~0.81 of the image's), so torchvision's retry loop never triggers.
    """
    area = h * w * rng.uniform(*ERASE_SCALE, size=m)
    ratio = np.exp(rng.uniform(np.log(ERASE_RATIO[0]), np.log(ERASE_RATIO[1]), size=m))
    bh = np.minimum(np.rint(np.sqrt(area * ratio)).astype(np.int64), h - 1)
    bw = np.minimum(np.rint(np.sqrt(area / ratio)).astype(np.int64), w - 1)
    top = np.floor(rng.random(m) * (h - bh + 1)).astype(np.int64)
    left = np.floor(rng.random(m) * (w - bw + 1)).astype(np.int64)
    return np.stack([top, left, bh, bw], axis=1)


def erase(images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Sets each image's box (top, left, height, width) to 0: f32[m, H, W] -> f32[m, H, W]."""
    _, h, w = images.shape
    r, c = np.arange(h)[None], np.arange(w)[None]
    top, left, bh, bw = (boxes[:, k : k + 1] for k in range(4))
    in_rows = (r >= top) & (r < top + bh)  # [m, H]
    in_cols = (c >= left) & (c < left + bw)  # [m, W]
    return np.where(in_rows[:, :, None] & in_cols[:, None, :], 0.0, images).astype(np.float32)


def gaussian_kernels(sigma: np.ndarray, size: int = BLUR_KERNEL) -> np.ndarray:
    """Normalised 1-D Gaussian kernels as torchvision's _get_gaussian_kernel1d: f32[m, size]."""
    x = np.linspace(-(size // 2), size // 2, size)
    k = np.exp(-0.5 * (x[None] / np.asarray(sigma, np.float64)[:, None]) ** 2)
    return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


def gaussian_blur(images: np.ndarray, sigma: np.ndarray, size: int = BLUR_KERNEL) -> np.ndarray:
    """Separable Gaussian blur, reflect padding, one sigma per image: f32[m, H, W]."""
    m, h, w = images.shape
    k = gaussian_kernels(sigma, size)
    p = size // 2
    padded = np.pad(images, ((0, 0), (p, p), (p, p)), mode="reflect")
    rows = np.zeros((m, h + 2 * p, w), np.float32)
    for t in range(size):
        rows += k[:, t, None, None] * padded[:, :, t : t + w]
    out = np.zeros((m, h, w), np.float32)
    for t in range(size):
        out += k[:, t, None, None] * rows[:, t : t + h, :]
    return out


def adjust_sharpness(images: np.ndarray, factor: float) -> np.ndarray:
    """torchvision adjust_sharpness on float images: f32[m, H, W] -> f32[m, H, W] in [0, 1].

    Blends the image with its 3×3 smoothed version (weights 1, centre 5, /13; border pixels kept):
    clip(factor·img + (1 - factor)·smooth, 0, 1).
    """
    smooth = images.copy()
    box = sum(
        images[:, 1 + dy : images.shape[1] - 1 + dy, 1 + dx : images.shape[2] - 1 + dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )
    smooth[:, 1:-1, 1:-1] = (box + 4.0 * images[:, 1:-1, 1:-1]) / 13.0
    return np.clip(factor * images + (1.0 - factor) * smooth, 0.0, 1.0).astype(np.float32)


def apply_recipe(images: np.ndarray, recipe: int, rng: np.random.Generator) -> np.ndarray:
    """Applies recipe ``recipe`` (id into RECIPES) to f32[m, H, W] images in [0, 1], drawing its
    random parts per image from ``rng``. Returns f32[m, H, W] (not yet clamped)."""
    m, h, w = images.shape
    name = RECIPES[recipe]
    if name == "baseline":
        return images.copy()
    if name in ("perspective_0.5", "perspective_0.9"):
        return perspective(images, perspective_endpoints(rng, m, float(name.split("_")[1]), h, w))
    if name == "erasing":
        return erase(images, erasing_boxes(rng, m, h, w))
    if name == "gaussian_noise":
        return images + rng.normal(0.0, NOISE_STD, size=images.shape).astype(np.float32)
    if name == "erasing_perspective_0.5":
        erased = erase(images, erasing_boxes(rng, m, h, w))
        return perspective(erased, perspective_endpoints(rng, m, 0.5, h, w))
    if name == "gaussian_blur":
        return gaussian_blur(images, rng.uniform(*BLUR_SIGMA, size=m))
    if name == "sharpness_4":
        return adjust_sharpness(images, SHARPNESS_FACTOR)
    raise ValueError(f"unknown recipe id {recipe}")


# --- resizing and quantising ------------------------------------------------------------------------


def _resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Bilinear interpolation weights f32[size_out, size_in] (half-pixel centres, edge clamped)."""
    src = np.maximum((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    i1 = np.minimum(i0 + 1, size_in - 1)
    frac = src - i0
    r = np.zeros((size_out, size_in), np.float64)
    np.add.at(r, (np.arange(size_out), i0), 1.0 - frac)
    np.add.at(r, (np.arange(size_out), i1), frac)
    return r.astype(np.float32)


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize (torch ``align_corners=False``, no antialias): f32[m, H, W] -> f32[m, size, size]."""
    m, h, w = images.shape
    ry, rx = _resize_matrix(h, size), _resize_matrix(w, size)
    rows = (images.reshape(m * h, w) @ rx.T).reshape(m, h, size)
    return np.matmul(ry, rows)


def _quantise(pixels: np.ndarray) -> np.ndarray:
    """rint(255·p) as uint8 for p in [0, 1] (overwrites ``pixels``)."""
    np.multiply(pixels, 255.0, out=pixels)
    np.rint(pixels, out=pixels)
    return pixels.astype(np.uint8)


def render(images_u8: np.ndarray, recipe_ids: np.ndarray, rng: np.random.Generator, image_size: int) -> np.ndarray:
    """Transforms, resizes, clamps and quantises digits: u8[M, 28, 28], i[M] -> u8[M, size²].

    Recipes are applied group by group in recipe-id order, each drawing from ``rng``.
    """
    m = len(images_u8)
    clean = images_u8.astype(np.float32) / 255.0
    transformed = clean.copy()
    for r in range(1, len(RECIPES)):
        idx = np.flatnonzero(recipe_ids == r)
        if idx.size:
            transformed[idx] = apply_recipe(clean[idx], r, rng)
    out = resize_bilinear(clean, image_size).reshape(m, -1)
    moved = np.flatnonzero(recipe_ids != 0)
    if moved.size:
        big = resize_bilinear(transformed[moved], image_size).reshape(moved.size, -1)
        lo = out[moved].min(axis=1, keepdims=True)
        hi = out[moved].max(axis=1, keepdims=True)
        out[moved] = np.clip(big, lo, hi, out=big)
    return _quantise(out)


def render_clean(images_u8: np.ndarray, image_size: int) -> np.ndarray:
    """Resized, quantised digits without transformation: u8[..., 28, 28] -> u8[..., size²].

    Equals what the ``baseline`` recipe produces; its per-image [min, max] bounds every recipe.
    """
    lead = images_u8.shape[:-2]
    flat = images_u8.reshape(-1, *images_u8.shape[-2:]).astype(np.float32) / 255.0
    big = resize_bilinear(flat, image_size).reshape(-1, image_size * image_size)
    return _quantise(big).reshape(*lead, image_size * image_size)


# --- sequences --------------------------------------------------------------------------------------


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return core_rng(seed, stream, index)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def split_pools(labels: np.ndarray, config: RadConfig) -> dict[str, np.ndarray]:
    """Disjoint source-digit index pools per split, drawn once from config.seed: {split: i64[k]}."""
    n = len(labels)
    perm = _rng(config.seed, 0, 0).permutation(n)
    sizes = [int(np.floor(f * n)) for f in config.split_fractions]
    bounds = np.cumsum([0, *sizes])
    return {s: np.sort(perm[bounds[i] : bounds[i + 1]]) for i, s in enumerate(SPLITS)}


def _class_table(pool: np.ndarray, labels: np.ndarray, n: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eligible classes i64[c], table i64[c, max_k] of pool indices per class, counts i64[c])."""
    pool_labels = labels[pool]
    classes, counts = np.unique(pool_labels, return_counts=True)
    keep = counts >= n
    if not keep.any():
        raise ValueError(
            f"RAD {split} pool has no digit class with >= {n} images "
            f"({len(pool)} digits); use more source digits or a larger split fraction"
        )
    classes, counts = classes[keep], counts[keep]
    table = np.zeros((len(classes), counts.max()), np.int64)
    for i, c in enumerate(classes):
        table[i, : counts[i]] = pool[pool_labels == c]
    return classes, table, counts


def _draw_distinct(rng: np.random.Generator, pool_sizes: np.ndarray, n: int) -> np.ndarray:
    """n distinct offsets in [0, pool_size) per row, a uniformly random ordered sample: i64[S, n]."""
    s = len(pool_sizes)
    u = rng.random((s, n))
    out = np.empty((s, n), np.int64)
    taken = np.empty((s, 0), np.int64)  # ascending per row
    for k in range(n):
        v = np.floor(u[:, k] * (pool_sizes - k)).astype(np.int64)
        for j in range(k):  # skip offsets already taken: v-th unused offset
            v += v >= taken[:, j]
        out[:, k] = v
        taken = np.sort(np.concatenate([taken, v[:, None]], axis=1), axis=1)
    return out


def _make_chunk(digits: MnistDigits, table: tuple, config: RadConfig, size: int, rng: np.random.Generator) -> RadSplit:
    classes, class_pool, counts = table
    n = config.images_per_sequence
    which = rng.integers(0, len(classes), size=size)
    offsets = _draw_distinct(rng, counts[which], n)
    source_index = class_pool[which[:, None], offsets]
    anomaly = rng.integers(0, n, size=size)
    recipe_a = rng.integers(0, len(RECIPES), size=size)
    recipe_b = (recipe_a + rng.integers(1, len(RECIPES), size=size)) % len(RECIPES)
    per_image = np.where(np.arange(n)[None] == anomaly[:, None], recipe_b[:, None], recipe_a[:, None])
    pixels = render(digits.images[source_index.ravel()], per_image.ravel(), rng, config.image_size)
    return RadSplit(
        images=pixels.reshape(size, n, -1),
        labels=anomaly.astype(np.int32),
        recipes=np.stack([recipe_a, recipe_b], axis=1).astype(np.int8),
        digits=classes[which].astype(np.int8),
        source_index=source_index.astype(np.int32),
    )


def make_rad_split(
    digits: MnistDigits, config: RadConfig, split: str, *, progress: bool = False, threads: int | None = None
) -> RadSplit:
    """Generates one split ("train" | "val" | "test"); deterministic in (digits, config, split).

    Chunks of CHUNK_SEQUENCES sequences are rendered on ``threads`` threads (default: CPU count);
    each chunk has its own random stream, so the result does not depend on ``threads``.
    """
    _check_split(split)
    if digits.images.ndim != 3 or digits.images.shape[1:] != (28, 28) or digits.images.dtype != np.uint8:
        raise ValueError(f"digits.images must be u8[N, 28, 28], got {digits.images.dtype}{digits.images.shape}")
    labels = np.asarray(digits.labels)
    table = _class_table(split_pools(labels, config)[split], labels, config.images_per_sequence, split)
    total = config.split_size(split)
    stream = 1 + SPLITS.index(split)
    starts = list(range(0, total, CHUNK_SEQUENCES))

    n, d = config.images_per_sequence, config.image_size**2
    out = RadSplit(
        images=np.empty((total, n, d), np.uint8),
        labels=np.empty(total, np.int32),
        recipes=np.empty((total, 2), np.int8),
        digits=np.empty(total, np.int8),
        source_index=np.empty((total, n), np.int32),
    )

    def fill(i: int) -> None:
        start, stop = starts[i], min(starts[i] + CHUNK_SEQUENCES, total)
        part = _make_chunk(digits, table, config, stop - start, _rng(config.seed, stream, i))
        for whole, piece in zip(out, part):
            whole[start:stop] = piece

    workers = max(1, min(threads or os.cpu_count() or 1, len(starts)))
    with ThreadPoolExecutor(workers) as pool:
        for _ in tqdm(
            pool.map(fill, range(len(starts))),
            total=len(starts),
            desc=f"RAD {split}",
            unit="chunk",
            disable=not progress,
        ):
            pass
    return out


# --- cache --------------------------------------------------------------------------------------------


def cache_key(digits: MnistDigits, config: RadConfig, split: str, digits_hash: str | None = None) -> str:
    """Hex sha256 of every generation parameter of ``split``."""
    material = {
        "generator": GENERATOR_VERSION,
        "config": dataclasses.asdict(config),
        "split": _check_split(split),
        "chunk": CHUNK_SEQUENCES,
        "source": digits.source,
        "digits_sha256": digits_hash or digits_sha256(digits),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def content_sha256(split: RadSplit) -> str:
    """Hex sha256 over every array of ``split`` (dtype, shape and bytes)."""
    h = hashlib.sha256()
    for name, a in zip(RadSplit._fields, split):
        a = np.ascontiguousarray(a)
        h.update(f"{name}{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _expected_shapes(config: RadConfig, split: str) -> dict[str, tuple[int, ...]]:
    n_seq, n = config.split_size(split), config.images_per_sequence
    d = config.image_size**2
    return {
        "images": (n_seq, n, d),
        "labels": (n_seq,),
        "recipes": (n_seq, 2),
        "digits": (n_seq,),
        "source_index": (n_seq, n),
    }


def _read_cache(path: Path, key: str, config: RadConfig, split: str) -> tuple[RadSplit | None, str]:
    """(split, "") when ``path`` is a valid cache for ``key``; else (None, why not)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            stored_key, stored_hash = str(z["key"]), str(z["content_sha256"])
            arrays = RadSplit(*(z[f] for f in RadSplit._fields))
    except Exception as e:  # noqa: BLE001 - any unreadable file is a cache miss
        return None, f"unreadable ({type(e).__name__}: {e})"
    if stored_key != key:
        return None, "key mismatch"
    shapes = {f: a.shape for f, a in zip(RadSplit._fields, arrays)}
    if shapes != _expected_shapes(config, split):
        return None, f"shape mismatch {shapes}"
    if content_sha256(arrays) != stored_hash:
        return None, "content hash mismatch"
    return arrays, ""


def _write_cache(path: Path, key: str, split: RadSplit) -> None:
    """Writes ``split`` to ``path`` atomically (temp file in the same directory, then os.replace)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(key), content_sha256=np.array(content_sha256(split)), **split._asdict())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        from sparse_rnn_jax.engine.workdir import NO_SPACE_ERRNOS, NoSpaceError, no_space_message

        if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS and not isinstance(e, NoSpaceError):
            raise NoSpaceError(e.errno, no_space_message(path, None, e)) from e
        raise


TEMPORARY = re.compile(r"\.rad_[a-z]+_[0-9a-f]+\.([0-9]+)\.[A-Za-z0-9_]+\.tmp")
"""The temporary name of a cache file being written (``_write_cache``: the writer's pid in it)."""


def remove_stale_temporaries(cache_dir: str | Path) -> list[str]:
    """Removes the temporaries of cache writes whose process is gone (killed mid-write); a live writer's (another
    run sharing the cache folder) stays. Returns the removed names."""
    removed = []
    try:
        names = os.listdir(cache_dir)
    except OSError:
        return removed
    for name in names:
        match = TEMPORARY.fullmatch(name)
        if match is None or process_alive(int(match.group(1))):
            continue
        try:
            os.unlink(os.path.join(cache_dir, name))
            removed.append(name)
        except OSError:
            pass
    return removed

    return True


def cache_path(cache_dir: str | Path, key: str, split: str) -> Path:
    """Where the cache file of ``split`` with ``key`` lives."""
    return Path(cache_dir) / f"rad_{split}_{key[:24]}.npz"


def load_rad(
    digits: MnistDigits, config: RadConfig, cache_dir: str | Path | None, log: Log = None
) -> dict[str, RadSplit]:
    """All three splits {"train", "val", "test"}, from ``cache_dir`` when valid, else generated.

    Cache files are keyed by :func:`cache_key`, verified on load (key, shapes, content hash) and
    written atomically; a file holding a valid split of another key is never overwritten.
    ``cache_dir`` None: no caching.
    """
    say = log or (lambda _msg: None)
    digits_hash = digits_sha256(digits)
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        for name in remove_stale_temporaries(cache_dir):
            say(f"rad: removed {name}, left in {cache_dir} by a cache write that was killed")
    out = {}
    for split in SPLITS:
        key = cache_key(digits, config, split, digits_hash)
        path = cache_path(cache_dir, key, split) if cache_dir is not None else None
        if path is not None and path.exists():
            cached, why = _read_cache(path, key, config, split)
            if cached is not None:
                say(f"rad: {split} ({config.split_size(split)} sequences) from cache {path}")
                out[split] = cached
                continue
            say(f"rad: cache {path} rejected ({why}); regenerating {split}")
        size = config.split_size(split)
        say(f"rad: generating {split} ({size} sequences) from {digits.source}")
        out[split] = make_rad_split(digits, config, split, progress=size >= PROGRESS_MIN_SEQUENCES)
        if path is not None:
            if path.exists() and _holds_other_valid_key(path, key):
                say(f"rad: not overwriting {path}: it holds a valid split of another key")
            else:
                _write_cache(path, key, out[split])
                say(f"rad: cached {split} at {path}")
    return out


def _holds_other_valid_key(path: Path, key: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            stored_key = str(z["key"])
            arrays = RadSplit(*(z[f] for f in RadSplit._fields))
            return stored_key != key and content_sha256(arrays) == str(z["content_sha256"])
    except Exception:  # noqa: BLE001 - unreadable: not a valid file
        return False
