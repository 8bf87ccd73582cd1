"""The population's train and evaluate programs: Adam with a per-model learning rate, vmapped over models,
scanned over minibatches, with per-model divergence freezing; and the one padded step loop that drives them.

Shapes: P models in a chunk, B examples per minibatch, S steps per call. Every leaf of ``params``,
``masks`` and the optimiser state has a leading model axis P; ``lrs`` is f32[P].
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparse_rnn_jax.engine import devices
from sparse_rnn_jax.engine import layout as layout_lib
from sparse_rnn_jax.engine.config import PROGRAM_FORMS
from sparse_rnn_jax.engine.population import stack_chunk
from sparse_rnn_jax.engine.task import Batch, Objective, program_key
from sparse_rnn_jax.models.precision import check_compute_dtype
from sparse_rnn_jax.models.registry import get_family

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
"""Adam's hyperparameters (optax's defaults); the per-model learning rate scales its step."""
_ADAM = optax.scale_by_adam(b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS)


class TrainState(NamedTuple):
    """State of a chunk of P models."""

    params: Mapping[str, jax.Array]  # each [P, ...]
    opt_state: Any  # optax ScaleByAdamState, leaves [P, ...]
    diverged: jax.Array  # bool[P]: hit a non-finite loss or weight; frozen since


def init_train_state(params: Mapping[str, jax.Array]) -> TrainState:
    """A fresh TrainState of stacked params (leaves [P, ...]): zero Adam moments, nothing diverged."""
    params = jax.tree.map(jnp.asarray, params)
    p = jax.tree.leaves(params)[0].shape[0]
    return TrainState(params, jax.vmap(_ADAM.init)(params), jnp.zeros((p,), bool))


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _mean_loss(task: Objective, forward, params, masks, batch: Batch) -> jax.Array:
    y = forward(params, masks, batch.x)
    loss_sum, loss_count, _ = task.score(y, batch)
    return jnp.sum(batch.weight * loss_sum) / jnp.maximum(jnp.sum(batch.weight * loss_count), 1e-12)


ADAM_STEP_BOUND = 32.0
"""|Adam's step| <= (1 - b1) / sqrt(1 - b2) / (1 - b1 / sqrt(b2)) = 31.8 for b1 = 0.9, b2 = 0.999 whenever the
gradients are finite, so finite gradients and a finite lr x 32 give finite new weights (weights start finite)."""


def _adam_direction(opt_state) -> Any:
    """Adam's step direction from an already-updated state: mu_hat / (sqrt(nu_hat) + eps), bias-corrected at its
    count; the same expressions as the last lines of optax's ``scale_by_adam`` (eps_root 0)."""
    mu_hat = optax.tree.bias_correction(opt_state.mu, ADAM_B1, opt_state.count)
    nu_hat = optax.tree.bias_correction(opt_state.nu, ADAM_B2, opt_state.count)
    return jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + ADAM_EPS), mu_hat, nu_hat)


def _model_step(task, forward, params, opt_state, diverged, masks, lr, batch, valid):
    """One Adam step of one model: ``_loss_and_grads`` then ``_adam_keep``. Returns (params, opt_state, diverged,
    loss)."""
    loss, grads = _loss_and_grads(task, forward, params, masks, batch)
    return _adam_keep(params, opt_state, diverged, lr, loss, grads, valid)


def _loss_and_grads(task, forward, params, masks, batch):
    """(mean loss, its gradients with respect to ``params``) of one model on ``batch``."""
    return jax.value_and_grad(functools.partial(_mean_loss, task, forward))(params, masks, batch)


def _adam_keep(params, opt_state, diverged, lr, loss, grads, valid):
    """Adam's step from ``grads``; a model whose loss or gradients are non-finite (so would be its new weights,
    ``ADAM_STEP_BOUND``) keeps its old state and is flagged diverged for good, and a step with ``valid`` False
    changes nothing. Returns (params, opt_state, diverged, loss). Elementwise over every leaf, so the same on dense
    arrays and on compact ones (``engine.layout``).

    Memory traffic, not FLOPs, bounds this update on a CPU (BUILD_NOTES, "Performance"): deciding from the
    gradients, not the new weights, lets XLA fuse the update and the keep into one pass over each array; and the
    new moments are materialised once (``optimization_barrier``) and the weights updated from them, where XLA
    would otherwise recompute both moments inside the weights' update and, as the moments are updated in place,
    first copy the old ones (two extra reads and writes of every weight-sized array per step)."""
    ok = jnp.isfinite(loss) & _all_finite(grads) & jnp.isfinite(lr * ADAM_STEP_BOUND)
    keep = ok & ~diverged & valid
    _, new_opt = _ADAM.update(grads, opt_state, params)
    opt_state = jax.lax.optimization_barrier(jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_opt, opt_state))
    direction = _adam_direction(opt_state)
    params = jax.tree.map(lambda p, u: jnp.where(keep, p - lr * u, p), params, direction)
    diverged = diverged | (~ok & valid)
    return params, opt_state, diverged, jnp.where(diverged, jnp.nan, loss)


