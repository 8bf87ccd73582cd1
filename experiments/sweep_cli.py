"""Flags and driver shared by the sweep entry points (``rad_sweep``, ``ah_sweep``).

A sweep's members: ``--num_models`` networks drawn by ``--sampler`` (ids 0..num_models-1), then every
named configuration of ``--configs`` repeated ``--config_repeats`` times (each repeat its own seed), at
``--budget`` trainable weights (or ``--hidden_dim``).

The workdir holds ``run.json`` (flags, versions, devices, wall time, status), ``results.parquet`` and
``checkpoints/``. Rerunning the same command resumes; a workdir of different flags is refused unless
``--overwrite``.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from absl import flags
from etils import epath

from experiments import common
from sparse_rnn_jax.cells import CELLS
from sparse_rnn_jax.configs import NAMED_CONFIGS
from sparse_rnn_jax.leaky import LEAK_MODES, LeakySpec
from sparse_rnn_jax.population import Member, model_seed
from sparse_rnn_jax.results import read_parquet
from sparse_rnn_jax.samplers import SAMPLERS, SamplerConfig, named_specs, sample_specs
from sparse_rnn_jax.solvers import BudgetError, hidden_dim_for_budget
from sparse_rnn_jax.spec import ACTIVATIONS, BLOCKS, GRAPH_KINDS, GraphSpec
from sparse_rnn_jax.sweep import SweepConfig, SweepInterrupted, describe_plan, run_sweep
from sparse_rnn_jax.tasks import Task

FLAGS = flags.FLAGS

flags.DEFINE_string("workdir", None, "Folder for run.json, results.parquet and checkpoints (required).")
flags.DEFINE_bool("overwrite", False, "Replace the results of a different run in --workdir.")
flags.DEFINE_integer("seed", 0, "Sweep seed: sampled hyperparameters, model seeds and minibatch order.")
flags.DEFINE_integer("num_models", 32, "Networks drawn by --sampler.")
flags.DEFINE_string("sampler", "normal_size", f"Hyperparameter sampler: one of {SAMPLERS}.")
flags.DEFINE_float("budget", None, "Trainable weights (biases excluded) for normal_size and the named configs.")
flags.DEFINE_integer("hidden_dim", None, "Hidden size of the named configs when no --budget is given.")
flags.DEFINE_float("hidden_mean", 900.0, "Mean of the hidden size for --sampler=normal.")
flags.DEFINE_float("hidden_std", 400.0, "Std of the hidden size for --sampler=normal.")
flags.DEFINE_list("configs", [], f"Named configurations and baseline cells to add: any of {NAMED_CONFIGS + CELLS}.")
flags.DEFINE_integer("config_repeats", 1, "Seeds per named configuration.")
flags.DEFINE_float("config_lr", 1e-4, "Learning rate of the named configurations (the reference's 1e-4).")
flags.DEFINE_float("uniform_density", 0.2, "Density of every block of the 'uniform' named config.")
flags.DEFINE_string("activation", "relu", f"Hidden activation: one of {ACTIVATIONS}.")
flags.DEFINE_enum("hh_graph", "none", ("none",) + GRAPH_KINDS,
                  "Draw the sampled models' hh masks as random graphs (er, ws, ba; sparse_rnn_jax/graphs.py).")
flags.DEFINE_float("hh_graph_beta", 0.1, "Rewiring probability of --hh_graph=ws.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("epochs", 25, "Training epochs.")
flags.DEFINE_integer("batch_size", 16, "Sequences per minibatch.")
flags.DEFINE_integer("eval_batch_size", 250, "Sequences per evaluation batch.")
flags.DEFINE_bool("per_model_order", False, "Give each model its own minibatch order (default: one shared stream).")
flags.DEFINE_integer("max_buckets", 12, "Hidden-size buckets per model family (each compiles once).")
flags.DEFINE_integer("max_models_per_chunk", 256, "Models per compiled program (bounds memory).")
flags.DEFINE_integer("steps_per_call", 50, "Minibatches per jitted call (progress and stop granularity).")
flags.DEFINE_enum("mask_mode", "exact", ["exact", "bernoulli"], "Exact trainable counts, or Bernoulli masks.")
flags.DEFINE_integer("unroll", 1, "lax.scan unroll of the time loop.")
flags.DEFINE_bool("save_final_params", False, "Keep every chunk's trained weights in WORKDIR/final_params "
                  "(for experiments.prune and experiments.diagnose).")
flags.DEFINE_enum("leak", "none", ("none",) + LEAK_MODES, "Make every block RNN (sampled and named) a leaky "
                  "integrator h' = (1 - alpha) h + alpha act(...): alpha fixed, learned per unit, or input-gated (sparse_rnn_jax/leaky.py).")
flags.DEFINE_float("leak_alpha", 0.5, "--leak=fixed: the fixed alpha in (0, 1]; learned, gated: the initial alpha in (0, 1).")
flags.register_multi_flags_validator(
    ["leak", "leak_alpha"], lambda f: f["leak"] == "none" or 0 < f["leak_alpha"] < 1 or (f["leak"] == "fixed" and f["leak_alpha"] == 1),
    "--leak_alpha must be in (0, 1) (or exactly 1 with --leak=fixed)")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_enum("matmul_precision", None, ["default", "high", "highest", "bfloat16", "tensorfloat32", "float32"],
                  "jax_default_matmul_precision on GPU/TPU (e.g. bfloat16 for speed on TPU; CPU computes in float32).")
flags.DEFINE_bool("distributed", False, "Initialise jax.distributed (multi-host: on Cloud TPU the topology is "
                  "auto-detected; elsewhere give the three flags below). Implied by --coordinator_address.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 for jax.distributed.")
flags.DEFINE_integer("num_processes", None, "Processes in a jax.distributed run.")
flags.DEFINE_integer("process_id", None, "This process' index in a jax.distributed run.")

# Flags that do not change what a run computes (a rerun with other values resumes the same run).
NON_DEFINING = {"workdir", "overwrite", "progress", "cache_dir", "flagfile", "distributed", "coordinator_address",
                "num_processes", "process_id"}


def init_distributed() -> None:
    """Joins a multi-process JAX run when asked (before any device is touched). On CPU the processes talk
    through JAX's gloo collectives, so the multi-host path runs (and is tested) on one machine."""
    given = [FLAGS.coordinator_address is not None, FLAGS.num_processes is not None, FLAGS.process_id is not None]
    if not (FLAGS.distributed or any(given)):
        return
    if any(given) and not all(given):
        common.fail("--coordinator_address, --num_processes and --process_id go together")
    if all(given) and not 0 <= FLAGS.process_id < FLAGS.num_processes:
        common.fail(f"--process_id must be in [0, --num_processes), got {FLAGS.process_id} of {FLAGS.num_processes}")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if all(given):
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    else:
        jax.distributed.initialize()


