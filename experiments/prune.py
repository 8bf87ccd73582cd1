"""Magnitude-prunes every trained model of a finished sweep, evaluates it, fine-tunes it briefly, evaluates again.

  python -m experiments.rad_sweep --flagfile=experiments/flags/rad_smoke.flags --save_final_params --workdir=runs/w
  python -m experiments.prune --workdir=runs/w [--fractions=0.1,0.2,...,1.0] [--scopes=global,per_block,hidden] \
      [--finetune_steps=200] [--out=runs/w]

The sweep must have saved its final weights (``--save_final_params``; ah_sweep saves them when it scores).
The task data, members and chunks are re-created from the workdir's run.json (``experiments/recorded_run.py``);
flags the run does not record, such as ``--cache_dir``, may be given. Every model is pruned one-shot at
every (scope, fraction) (``sparse_rnn_jax/pruning.py``); all variants of a chunk train as one vmapped
population. Writes into --out (default: the workdir, where ``experiments.analyze`` finds it):

  pruning.parquet           one row per (model, scope, fraction), scope "none" = the unpruned control
  pruning_summary.csv       per family and scope: the largest fraction that keeps validation accuracy within
                            1 percentage point, and loss within 5 %, of the unpruned model, without and with fine-tune
  pruning.md                that table and the figure, as the analysis report shows them
  figures/pruning_<task>.png  mean validation accuracy (or loss) against the fraction pruned

A rerun with the same settings skips the models already in pruning.parquet (it is rewritten after every chunk).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from absl import flags

from experiments import common, recorded_run  # (recorded_run imports sweep_cli, which defines --workdir)
from sparse_rnn_jax.pruning import DEFAULT_FRACTIONS, SCOPES, FinetuneConfig, metrics_of, prune_and_finetune, summary_table

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output folder (default: --workdir).")
flags.DEFINE_list("fractions", [f"{f:g}" for f in DEFAULT_FRACTIONS], "Fractions of each model's trainable weights to prune.")
flags.DEFINE_list("scopes", list(SCOPES), f"Pruning scopes: any of {SCOPES}.")
flags.DEFINE_integer("finetune_steps", 200, "Minibatch Adam steps after pruning (0: evaluate only).")
flags.DEFINE_integer("finetune_batch_size", None, "Sequences per fine-tune minibatch (default: the sweep's --batch_size).")
flags.DEFINE_integer("finetune_seed", 0, "Seed of the fine-tune's minibatch order.")
flags.DEFINE_integer("max_models_per_program", None,
                     "Most (model, variant) rows per compiled program (default: the sweep's --max_models_per_chunk).")

PRUNING_FILE = "pruning.parquet"
SETTINGS_FILE = "pruning.json"


def _fractions() -> list[float]:
    try:
        fractions = sorted({float(f) for f in FLAGS.fractions})
    except ValueError:
        common.fail(f"--fractions must be numbers, got {FLAGS.fractions}")
    if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
        common.fail(f"--fractions must be in (0, 1], got {FLAGS.fractions}")
    return fractions


def _validate() -> tuple[list[float], list[str]]:
    if not FLAGS.workdir:
        common.fail("--workdir is required (a finished sweep's workdir)")
    fractions = _fractions()
    bad = [s for s in FLAGS.scopes if s not in SCOPES]
    if bad or not FLAGS.scopes:
        common.fail(f"--scopes must be among {SCOPES}, got {FLAGS.scopes}")
    if FLAGS.finetune_steps < 0:
        common.fail(f"--finetune_steps must be >= 0, got {FLAGS.finetune_steps}")
    for name in ("finetune_batch_size", "max_models_per_program"):
        if FLAGS[name].value is not None and FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    return fractions, [s for s in SCOPES if s in FLAGS.scopes]


def main(argv):
    fractions, scopes = _validate()
    run = recorded_run.recreate_run(FLAGS.workdir, argv)
    from sparse_rnn_jax.sweep import load_final_params

    missing = [c.key for c in run.chunks if not (run.workdir / "final_params" / c.key).exists()]
    if missing:
        common.fail(f"--workdir {run.workdir}: no saved final weights for chunk(s) {', '.join(missing[:3])}; "
                    "rerun the sweep with --save_final_params (and --overwrite)")
    print(run.describe(), file=sys.stderr)
    out = Path(FLAGS.out or FLAGS.workdir)
    out.mkdir(parents=True, exist_ok=True)
    ft = FinetuneConfig(
        steps=FLAGS.finetune_steps, batch_size=FLAGS.finetune_batch_size or run.cfg.batch_size,
        eval_batch_size=run.cfg.eval_batch_size, seed=FLAGS.finetune_seed,
        max_models=FLAGS.max_models_per_program or run.cfg.max_models_per_chunk, steps_per_call=run.cfg.steps_per_call,
        unroll=run.cfg.unroll,
    )
    settings = {"workdir": str(run.workdir.resolve()), "fractions": fractions, "scopes": scopes, "finetune_steps": ft.steps,
                "finetune_batch_size": ft.batch_size, "finetune_seed": ft.seed}
    path = out / PRUNING_FILE
    done = pd.DataFrame()
    if path.is_file() and (out / SETTINGS_FILE).is_file() and json.loads((out / SETTINGS_FILE).read_text()) == settings:
        done = pd.read_parquet(path)
        print(f"{path}: {done['model_id'].nunique()} models already pruned with these settings; continuing", file=sys.stderr)
    common.write_json_atomic(settings, out / SETTINGS_FILE)

    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from sparse_rnn_jax.results import write_parquet_atomic
    from sparse_rnn_jax.sweep import POPULATION_AXIS, population_mesh

    data = run.task_data()
    mesh = population_mesh()
    replicated, by_model = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(POPULATION_AXIS))
    train = {k: jax.device_put(np.asarray(v), replicated) for k, v in data.train.items()}
    val = {k: jax.device_put(np.asarray(v), replicated) for k, v in data.val.items()}
    frames = [done] if len(done) else []
    t0 = time.time()
    for i, chunk in enumerate(run.chunks):
        if len(done) and {m.model_id for m in chunk.members} <= set(done["model_id"]):
            continue
        params, masks = load_final_params(run.workdir, chunk, run.cfg.mask_mode)
        print(f"chunk {i + 1}/{len(run.chunks)} ({chunk.family}, h<={chunk.padded_hidden_dim}, {len(chunk.members)} models): "
              f"{len(scopes) * len(fractions) + 1} variants each, {ft.steps} fine-tune steps", flush=True)
        frames.append(prune_and_finetune(
            chunk.members, params, masks, chunk.family, chunk.activation, data.task, train, val, ft, scopes, fractions,
            put=lambda tree: jax.device_put(tree, by_model), device_multiple=mesh.devices.size,
            log=lambda s: print(f"  {s.strip()}", flush=True)))
        df = pd.concat(frames, ignore_index=True).sort_values(["model_id", "scope", "fraction"]).reset_index(drop=True)
        write_parquet_atomic(df, path)
    df = pd.read_parquet(path)
    print(f"pruned {df['model_id'].nunique()} models in {time.time() - t0:.0f} s")
    write_outputs(df, out)


def write_outputs(df: pd.DataFrame, out: Path) -> None:
    """pruning_summary.csv, pruning.md and the figure from ``pruning.parquet``'s rows; prints the table."""
    from sparse_rnn_jax.analysis.pruning_report import pruning_section, summary_markdown, tolerance_text

    table = summary_table(df)
    table.to_csv(out / "pruning_summary.csv", index=False)
    (out / "pruning.md").write_text(pruning_section(df, out))
    metrics = metrics_of(df)
    print(f"Largest pruned fraction keeping the {tolerance_text(metrics)} (median over models that learned [min-max]):")
    print(summary_markdown(table, metrics))
    print(f"written: {out / PRUNING_FILE}, {out / 'pruning_summary.csv'}, {out / 'pruning.md'}, {out / 'figures'}/pruning_*.png")


if __name__ == "__main__":
    recorded_run.run(main)