def choose_form(form: str) -> str:
    """``form`` ("auto", "population" or "loop") resolved: "auto" is "population", the batched program, which
    measured faster than the loop on every shape tried on the 2-core CPU in both dtypes once bf16 products took the
    weight as their left operand (BUILD_NOTES, "bf16 products weight first": the bench's 64 Table IV models, bf16
    30 vs 63 ms a step at |h| 52 and 53 vs 54 ms at |h| 224); on an accelerator one small model cannot fill the
    device."""
    if form not in PROGRAM_FORMS:
        raise ValueError(f"program_form must be one of {PROGRAM_FORMS}, got {form!r}")
    return "population" if form == "auto" else form


def over_models(fn: Callable, in_axes: tuple, form: str) -> Callable:
    """``fn`` of one model applied to every model of a chunk: ``jax.vmap(fn, in_axes)`` ("population": one batched
    product of all models) or a ``jax.lax.map`` over the models ("loop": one model after another inside the same
    program, each with its own products); arguments with axis None are shared. Outputs are stacked on a leading
    model axis either way; the two forms agree to float rounding (1 ulp on the tests' models), not bit for bit."""
    if form not in ("population", "loop"):
        raise ValueError(f"form must be 'population' or 'loop' (resolve 'auto' with choose_form), got {form!r}")
    if form == "population":
        return jax.vmap(fn, in_axes=in_axes)

    def looped(*args):
        mapped = tuple(a for a, ax in zip(args, in_axes) if ax is not None)

        def one(xs):
            it = iter(xs)
            return fn(*(next(it) if ax is not None else a for a, ax in zip(args, in_axes)))

        return jax.lax.map(one, mapped)

    return looped


@functools.lru_cache(maxsize=None)
def forward_fn(family: str, activation: str, unroll: int = 1, compute_dtype: str = "float32") -> Callable:
    """(params, masks, x f32[B, T, X]) -> y f32[B, T, Y] of a registered family, its products with the data in
    ``compute_dtype`` (``models.precision``; float32 calls the family's forward exactly as before). A ValueError
    when the family has no such computation dtype."""
    fam = get_family(family)
    check_compute_dtype(compute_dtype)
    if compute_dtype == "float32":
        return functools.partial(fam.forward, activation=activation, unroll=unroll)
    if compute_dtype not in fam.compute_dtypes:
        raise ValueError(f"compute_dtype {compute_dtype!r} is not available for model family {family!r}")
    return functools.partial(fam.forward, activation=activation, unroll=unroll, compute_dtype=compute_dtype)