@dataclasses.dataclass(frozen=True)
class TaskData:
    task: Task
    train: Mapping[str, np.ndarray]
    val: Mapping[str, np.ndarray]
    info: dict


def validate_common() -> None:
    """Checks every shared flag before any work; exits 2 with a one-line error."""
    if not FLAGS.workdir:
        common.fail("--workdir is required")
    for name in ("num_models", "config_repeats"):
        if FLAGS[name].value < 0:
            common.fail(f"--{name} must be >= 0, got {FLAGS[name].value}")
    for name in ("epochs", "batch_size", "eval_batch_size", "max_buckets", "max_models_per_chunk", "steps_per_call", "unroll"):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    if FLAGS.sampler not in SAMPLERS:
        common.fail(f"--sampler must be one of {SAMPLERS}, got {FLAGS.sampler!r}")
    bad = [c for c in FLAGS.configs if c not in NAMED_CONFIGS + CELLS]
    if bad:
        common.fail(f"--configs: unknown config {bad[0]!r}; expected any of {NAMED_CONFIGS + CELLS}")
    if FLAGS.activation not in ACTIVATIONS:
        common.fail(f"--activation must be one of {ACTIVATIONS}, got {FLAGS.activation!r}")
    if not 0.0 < FLAGS.uniform_density <= 1.0:
        common.fail(f"--uniform_density must be in (0, 1], got {FLAGS.uniform_density}")
    if not FLAGS.config_lr > 0:
        common.fail(f"--config_lr must be > 0, got {FLAGS.config_lr}")
    if FLAGS.budget is not None and not FLAGS.budget > 0:
        common.fail(f"--budget must be > 0, got {FLAGS.budget}")
    if FLAGS.hidden_dim is not None and FLAGS.hidden_dim < 1:
        common.fail(f"--hidden_dim must be >= 1, got {FLAGS.hidden_dim}")
    if FLAGS.sampler == "normal_size" and FLAGS.num_models > 0 and FLAGS.budget is None:
        common.fail("--sampler=normal_size needs --budget")
    if FLAGS.configs and FLAGS.config_repeats > 0 and FLAGS.budget is None and FLAGS.hidden_dim is None:
        common.fail("--configs need --budget (or --hidden_dim)")
    if "balanced" in FLAGS.configs and FLAGS.budget is None:
        common.fail("--configs=balanced needs --budget")
    if FLAGS.num_models + len(FLAGS.configs) * FLAGS.config_repeats == 0:
        common.fail("nothing to train: --num_models is 0 and no --configs")
    if FLAGS.hidden_std < 0:
        common.fail(f"--hidden_std must be >= 0, got {FLAGS.hidden_std}")


