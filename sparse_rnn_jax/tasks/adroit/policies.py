"""A tanh-MLP policy stored as plain numpy arrays in an ``.npz`` file (the DAPG expert-policy format).

File format (every array float32, loaded with ``allow_pickle=False``; L >= 1 layers):

  w0 f32[H0, obs_dim], b0 f32[H0], w1 f32[H1, H0], b1 f32[H1], ..., w{L-1} f32[act_dim, H{L-2}], b{L-1} f32[act_dim]
  in_shift, in_scale f32[obs_dim]; out_shift, out_scale, log_std f32[act_dim]

Forward pass (o = observation, a = action; tanh after every layer but the last):

  u = (o - in_shift) / (in_scale + 1e-8)
  u = tanh(w_i @ u + b_i)                      for i < L-1
  mean = (w_{L-1} @ u + b_{L-1}) * out_scale + out_shift
  a = clip(mean, -1, 1)                                         deterministic
  a = clip(mean + exp(log_std) * standard_normal(act_dim), -1, 1)  stochastic

Every function takes one observation f32[obs_dim] or a batch f32[B, obs_dim].
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from typing import Optional

import numpy as np

INPUT_EPS = 1e-8
"""Added to ``in_scale`` before dividing, as in the format's forward pass."""

_VECTOR_KEYS = ("in_shift", "in_scale", "out_shift", "out_scale", "log_std")


class PolicyError(ValueError):
    """A policy file that cannot be read, or whose shapes do not fit an environment (one-line message)."""


@dataclasses.dataclass(frozen=True)
class TanhMlpPolicy:
    """A tanh MLP with input/output affine scaling and a state-independent Gaussian log-std.

    Attributes:
      weights: (w0, ..., w{L-1}), w_i f32[out_i, in_i].   biases: (b0, ..., b{L-1}), b_i f32[out_i].
      in_shift, in_scale: f32[obs_dim].   out_shift, out_scale, log_std: f32[act_dim].
      source: where the arrays came from (a path or a label), for messages.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    in_shift: np.ndarray
    in_scale: np.ndarray
    out_shift: np.ndarray
    out_scale: np.ndarray
    log_std: np.ndarray
    source: str = "<arrays>"

    def __post_init__(self) -> None:
        _check_shapes(self)

    @property
    def obs_dim(self) -> int:
        """Observation size the policy reads."""
        return int(self.weights[0].shape[1])

    @property
    def act_dim(self) -> int:
        """Action size the policy writes."""
        return int(self.weights[-1].shape[0])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Widths of the hidden layers."""
        return tuple(int(w.shape[0]) for w in self.weights[:-1])

    def mean_action(self, obs: np.ndarray) -> np.ndarray:
        """Unclipped mean action: obs f[obs_dim] or f[B, obs_dim] -> f32[act_dim] or f32[B, act_dim]."""
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape[-1:] != (self.obs_dim,) or obs.ndim not in (1, 2):
            raise PolicyError(
                f"policy {self.source} expects observations of shape ({self.obs_dim},) or (B, {self.obs_dim}), "
                f"got {obs.shape}"
            )
        u = (obs - self.in_shift) / (self.in_scale.astype(np.float64) + INPUT_EPS)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            u = u @ w.T.astype(np.float64) + b
            if i < last:
                u = np.tanh(u)
        return (u * self.out_scale + self.out_shift).astype(np.float32)

    def act(
        self, obs: np.ndarray, *, stochastic: bool = False, rng: Optional[np.random.Generator] = None
    ) -> np.ndarray:
        """Action clipped to [-1, 1]; with ``stochastic`` the mean plus exp(log_std) * N(0, 1) noise from ``rng``.

        obs f[obs_dim] or f[B, obs_dim] -> f32[act_dim] or f32[B, act_dim].
        """
        mean = self.mean_action(obs)
        if stochastic:
            if rng is None:
                raise ValueError("stochastic actions need an rng (numpy.random.Generator)")
            mean = mean + np.exp(self.log_std) * rng.standard_normal(mean.shape)
        return np.clip(mean, -1.0, 1.0).astype(np.float32)

    def check_spaces(self, observation_space, action_space, env_id: str = "the environment") -> None:
        """Raises PolicyError (one line) unless both spaces are flat Boxes of the policy's sizes."""
        checks = (("observation", observation_space, self.obs_dim), ("action", action_space, self.act_dim))
        for kind, space, dim in checks:
            shape = getattr(space, "shape", None)
            if type(space).__name__ != "Box" or shape is None or len(shape) != 1:
                raise PolicyError(f"policy {self.source} needs a flat Box {kind} space, but {env_id} has {space}")
            if shape[0] != dim:
                raise PolicyError(f"policy {self.source} has {kind} size {dim}, but {env_id} has {kind} shape {shape}")


def _check_shapes(p: TanhMlpPolicy) -> None:
    if len(p.weights) < 1 or len(p.weights) != len(p.biases):
        raise PolicyError(
            f"policy {p.source}: need as many biases as weights (>= 1), got {len(p.weights)} and {len(p.biases)}"
        )
    for i, (w, b) in enumerate(zip(p.weights, p.biases)):
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise PolicyError(
                f"policy {p.source}: w{i} {w.shape} and b{i} {b.shape} do not fit (need [out, in] and [out])"
            )
        if i > 0 and w.shape[1] != p.weights[i - 1].shape[0]:
            raise PolicyError(
                f"policy {p.source}: w{i} has {w.shape[1]} inputs but w{i - 1} has {p.weights[i - 1].shape[0]} outputs"
            )
    obs_dim, act_dim = p.weights[0].shape[1], p.weights[-1].shape[0]
    for key in _VECTOR_KEYS:
        want = (obs_dim,) if key.startswith("in_") else (act_dim,)
        got = getattr(p, key).shape
        if got != want:
            raise PolicyError(f"policy {p.source}: {key} has shape {got}, expected {want}")
    named = [("weights", w) for w in p.weights] + [("biases", b) for b in p.biases]
    for key, a in named + [(k, getattr(p, k)) for k in _VECTOR_KEYS]:
        if not np.all(np.isfinite(a)):
            raise PolicyError(f"policy {p.source}: {key} holds non-finite values")


def load_npz_policy(path: str | os.PathLike) -> TanhMlpPolicy:
    """Reads a TanhMlpPolicy from ``path`` without pickle; raises PolicyError (one line) on any problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PolicyError(f"policy file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if "pickle" in str(e):
            raise PolicyError(f"{path} is not an .npz archive of plain arrays (reading it would need pickle)") from None
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PolicyError(f"cannot read policy file {path}: {reason}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise PolicyError(f"{path} is a single array, not an .npz archive of named arrays")
    with loaded as z:
        arrays = {k: np.asarray(z[k]) for k in z.files}
    n_layers = 0
    while f"w{n_layers}" in arrays:
        n_layers += 1
    missing = [k for k in ("w0", "b0") + _VECTOR_KEYS if k not in arrays]
    missing += [f"b{i}" for i in range(n_layers) if f"b{i}" not in arrays]
    if missing:
        raise PolicyError(f"policy file {path} lacks arrays {missing} (has {sorted(arrays)})")
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return TanhMlpPolicy(
        weights=tuple(f32(arrays[f"w{i}"]) for i in range(n_layers)),
        biases=tuple(f32(arrays[f"b{i}"]) for i in range(n_layers)),
        **{k: f32(arrays[k]) for k in _VECTOR_KEYS},
        source=path,
    )
