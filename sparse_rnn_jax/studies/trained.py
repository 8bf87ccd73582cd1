"""A finished sweep's trained models as Flax modules: ``load_member(workdir, model_id)``.

The weights are the member's chunk's final checkpoint (``engine.sweep.load_final_params`` reads it, as pruning
does, checked against its recorded sha256, with the masks its seed draws). The member's arrays are cut from its
chunk's padded ones to its own hidden size; every dropped entry must be padding (0) or the weights are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparse_rnn_jax.engine.checkpoint import CheckpointError
from sparse_rnn_jax.engine.sweep import load_final_params
from sparse_rnn_jax.models.modules import RecurrentModel, module_class, trim_padding
from sparse_rnn_jax.run.train import RunError, load_run


def load_member(workdir: str | Path, model_id: int, *, unroll: int = 1) -> RecurrentModel:
    """The trained model ``model_id`` of the complete sweep in ``workdir`` as its family's module (``BlockRNN``,
    ``GRU``, ...; ``models.modules``) at its true hidden size. A ``RunError`` (one line) for an unfinished run, an
    unknown id, a missing or damaged final checkpoint, or saved weights that are not the member's (non-zero padding)."""
    run = load_run(workdir)
    found = [(c, i) for c in run.chunks for i, m in enumerate(c.members) if m.model_id == int(model_id)]
    if not found:
        ids = sorted(m.model_id for m in run.members)
        raise RunError(f"workdir {workdir}: no model {model_id} (its models are {ids[0]}..{ids[-1]})")
    chunk, i = found[0]
    member = chunk.members[i]
    try:
        loaded = load_final_params(run.workdir, chunk, run.config.train.mask_mode)
    except CheckpointError as e:
        raise RunError(f"workdir {workdir}: {e}") from None
    if loaded is None:
        raise RunError(f"workdir {workdir}: chunk {chunk.key} has no final checkpoint (its training did not finish)")
    params = {k: np.asarray(v[i]) for k, v in loaded[0].items()}
    padded_masks = {k: np.asarray(v[i]) for k, v in loaded[1].items()}
    spec = member.spec
    try:
        params, masks = trim_padding(spec, params, padded_masks)
    except ValueError as e:
        raise RunError(f"workdir {workdir}: model {model_id}'s saved weights are not its own: {e}") from None
    return module_class(spec.family).from_arrays(spec, params, masks, unroll=unroll)