def check_budget(input_dim: int, output_dim: int) -> None:
    """Refuses a budget too small for the dims, for the named configs and for the sampler."""
    if FLAGS.budget is None:
        return
    try:
        if FLAGS.sampler == "normal_size" and FLAGS.num_models > 0:
            # The sparsest draw the sampler can make (densities 0.02) must fit.
            hidden_dim_for_budget({b: 0.02 for b in BLOCKS}, input_dim, output_dim, FLAGS.budget)
        for c in FLAGS.configs:
            named_specs([c], input_dim, output_dim, budget=FLAGS.budget, uniform_density=FLAGS.uniform_density)
    except (BudgetError, ValueError) as e:
        common.fail(f"--budget: {e}")


def build_members(input_dim: int, output_dim: int) -> list[Member]:
    sampler_cfg = SamplerConfig(hidden_mean=FLAGS.hidden_mean, hidden_std=FLAGS.hidden_std, activation=FLAGS.activation)
    specs = sample_specs(FLAGS.sampler, FLAGS.num_models, FLAGS.seed, input_dim, output_dim, FLAGS.budget, sampler_cfg).specs
    if FLAGS.hh_graph != "none":
        specs = [s.replace(hh_graph=GraphSpec(FLAGS.hh_graph, FLAGS.hh_graph_beta)) for s in specs]
    members = [Member(i, s, model_seed(FLAGS.seed, i), FLAGS.sampler) for i, s in enumerate(specs)]
    named = named_specs(
        FLAGS.configs, input_dim, output_dim, budget=FLAGS.budget, hidden_dim=FLAGS.hidden_dim,
        learning_rate=FLAGS.config_lr, uniform_density=FLAGS.uniform_density, activation=FLAGS.activation,
    ) if FLAGS.configs else []
    for _ in range(FLAGS.config_repeats):
        for s in named:
            i = len(members)
            members.append(Member(i, s, model_seed(FLAGS.seed, i), s.name))
    if FLAGS.leak != "none":  # the block RNNs become leaky (same seeds, so the same block weights); cells stay
        members = [dataclasses.replace(m, spec=LeakySpec(m.spec, FLAGS.leak, FLAGS.leak_alpha)) if m.spec.family == "block"
                   else m for m in members]
    return members


def defining_flags(module_flags: list[str]) -> dict:
    return {name: FLAGS[name].value for name in sorted(module_flags) if name not in NON_DEFINING}


