"""Pruning a finished sweep run: every chunk's trained weights, every (scope, fraction), evaluated and
fine-tuned, with ``pruning.parquet`` rewritten after each chunk (a rerun with the same settings continues)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from sparse_rnn_jax.engine.checkpoint import CheckpointError, final_entries
from sparse_rnn_jax.engine.devices import population_mesh, shardings
from sparse_rnn_jax.engine.sweep import load_final_params
from sparse_rnn_jax.engine.workdir import absolute, write_json_atomic, write_parquet_atomic
from sparse_rnn_jax.run.train import RecordedRun, RunError
from sparse_rnn_jax.studies.pruning.finetune import FinetuneConfig, prune_and_finetune

PRUNING_FILE = "pruning.parquet"
SETTINGS_FILE = "pruning.json"


def missing_final_params(run: RecordedRun) -> list[str]:
    """Keys of the run's chunks without a final checkpoint (their trained weights); RunError when the manifest is
    damaged."""
    try:
        finals = final_entries(absolute(run.workdir))
    except CheckpointError as e:
        raise RunError(f"workdir {run.workdir}: {e}") from None
    return [c.key for c in run.chunks if c.key not in finals]


def prune_run(
    run: RecordedRun,
    out: Path,
    ft: FinetuneConfig,
    scopes: Sequence[str],
    fractions: Sequence[float],
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Prunes, evaluates and fine-tunes every model of ``run`` (``finetune.prune_and_finetune`` per chunk);
    ``out/pruning.parquet`` keeps the rows (models already there with the same settings are skipped)."""
    import jax

    settings = {
        "workdir": str(Path(run.workdir).resolve()),
        "fractions": list(fractions),
        "scopes": list(scopes),
        "finetune_steps": ft.steps,
        "finetune_batch_size": ft.batch_size,
        "finetune_seed": ft.seed,
    }
    path = out / PRUNING_FILE
    done = pd.DataFrame()
    if path.is_file() and (out / SETTINGS_FILE).is_file() and json.loads((out / SETTINGS_FILE).read_text()) == settings:
        done = pd.read_parquet(path)
        log(f"{path}: {done['model_id'].nunique()} models already pruned with these settings; continuing")
    write_json_atomic(settings, out / SETTINGS_FILE)
    data = run.task_data(log)
    mesh = population_mesh()
    replicated, by_model = shardings(mesh)
    train = {k: jax.device_put(np.asarray(v), replicated) for k, v in data.train.items()}
    val = {k: jax.device_put(np.asarray(v), replicated) for k, v in data.val.items()}
    frames = [done] if len(done) else []
    for i, chunk in enumerate(run.chunks):
        if len(done) and {m.model_id for m in chunk.members} <= set(done["model_id"]):
            continue
        params, masks = load_final_params(run.workdir, chunk, run.config.train.mask_mode)
        log(
            f"chunk {i + 1}/{len(run.chunks)} ({chunk.family}, h<={chunk.padded_hidden_dim}, "
            f"{len(chunk.members)} models): "
            f"{len(scopes) * len(fractions) + 1} variants each, {ft.steps} fine-tune steps"
        )
        frames.append(
            prune_and_finetune(
                chunk.members,
                params,
                masks,
                chunk.family,
                chunk.activation,
                data.objective,
                train,
                val,
                ft,
                scopes,
                fractions,
                sharding=by_model,
                device_multiple=mesh.devices.size,
                log=lambda s: log(f"  {s.strip()}"),
            )
        )
        df = pd.concat(frames, ignore_index=True).sort_values(["model_id", "scope", "fraction"]).reset_index(drop=True)
        write_parquet_atomic(df, path)
    return pd.read_parquet(path)