def make_train_steps(
    task: Objective,
    family: str,
    activation: str,
    unroll: int = 1,
    per_model_order: bool = False,
    compute_dtype: str = "float32",
    form: str = "population",
):
    """Returns ``train_steps(state, masks, lrs, data, idx, valid, layout=None) -> (state, losses f32[S, P])`` for
    models of ``family`` (``models.registry.FAMILIES``), their products with the data in ``compute_dtype``, the
    models stepped as one batched program ("population") or one model after another, each through all the call's
    steps ("loop": ``_looped_train_steps``).

    idx: int32[S, B] (one minibatch stream shared by every model) or int32[S, P, B] (``per_model_order``);
    valid: bool[S], steps marked False change nothing (pads the last call of an epoch); layout: the compact layout
    of the chunk's sparse weights (``engine.layout.plan_layout``; None or {}: every weight stepped dense), with
    bit-identical results either way.
    """
    forward = forward_fn(family, activation, unroll, compute_dtype)
    weight_keys = get_family(family).weight_keys
    step = functools.partial(_model_step, task, forward)
    if form == "loop":
        return _looped_train_steps(task, forward, weight_keys, per_model_order)
    batch_axis = 0 if per_model_order else None
    vstep = over_models(step, (0, 0, 0, 0, 0, batch_axis, None), form)
    vgrads = over_models(functools.partial(_loss_and_grads, task, forward), (0, 0, batch_axis), form)
    vadam = over_models(_adam_keep, (0, 0, 0, 0, 0, 0, None), form)
    make_batch = jax.vmap(task.make_batch, in_axes=(None, 0)) if per_model_order else task.make_batch

    def dense_steps(state: TrainState, masks, lrs, data, idx, valid):
        def body(st: TrainState, inputs):
            idx_s, valid_s = inputs
            batch = make_batch(data, idx_s)
            # valid_s is applied with the divergence keep, in the same pass (no faster with lax.cond: measured).
            params, opt, div, loss = vstep(st.params, st.opt_state, st.diverged, masks, lrs, batch, valid_s)
            return TrainState(params, opt, div), loss

        return jax.lax.scan(body, state, (idx, valid))

    def train_steps(state: TrainState, masks, lrs, data, idx, valid, layout=None):
        if not layout:
            return dense_steps(state, masks, lrs, data, idx, valid)
        shapes = {k: state.params[k].shape for k in layout}
        fmasks = layout_lib.forward_masks(masks, layout, weight_keys, int(lrs.shape[0]))

        def body(carry, inputs):
            idx_s, valid_s = inputs
            step = _compact_step(
                vgrads, vadam, layout, shapes, True, carry, fmasks, lrs, make_batch(data, idx_s), valid_s
            )
            return step[:3], step[3]

        compact = _compress_state(state, layout, True)
        (params, opt, div), losses = jax.lax.scan(body, compact, (idx, valid))
        return _write_back_state(state, params, opt, div, layout, masks, weight_keys), losses

    return train_steps


def _compact_step(grads_of, adam, layout, shapes, population: bool, carry, fmasks, lr, batch, valid) -> tuple:
    """One step on compact state ``carry`` = (params, Adam state, diverged): the weights expanded to dense for
    ``grads_of`` (the loss and gradients), the gradients gathered back, then ``adam`` (``_adam_keep``, vmapped or
    not with ``grads_of``). Returns (params, Adam state, diverged, loss)."""
    params, opt, div = carry
    loss, grads = grads_of(layout_lib.expand(params, layout, shapes), fmasks, batch)
    return adam(params, opt, div, lr, loss, layout_lib.compress(grads, layout, population), valid)


def _compress_state(state: TrainState, layout, population: bool) -> tuple:
    """(params, Adam state, diverged) with the compacted weights and their moments gathered (``engine.layout``)."""
    opt = state.opt_state
    compact = functools.partial(layout_lib.compress, layout=layout, population=population)
    return compact(state.params), opt._replace(mu=compact(opt.mu), nu=compact(opt.nu)), state.diverged


def _write_back_state(state: TrainState, params, opt, diverged, layout, masks, weight_keys) -> TrainState:
    """The dense TrainState after a compact call: trained entries written back, masked entries as in ``state``."""
    back = functools.partial(layout_lib.write_back, layout=layout, masks=masks, weight_keys=weight_keys)
    old = state.opt_state
    return TrainState(
        back(params, state.params), opt._replace(mu=back(opt.mu, old.mu), nu=back(opt.nu, old.nu)), diverged
    )


def _looped_train_steps(task: Objective, forward: Callable, weight_keys, per_model_order: bool):
    """``train_steps`` of the "loop" form: one model after another (``jax.lax.map`` over the models), each through
    all the call's minibatch steps before the next, so a model's weights and Adam moments stay in the CPU's caches
    across its steps instead of streaming every model's arrays from memory at every step. With a ``layout`` each
    model's sparse weights are stepped compact (``engine.layout``), with its own rows of the layout."""

    grads_of = functools.partial(_loss_and_grads, task, forward)

    def train_steps(state: TrainState, masks, lrs, data, idx, valid, layout=None):
        layout = layout or {}

        def one_model(xs):
            params, opt, div, m, lr, lay = xs[:6]
            model_idx = xs[6] if per_model_order else idx
            one = TrainState(params, opt, div)
            shapes = {k: params[k].shape for k in lay}
            fmasks = layout_lib.forward_masks(m, lay, weight_keys, None)

            def body(carry, inputs):
                idx_s, valid_s = inputs
                batch = task.make_batch(data, idx_s)
                step = _compact_step(grads_of, _adam_keep, lay, shapes, False, carry, fmasks, lr, batch, valid_s)
                return step[:3], step[3]

            (p, o, d), losses = jax.lax.scan(body, _compress_state(one, lay, False), (model_idx, valid))
            return _write_back_state(one, p, o, d, lay, m, weight_keys), losses

        xs = (state.params, state.opt_state, state.diverged, masks, lrs, layout)
        xs += (jnp.swapaxes(idx, 0, 1),) if per_model_order else ()
        new, losses = jax.lax.map(one_model, xs)
        return new, losses.T

    return train_steps


