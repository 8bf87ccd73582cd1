"""Orbax checkpoints of the chunk in training, with a JSON record of where the sweep stands."""

from __future__ import annotations

import os
from typing import Any

import jax
import optax
import orbax.checkpoint as ocp

from sparse_rnn_jax.engine.programs import TrainState


def _to_tree(state: TrainState) -> dict:
    adam = state.opt_state
    return {
        "params": dict(state.params),
        "adam": {"count": adam.count, "mu": dict(adam.mu), "nu": dict(adam.nu)},
        "diverged": state.diverged,
    }


def _from_tree(tree: dict) -> TrainState:
    adam = optax.ScaleByAdamState(count=tree["adam"]["count"], mu=tree["adam"]["mu"], nu=tree["adam"]["nu"])
    return TrainState(tree["params"], adam, tree["diverged"])


class SweepCheckpointer:
    """Keeps the two latest checkpoints under ``directory``; each holds a TrainState and a JSON ``meta``."""

    def __init__(self, directory: str | os.PathLike):
        self._manager = ocp.CheckpointManager(
            os.fspath(directory),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False, create=True),
        )

    def latest_meta(self) -> dict[str, Any] | None:
        """The JSON record of the latest checkpoint (chunk, epoch, step, loss sums), or None."""
        step = self._manager.latest_step()
        if step is None:
            return None
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"])

    def save(self, state: TrainState, meta: dict[str, Any]) -> None:
        """Saves ``state`` with its JSON ``meta`` as the next step and waits until it is written."""
        step = (self._manager.latest_step() or 0) + 1
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(_to_tree(state)), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, like: TrainState) -> TrainState:
        """Restores the latest state into the shapes, dtypes and shardings of ``like``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _to_tree(like))
        restored = self._manager.restore(
            self._manager.latest_step(), args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
        return _from_tree(restored["state"])

    def close(self) -> None:
        """Releases the checkpoint manager."""
        self._manager.close()