def check_workdir(workdir: epath.Path, defining: dict) -> tuple[dict | None, bool]:
    """Refuses (exit 2) a workdir of different flags unless --overwrite. Returns (the previous run.json
    when resuming, whether the workdir must be cleared first); nothing is changed here."""
    if workdir.exists() and not workdir.is_dir():
        common.fail(f"--workdir {workdir} exists and is not a folder")
    run_json = workdir / "run.json"
    if not run_json.is_file():
        if (workdir / "results.parquet").exists() or (workdir / "checkpoints").exists():
            if not FLAGS.overwrite:
                common.fail(f"--workdir {workdir} holds results without run.json; use --overwrite or another --workdir")
            return None, True
        return None, False
    try:
        previous = json.loads(run_json.read_text())
    except (OSError, ValueError) as e:
        common.fail(f"--workdir {workdir}: unreadable run.json ({e}); use --overwrite or another --workdir")
    old = previous.get("flags", {})
    # A flag the older run did not record yet counts as having had its default value.
    old = {**{k: FLAGS[k].default for k in defining if k not in old}, **old}
    diff = sorted(k for k in set(old) | set(defining) if old.get(k) != defining.get(k))
    if diff:
        if not FLAGS.overwrite:
            shown = ", ".join(f"--{k}={old.get(k)!r} there vs {defining.get(k)!r} now" for k in diff[:3])
            common.fail(f"--workdir {workdir} holds results of different flags ({shown}); use --overwrite or another --workdir")
        return None, True
    return previous, False


def _clear(workdir: epath.Path) -> None:
    """Removes what a previous run wrote (only the run's own files; anything else stays)."""
    for name in ("results.parquet", "scores.parquet", "run.json"):
        if (workdir / name).exists():
            (workdir / name).unlink()
    for name in ("checkpoints", "final_params"):
        if (workdir / name).exists():
            (workdir / name).rmtree()