def make_evaluate(
    task: Objective,
    family: str,
    activation: str,
    unroll: int = 1,
    compute_dtype: str = "float32",
    form: str = "population",
):
    """Returns ``evaluate(params, masks, data, idx int32[S, B], weight f32[S, B]) -> (loss f32[P], accuracy f32[P])``
    over the examples ``idx`` (rows with weight 0 are padding), computed as the models train (``compute_dtype``,
    ``form``)."""

    forward = forward_fn(family, activation, unroll, compute_dtype)

    def one_model(params, masks, batch):
        return task.score(forward(params, masks, batch.x), batch)

    vmodel = over_models(one_model, (0, 0, None), form)

    def evaluate(params, masks, data, idx, weight):
        p = jax.tree.leaves(params)[0].shape[0]

        def body(acc, inputs):
            idx_s, w_s = inputs
            batch = task.make_batch(data, idx_s)
            batch = batch._replace(weight=batch.weight * w_s)
            loss_sum, loss_count, correct = vmodel(params, masks, batch)
            w = batch.weight[None, :]
            return (
                acc[0] + jnp.sum(w * loss_sum, -1),
                acc[1] + jnp.sum(w * loss_count, -1),
                acc[2] + jnp.sum(w * correct, -1),
                acc[3] + jnp.sum(w, -1),
            ), None

        zeros = jnp.zeros((p,), jnp.float32)
        (ls, lc, corr, n), _ = jax.lax.scan(body, (zeros, zeros, zeros, zeros), (idx, weight))
        return ls / jnp.maximum(lc, 1e-12), corr / jnp.maximum(n, 1e-12)

    return evaluate


class _ByProgram:
    """A task as a cache key: equal to another task's when they trace to the same programs (``program_key``)."""

    def __init__(self, task: Objective):
        self.task, self.key = task, program_key(task)

    def __eq__(self, other) -> bool:
        return isinstance(other, _ByProgram) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def jitted_programs(
    task: Objective,
    family: str,
    activation: str,
    unroll: int,
    per_model_order: bool,
    compute_dtype: str = "float32",
    form: str = "population",
):
    """The jitted ``(train_steps, evaluate)`` of a family on a task, shared by every caller in a process (so each
    padded shape compiles once per process), keyed by value: a task loaded again (a new ``Task`` whose functions
    have the same code and closed-over values, ``engine.task.program_key``) finds the same programs.
    ``train_steps`` donates its state. ``form``: "population" or "loop" (``over_models``)."""
    return _jitted_programs(_ByProgram(task), family, activation, unroll, per_model_order, compute_dtype, form)


@functools.lru_cache(maxsize=32)
def _jitted_programs(keyed: _ByProgram, family, activation, unroll, per_model_order, compute_dtype, form):
    task = keyed.task
    train_steps = jax.jit(
        make_train_steps(task, family, activation, unroll, per_model_order, compute_dtype, form), donate_argnums=(0,)
    )
    return train_steps, jax.jit(make_evaluate(task, family, activation, unroll, compute_dtype, form))


