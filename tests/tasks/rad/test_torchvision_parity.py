"""The numpy RAD augmentations against torchvision's, where they should agree (needs torch and torchvision).

Each comparison fixes the random parts (same sigma, same box, same corner endpoints), so only the computation is
compared. Tolerances: erasing is exact; blur, sharpness and resize differ only by float32 summation order
(atol 1e-5 on [0, 1] pixels); perspective uses torchvision's float32 least-squares homography (solved in float64,
then cast to float32) against our closed form in float64, so sampling coordinates differ by ~1e-5 pixels and a
pixel by at most that times the local gradient (<= 1 per pixel on [0, 1] images): atol 1e-3. Where the generator
departs on purpose (corner draws with three collinear corners are redrawn; the erasing box is drawn so it
always fits), nothing is compared (BUILD_NOTES.md, RAD data).
"""

from __future__ import annotations

import numpy as np
import pytest

from sparse_rnn_jax.tasks.rad import generate as rad
from sparse_rnn_jax.tasks.rad.mnist import load_mnist

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torchvision.transforms.functional")
from torchvision.transforms import InterpolationMode  # noqa: E402

SIDE = 28


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """f32[24, 28, 28]: real embedded MNIST digits in [0, 1]."""
    digits = load_mnist("embedded")
    return (digits.images[:24].astype(np.float32) / 255.0).reshape(-1, SIDE, SIDE)


def _torch(images: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(images))[:, None]  # [m, 1, H, W]


def _numpy(t) -> np.ndarray:
    return t[:, 0].numpy()


def test_gaussian_blur_same_sigma(images):
    sigma = np.random.default_rng(0).uniform(*rad.BLUR_SIGMA, size=len(images))
    ours = rad.gaussian_blur(images, sigma)
    for k, s in enumerate(sigma):
        theirs = TF.gaussian_blur(_torch(images[k : k + 1]), [rad.BLUR_KERNEL] * 2, [float(s)] * 2)
        np.testing.assert_allclose(ours[k], _numpy(theirs)[0], atol=1e-5, rtol=0)


def test_sharpness(images):
    ours = rad.adjust_sharpness(images, rad.SHARPNESS_FACTOR)
    theirs = _numpy(TF.adjust_sharpness(_torch(images), rad.SHARPNESS_FACTOR))
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [50, 14, 28])
def test_resize_bilinear_without_antialias(images, size):
    ours = rad.resize_bilinear(images, size)
    theirs = TF.resize(_torch(images), [size, size], interpolation=InterpolationMode.BILINEAR, antialias=False)
    np.testing.assert_allclose(ours, _numpy(theirs), atol=1e-5, rtol=0)


def test_erasing_same_box(images):
    boxes = rad.erasing_boxes(np.random.default_rng(1), len(images), SIDE, SIDE)
    ours = rad.erase(images, boxes)
    for k, (top, left, h, w) in enumerate(boxes.tolist()):
        theirs = TF.erase(_torch(images[k : k + 1]), top, left, h, w, torch.tensor(0.0))
        np.testing.assert_array_equal(ours[k], _numpy(theirs)[0])


@pytest.mark.parametrize("distortion", [0.5, 0.9])
def test_perspective_same_endpoints(images, distortion):
    endpoints = rad.perspective_endpoints(np.random.default_rng(2), len(images), distortion, SIDE, SIDE)
    ours = rad.perspective(images, endpoints)
    start = [[0, 0], [SIDE - 1, 0], [SIDE - 1, SIDE - 1], [0, SIDE - 1]]
    worst = 0.0
    for k in range(len(images)):
        theirs = TF.perspective(
            _torch(images[k : k + 1]), start, endpoints[k].tolist(), interpolation=InterpolationMode.BILINEAR
        )
        worst = max(worst, float(np.abs(ours[k] - _numpy(theirs)[0]).max()))
    assert worst < 1e-3, worst