class StopFlag:
    """Set by SIGTERM/SIGINT; the sweep checkpoints and stops at its next step boundary."""

    def __init__(self):
        self.stop = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.stop:  # a second signal: stop now
            raise KeyboardInterrupt
        self.stop = True
        print(f"\nreceived signal {signum}: saving a checkpoint and stopping (send again to abort)", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        return self.stop


def summary_table(per_model) -> str:
    """Minimum validation loss per hidden-proportion and model-density bucket in the paper's Table III/IV
    form, with the analysis' one ``uc`` rule (``sparse_rnn_jax.analysis.convergence``)."""
    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.analysis.tables import BUCKET_LABELS, bucket_summary, cell_text

    models, _ = classify(per_model)
    rows = {"hidden_proportion": "Hidden Proportion", "model_density": "Model Density (sparsity)"}
    table = {}
    for column, label in rows.items():
        summary = bucket_summary(models, column)
        table[label] = [f"{cell_text(r)} (n={int(r['n'])})" if r["n"] else cell_text(r) for _, r in summary.iterrows()]
    width = max(len(c) for c in sum(table.values(), []) + list(BUCKET_LABELS)) + 2
    lines = [f"{'':<26}" + "".join(f"{n:>{width}}" for n in BUCKET_LABELS)]
    lines += [f"{label:<26}" + "".join(f"{c:>{width}}" for c in cells) for label, cells in table.items()]
    return "\n".join(lines)


def run_sweep_main(
    dims: Callable[[], tuple[int, int]],
    load_task_data: Callable[[], TaskData],
    module_flags: list[str],
    argv,
    *,
    save_final_params: bool = False,
    after_training: Callable[[TaskData, list[Member], SweepConfig, Path, Callable[[], bool]], None] | None = None,
) -> None:
    """Validates every flag (exit 2 before any work), checks the workdir, loads the data, trains
    (resuming where a previous run stopped) and prints the summary.

    dims: (input_dim, output_dim) from the flags alone, for the budget checks before any data is loaded.
    save_final_params / after_training: keep each chunk's trained weights and run a step on them after
    training (environment scoring); ``after_training`` may raise SweepInterrupted.
    """
    common.check_no_positional(argv)
    validate_common()
    init_distributed()
    if FLAGS.matmul_precision:
        import jax

        jax.config.update("jax_default_matmul_precision", FLAGS.matmul_precision)
    check_budget(*dims())
    workdir = epath.Path(FLAGS.workdir)
    defining = defining_flags(module_flags)
    previous, clear = check_workdir(workdir, defining)
    import jax

    lead = jax.process_index() == 0

    data = load_task_data()
    task = data.task
    members = build_members(task.input_dim, task.output_dim)
    cfg = SweepConfig(
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, eval_batch_size=FLAGS.eval_batch_size, seed=FLAGS.seed,
        per_model_order=FLAGS.per_model_order, max_buckets=FLAGS.max_buckets,
        max_models_per_chunk=FLAGS.max_models_per_chunk, steps_per_call=FLAGS.steps_per_call,
        mask_mode=FLAGS.mask_mode, unroll=FLAGS.unroll, save_final_params=save_final_params or FLAGS.save_final_params,
    )
    _, efficiency = describe_plan(members, cfg, jax.device_count())
    if clear and lead:
        _clear(workdir)
    record = {
        "flags": defining,
        "versions": common.package_versions(),
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
        "platform": jax.default_backend(),
        "task": task.name,
        "data": data.info,
        "num_models": len(members),
        "padding_efficiency": efficiency,
        "wall_time_s": (previous or {}).get("wall_time_s", 0.0),
        "status": "running",
    }
    if lead:
        common.write_json_atomic(record, workdir / "run.json")
    stop = StopFlag()
    t0 = time.time()
    record["status"] = "failed"
    try:
        frame = run_sweep(members, task, data.train, data.val, cfg, workdir, should_stop=stop, log=print, progress=FLAGS.progress)
        if after_training is not None:
            after_training(data, members, cfg, workdir, stop)
        record["status"] = "complete"
    except SweepInterrupted as e:
        record["status"] = "interrupted"
        print(f"interrupted: {e}. Rerun the same command to resume.", file=sys.stderr)
    finally:
        record["wall_time_s"] += time.time() - t0
        if lead:
            common.write_json_atomic(record, workdir / "run.json")
    if record["status"] != "complete":
        sys.exit(3)
    if lead:
        print_summary(frame, task, workdir, record)


def print_summary(frame, task: Task, workdir: epath.Path, record: dict) -> None:
    from sparse_rnn_jax.results import final_per_model

    per_model = final_per_model(frame)
    print()
    print(f"{len(per_model)} models x {int(frame['epoch'].max())} epochs in {record['wall_time_s']:.0f} s "
          f"({record['platform']}, {len(record['devices'])} device(s))")
    print("Minimum validation loss (mean per bucket, the paper's Table III/IV form; uc = unstable convergence):")
    print(summary_table(per_model))
    n_div = int(per_model["diverged"].sum())
    final = per_model["final_val_loss"]
    line = f"diverged: {n_div}/{len(per_model)}"
    if np.isfinite(task.chance_loss):
        line += f"; final validation loss below chance (ln {task.output_dim} = {task.chance_loss:.3f}): {int((final < task.chance_loss).sum())}/{len(per_model)}"
    print(line)
    best = per_model.loc[per_model["min_val_loss"].idxmin()]
    msg = f"best model: id {int(best['model_id'])} ({best['config']}, h={int(best['hidden_dim'])}, hidden proportion {best['hidden_proportion']:.2f}) min val loss {best['min_val_loss']:.3f}"
    if task.has_accuracy:
        msg += f", best val accuracy {per_model['best_val_accuracy'].max():.1%}"
    print(msg)
    scores_path = workdir / "scores.parquet"
    if scores_path.is_file():
        scores = read_parquet(scores_path).merge(per_model[["model_id", "config", "hidden_proportion", "min_val_loss"]], on="model_id")
        print(f"environment scores ({int(scores['eval_episodes'].iloc[0])} episodes per model):")
        cols = ["model_id", "config", "hidden_proportion", "min_val_loss", "eval_return_mean", "eval_success_rate", "d4rl_score"]
        print(scores.sort_values("eval_return_mean", ascending=False)[cols].head(10).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    named = per_model[per_model["config"].isin(NAMED_CONFIGS + CELLS)]
    if len(named):
        columns = dict(models=("model_id", "size"), hidden_dim=("hidden_dim", "first"),
                       hidden_proportion=("hidden_proportion", "first"), min_val_loss=("min_val_loss", "mean"))
        if task.has_accuracy:
            columns["best_val_accuracy"] = ("best_val_accuracy", "mean")
        agg = named.groupby("config").agg(**columns)
        print("named configurations (mean over repeats):")
        print(agg.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"results: {workdir / 'results.parquet'}  (run record: {workdir / 'run.json'})")