def eval_indices(n: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """All n examples in evaluation batches: (idx int32[S, B], weight f32[S, B]); padding rows weigh 0."""
    batch = min(batch, n)
    steps = math.ceil(n / batch)
    idx = np.zeros(steps * batch, np.int32)
    idx[:n] = np.arange(n)
    w = np.zeros(steps * batch, np.float32)
    w[:n] = 1.0
    return idx.reshape(steps, batch), w.reshape(steps, batch)


AfterCall = Callable[[TrainState, np.ndarray, int, int], bool]
"""after_call(state, losses f32[n, P] of the call's real steps, n, steps done) -> stop now?"""


def run_steps(
    train_steps: Callable,
    state: TrainState,
    masks,
    lrs,
    data,
    idx: np.ndarray,
    steps_per_call: int,
    *,
    start: int = 0,
    after_call: AfterCall | None = None,
    fetch: Callable[[Any], np.ndarray] = np.asarray,
    layout=None,
) -> tuple[TrainState, int]:
    """Runs minibatches ``idx[start:]`` (int32[N, B] or [N, P, B]) through ``train_steps`` in calls of
    ``steps_per_call``; the last call is padded with steps marked invalid (they change nothing), so every call
    has one compiled shape. ``after_call`` sees each call's real losses and may stop the loop early (the state
    is then exactly that after the returned number of steps). ``layout``: the chunk's compact layout, passed on to
    ``train_steps``. Returns (state, steps done)."""
    n = int(idx.shape[0])
    pad = (-n) % steps_per_call
    padded = np.concatenate([idx, np.zeros((pad,) + idx.shape[1:], np.int32)]) if pad else idx
    valid = np.arange(len(padded)) < n
    step = start
    while step < n:
        state, losses = train_steps(
            state,
            masks,
            lrs,
            data,
            jnp.asarray(padded[step : step + steps_per_call]),
            jnp.asarray(valid[step : step + steps_per_call]),
            layout,
        )
        done = min(steps_per_call, n - step)
        step += done
        if after_call is not None and after_call(state, fetch(losses)[:done], done, step):
            break
    return state, step


class Population(NamedTuple):
    """A chunk's models on the devices: their ``TrainState``, masks, learning rates f32[P] and the compact layout
    of their sparse weights (``engine.layout``; {} when every weight is stepped dense)."""

    state: TrainState
    masks: Mapping[str, jax.Array]
    lrs: jax.Array
    layout: Mapping[str, Any] = {}


@dataclasses.dataclass(frozen=True)
class EpochEnd:
    """What ``PopulationProgram.epochs`` hands ``on_epoch`` after an epoch: the population after it, the mean
    training loss f64[P] of its steps, the validation loss and accuracy f32[P] and the diverged flags bool[P]."""

    epoch: int
    population: Population
    train_loss: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    diverged: np.ndarray


@dataclasses.dataclass(frozen=True)
class EpochStop:
    """What ``PopulationProgram.epochs`` hands ``on_stop`` when ``should_stop`` ends an epoch early: the epoch,
    the steps done in it, their summed losses f64[P] and the population after them."""

    epoch: int
    step: int
    loss_sum: np.ndarray
    population: Population


@dataclasses.dataclass(frozen=True)
class PopulationProgram:
    """The one training program of a chunk of models of one family and activation on a task: stacking and
    initialising them (``stack``, ``init``), the jitted train steps (``train``: calls of ``steps_per_call``
    minibatches through ``run_steps``), evaluation over a whole split (``evaluate``) and the epoch loop of a sweep
    (``epochs``), whose checkpointing, metrics and progress are callbacks. Used by the sweep, the plan's
    calibration, pruning's fine-tune and the bench.

    ``form`` is resolved with ``choose_form`` (auto: the batched program), ``weight_layout`` with
    ``engine.layout.resolve_layout`` (auto: sparse weights stepped compact in float32 batched programs on a CPU).
    ``sharding``: where the models' arrays live (a sharding along the population axis,
    ``engine.devices.shardings``); None places them on the default device."""

    task: Objective
    family: str
    activation: str
    unroll: int = 1
    per_model_order: bool = False
    compute_dtype: str = "float32"
    form: str = "auto"
    steps_per_call: int = 50
    eval_batch_size: int = 250
    sharding: Any = None
    weight_layout: str = "auto"

    @classmethod
    def for_chunk(cls, chunk, task: Objective, train, sharding=None) -> PopulationProgram:
        """The program of ``chunk`` (``engine.population.Chunk``) as the sweep config ``train`` trains it."""
        return cls(
            task,
            chunk.family,
            chunk.activation,
            train.unroll,
            train.per_model_order,
            train.compute_dtype,
            train.program_form,
            train.steps_per_call,
            train.eval_batch_size,
            sharding,
            train.weight_layout,
        )

    @property
    def programs(self) -> tuple[Callable, Callable]:
        """The jitted (train_steps, evaluate) (``jitted_programs``: compiled once per process and shape)."""
        form = choose_form(self.form)
        return jitted_programs(
            self.task, self.family, self.activation, self.unroll, self.per_model_order, self.compute_dtype, form
        )

    def put(self, tree):
        """Host arrays onto the models' devices (``sharding``)."""
        if self.sharding is None:
            return jax.device_put(tree)

        return devices.put(tree, self.sharding)

    def init(self, params, masks, lrs) -> Population:
        """A fresh population (zero Adam moments) of stacked numpy ``params`` and ``masks`` [P, ...] and ``lrs``,
        with the compact layout of its sparse weights when ``weight_layout`` resolves to compact."""
        state = jax.jit(init_train_state, out_shardings=self.sharding)(self.put(params))
        devices = 1 if self.sharding is None else int(np.size(self.sharding.mesh.devices))
        form = choose_form(self.form)
        layout = {}
        if layout_lib.resolve_layout(self.weight_layout, self.compute_dtype, form, devices=devices) == "compact":
            keys = get_family(self.family).weight_keys
            layout = jax.device_put(layout_lib.plan_layout(params, masks, keys, population=form == "population"))
        return Population(state, self.put(masks), self.put(np.asarray(lrs, np.float32)), layout)

    def stack(self, chunk, mask_mode: str = "exact") -> Population:
        """The fresh population of ``chunk``'s members (and ghosts): ``engine.population.stack_chunk``."""

        return self.init(*stack_chunk(chunk, mask_mode))

    def with_state(self, population: Population, state: TrainState) -> Population:
        """``population`` with a host ``state`` (a resumed checkpoint) placed on its devices."""
        return population._replace(state=self.put(state))

    def train(
        self, population: Population, data, idx: np.ndarray, *, start: int = 0, after_call: AfterCall | None = None
    ) -> tuple[Population, int]:
        """Trains on the minibatches ``idx[start:]`` (``run_steps``); returns (the population, steps done)."""

        state, step = run_steps(
            self.programs[0],
            population.state,
            population.masks,
            population.lrs,
            data,
            idx,
            self.steps_per_call,
            start=start,
            after_call=after_call,
            fetch=devices.fetch,
            layout=population.layout,
        )
        return population._replace(state=state), step

    def evaluate(self, params, masks, data) -> tuple[np.ndarray, np.ndarray]:
        """(loss f32[P], accuracy f32[P]) of stacked ``params`` on every example of ``data`` (on the devices)."""

        n = int(np.shape(next(iter(data.values())))[0])
        idx, weight = eval_indices(n, self.eval_batch_size)
        loss, acc = self.programs[1](params, masks, data, jnp.asarray(idx), jnp.asarray(weight))
        return devices.fetch(loss), devices.fetch(acc)

    def epochs(
        self,
        population: Population,
        train_data,
        val_data,
        order: Callable[[int], np.ndarray],
        first: int,
        last: int,
        *,
        start_step: int = 0,
        loss_sum: np.ndarray | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_epoch_start: Callable[[int], None] | None = None,
        on_steps: Callable[[int], None] | None = None,
        on_stop: Callable[[EpochStop], None] | None = None,
        on_epoch: Callable[[EpochEnd], None] | None = None,
    ) -> tuple[Population, int | None]:
        """Trains epochs ``first``..``last`` (the first from ``start_step``, its earlier steps' losses summed in
        ``loss_sum``), each on the minibatches ``order(epoch)`` and evaluated on ``val_data`` after it
        (``on_epoch``). ``on_steps(n)`` follows every call; when ``should_stop()`` turns true within an epoch,
        ``on_stop`` gets the state after the last call and the loop ends, as it does after a whole epoch.
        Returns (the population, the epoch it stopped in, or None when it trained through ``last``)."""
        models = int(np.shape(population.lrs)[0])
        loss_sum = np.asarray(loss_sum, np.float64) if loss_sum is not None else np.zeros(models)
        epoch = first
        while epoch <= last:
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            idx = order(epoch)
            steps = int(idx.shape[0])

            def after_call(_state, losses, n, step):
                nonlocal loss_sum
                loss_sum += losses.sum(axis=0)
                if on_steps is not None:
                    on_steps(n)
                return should_stop() and step < steps

            population, step = self.train(population, train_data, idx, start=start_step, after_call=after_call)
            if step < steps:
                if on_stop is not None:
                    on_stop(EpochStop(epoch, step, loss_sum, population))
                return population, epoch

            val_loss, val_acc = self.evaluate(population.state.params, population.masks, val_data)
            if on_epoch is not None:
                on_epoch(
                    EpochEnd(
                        epoch, population, loss_sum / steps, val_loss, val_acc, devices.fetch(population.state.diverged)
                    )
                )
            epoch, start_step, loss_sum = epoch + 1, 0, np.zeros(models)
            if should_stop() and epoch <= last:
                return population, epoch - 1
        return population, None
