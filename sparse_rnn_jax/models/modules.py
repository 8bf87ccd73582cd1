"""Every registered model family as a Flax NNX module: the engine's arrays as ``nnx.Param``s, its masks as
``Mask`` variables, and its own pure forward function as ``__call__``.

    rnn = BlockRNN(spec, rngs=nnx.Rngs(0))           # or seed=..., the engine's integer seed
    y = rnn(x)                                        # x f32[B, T, X] -> y f32[B, T, Y], the output after every step
    optimizer = nnx.Optimizer(rnn, optax.adam(1e-3), wrt=nnx.Param)

A module holds one model's arrays exactly as the engine's ``Family.init`` builds them (``models.masks.ModelArrays``):
each parameter is an attribute of the same name (``rnn.W_hh``, ``rnn.b_h``, ... for the block RNN; ``W_i``, ``W_h``,
``b``, ``W_yh``, ``b_y`` for a cell) and the masks are ``rnn.masks[key]``. ``Mask`` is an ``nnx.Variable`` but not
an ``nnx.Param``, so ``nnx.grad`` and an ``nnx.Optimizer(..., wrt=nnx.Param)`` never see it: a masked entry gets
a zero gradient (the forward multiplies it by 0) and Adam leaves it where it is.

``__call__`` is the family's registered ``forward`` (``models.registry``), the same function the population engine
vmaps: for the block RNN ``block.block_rnn_forward`` (the input projection of every step hoisted before a
``lax.scan`` whose gradient is hand-written BPTT, a ``custom_vjp``), so a module and the engine compute one model.
Interop: ``BlockRNN.from_arrays(spec, params, masks)`` wraps the engine's arrays (``init_model``'s or a trained
member's) and ``to_arrays()`` gives them back; ``studies.trained.load_member`` returns a finished sweep's trained
model as a module.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sparse_rnn_jax.models.masks import ModelArrays
from sparse_rnn_jax.models.registry import get_family


class Mask(nnx.Variable):
    """A model's static per-entry mask (bool; the fixed leak's α, f32[]): state of the module, never trained."""


class RecurrentModel(nnx.Module):
    """One model of a registered family as an NNX module (the subclasses below fix the family).

    spec: the model's spec (``NetworkSpec``, ``CellSpec`` or ``LeakySpec``; static).
    rngs / seed: where the initial arrays come from: ``seed`` is the engine's integer seed (the module's arrays
        then equal ``Family.init(spec, seed, ...)``); ``rngs`` draws such a seed from its ``params`` stream.
    padded_hidden_dim: zero-padded hidden units (they stay exactly 0), as the engine pads a bucket.
    mask_mode: "exact" or "bernoulli" masks (``models.masks.block_mask``).
    unroll: steps per iteration of the time scan (``lax.scan``'s ``unroll``).
    arrays: build from these ``ModelArrays`` instead of drawing (``from_arrays``).
    """

    family: ClassVar[str | None] = None

    def __init__(
        self,
        spec: Any,
        *,
        rngs: nnx.Rngs | None = None,
        seed: int | None = None,
        padded_hidden_dim: int | None = None,
        mask_mode: str = "exact",
        unroll: int = 1,
        arrays: ModelArrays | None = None,
    ):
        name = getattr(spec, "family", None)
        if self.family is not None and name != self.family:
            raise ValueError(f"{type(self).__name__} needs a spec of family {self.family!r}, got {name!r}")
        fam = get_family(name)
        if arrays is None:
            if (rngs is None) == (seed is None):
                raise ValueError("give exactly one of rngs and seed")
            if seed is None:
                seed = int(jax.random.randint(rngs.params(), (), 0, np.iinfo(np.int32).max))
            arrays = fam.init(spec, int(seed), padded_hidden_dim, mask_mode)
        else:
            check_arrays(spec, *arrays)
        self.spec = spec
        self.unroll = int(unroll)
        self.param_keys = tuple(arrays.params)
        for k, v in arrays.params.items():
            setattr(self, k, nnx.Param(jnp.asarray(v)))
        self.masks = nnx.Dict({k: Mask(jnp.asarray(v)) for k, v in arrays.masks.items()})

    @classmethod
    def from_arrays(
        cls, spec: Any, params: Mapping[str, Any], masks: Mapping[str, Any], *, unroll: int = 1
    ) -> "RecurrentModel":
        """The module of the engine's arrays of one model (``Family.init``'s, or a trained member's, padded or not);
        a ValueError naming a missing, unknown or misshapen array. Called on ``RecurrentModel`` itself, the class
        is chosen from ``spec.family``."""
        target = module_class(spec.family) if cls is RecurrentModel else cls
        return target(spec, unroll=unroll, arrays=ModelArrays(dict(params), dict(masks)))

    def to_arrays(self) -> ModelArrays:
        """The model's current (params, masks) as the engine's dicts of arrays, the inverse of ``from_arrays``."""
        params = {k: getattr(self, k)[...] for k in self.param_keys}
        return ModelArrays(params, {k: v[...] for k, v in self.masks.items()})

    def __call__(self, x: jax.Array) -> jax.Array:
        """x f32[B, T, X] -> y f32[B, T, Y]: the family's registered ``forward`` on the module's arrays."""
        params, masks = self.to_arrays()
        return get_family(self.spec.family).forward(
            params, masks, x, activation=self.spec.activation, unroll=self.unroll
        )

    @property
    def hidden_dim(self) -> int:
        """The (padded) hidden size H of the arrays."""
        return get_family(self.spec.family).dims(self.to_arrays().params)[1]

    def initial_state(self, batch_size: int) -> jax.Array:
        """The zero recurrent state f32[B, S] that ``__call__`` starts from (S: ``Family.state_size``)."""
        fam = get_family(self.spec.family)
        return jnp.zeros((batch_size, fam.state_size(self.hidden_dim, self.spec.output_dim)), jnp.float32)

    def step(self, state: jax.Array, x_t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One step: state f32[B, S], x_t f32[B, X] -> (state, y_t f32[B, Y]), as the engine's rollouts step."""
        fam = get_family(self.spec.family)
        prepared = fam.prepare(*self.to_arrays())
        return fam.step(prepared, state, x_t, self.hidden_dim, self.spec.activation)

    def unpadded(self) -> "RecurrentModel":
        """The same model at its true hidden size ``spec.hidden_dim`` (padded units dropped; they compute 0)."""
        params, masks = trim_padding(self.spec, *self.to_arrays())
        return type(self).from_arrays(self.spec, params, masks, unroll=self.unroll)


class BlockRNN(RecurrentModel):
    """The paper's block RNN (Eqn 5, ``models.block``): six masked weight blocks ``W_hx`` ... ``W_yy`` and biases
    ``b_h``, ``b_y`` as ``nnx.Param``s, masks ``hx`` ... ``yy``, ``b_h``, ``b_y``."""

    family = "block"


class LeakyBlockRNN(RecurrentModel):
    """The fixed-α leaky block RNN (``models.leaky``); α is the ``alpha`` mask (static, not trained)."""

    family = "leaky_fixed"


class LearnedLeakyBlockRNN(RecurrentModel):
    """The leaky block RNN with a trained per-unit α = sigmoid(``a``) (``models.leaky``)."""

    family = "leaky_learned"


class GatedBlockRNN(RecurrentModel):
    """The gated block RNN: α from the gate ``W_ax``, ``W_ah``, ``b_a`` (``models.leaky``)."""

    family = "leaky_gated"


class LSTM(RecurrentModel):
    """The LSTM baseline with a dense readout at every step (``models.cells``)."""

    family = "lstm"


class GRU(RecurrentModel):
    """The GRU baseline with a dense readout at every step (``models.cells``)."""

    family = "gru"


class RNNTanh(RecurrentModel):
    """The tanh RNN baseline with a dense readout at every step (``models.cells``)."""

    family = "rnn_tanh"


class RNNReLU(RecurrentModel):
    """The ReLU RNN baseline with a dense readout at every step (``models.cells``)."""

    family = "rnn_relu"


MODULES: dict[str, type[RecurrentModel]] = {
    c.family: c for c in (BlockRNN, LeakyBlockRNN, LearnedLeakyBlockRNN, GatedBlockRNN, LSTM, GRU, RNNTanh, RNNReLU)
}
"""family name -> its module class (every family of ``models.registry.FAMILIES``)."""


def module_class(family: str) -> type[RecurrentModel]:
    """The module class of a registered family: its class in ``MODULES``, or, for a family registered without one,
    a ``RecurrentModel`` subclass made for it (so a new family needs no module code). A ValueError naming the known
    families for an unregistered one."""
    get_family(family)
    return MODULES.get(family) or _generated_class(family)


@functools.lru_cache(maxsize=None)
def _generated_class(family: str) -> type[RecurrentModel]:
    return type(f"RecurrentModel_{family}", (RecurrentModel,), {"family": family, "__module__": __name__})


def check_arrays(spec: Any, params: Mapping[str, Any], masks: Mapping[str, Any]) -> None:
    """A ValueError naming the first array that does not fit ``spec`` (keys and shapes of ``Family.init``'s at the
    arrays' own, possibly padded, hidden size)."""
    fam = get_family(spec.family)
    try:
        hidden = int(fam.dims(params)[1])
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise ValueError(f"params of a {spec.family!r} model lack an array ({e!r})") from None
    if hidden < spec.hidden_dim:
        raise ValueError(f"the arrays' hidden size {hidden} is smaller than the spec's {spec.hidden_dim}")
    ref = fam.init(spec, 0, hidden)
    for what, given, want in (("params", params, ref.params), ("masks", masks, ref.masks)):
        if set(given) != set(want):
            raise ValueError(f"{what} of a {spec.family!r} model must have keys {sorted(want)}, got {sorted(given)}")
        for k, v in want.items():
            if tuple(np.shape(given[k])) != v.shape:
                raise ValueError(f"{what}[{k!r}] has shape {tuple(np.shape(given[k]))}, expected {v.shape}")


def trim_padding(spec: Any, params: Mapping[str, Any], masks: Mapping[str, Any]) -> ModelArrays:
    """The arrays at the true hidden size ``spec.hidden_dim`` (numpy): every array cut to ``Family.init``'s true
    shape (the engine pads at the end of each axis). A ValueError if a dropped entry is not padding (a non-zero
    parameter or a True mask)."""
    ref = get_family(spec.family).init(spec, 0, None)
    out: list[dict[str, np.ndarray]] = []
    for what, arrays, want in (("params", params, ref.params), ("masks", masks, ref.masks)):
        trimmed = {}
        for k, w in want.items():
            a = np.asarray(arrays[k])
            region = tuple(slice(0, s) for s in w.shape)
            rest = a.copy()
            rest[region] = 0
            if np.any(rest):
                raise ValueError(f"{what}[{k!r}] has entries beyond hidden size {spec.hidden_dim}: not padding")
            trimmed[k] = a[region]
        out.append(trimmed)
    return ModelArrays(*out)
