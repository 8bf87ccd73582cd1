"""The flags of the sweep entry points, defined from the run config's dataclasses, and the one function that turns
them into a ``RunConfig``.

Groups (absl lists them under this module's name in ``--help``): the population (``PopulationConfig``), training
(``TrainConfig``), the run (workdir, overwrite, progress, precision, multi-process) and the task's data (its config
dataclass). With several tasks defined (``experiments.sweep``), a data flag shared by tasks with different
defaults has no default of its own: each task then uses its own; ``--help`` lists the shared data flags, then each
task's own.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter

from absl import flags

from experiments import common
from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import MATMUL_PRECISIONS, RunConfig
from sparse_rnn_jax.tasks.registry import get_task

FLAGS = flags.FLAGS

flags.DEFINE_string("workdir", None, "Folder for run.json, results.parquet and checkpoints (required).")
flags.DEFINE_bool("overwrite", False, "Start afresh: remove what a previous run left in --workdir (any settings).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_enum(
    "matmul_precision",
    None,
    list(MATMUL_PRECISIONS),
    "Matmul precision: float32 by default on every device (recorded in run.json); bfloat16 or tensorfloat32 trade "
    "fidelity for speed on TPUs and GPUs (a CPU computes in float32 whatever is asked).",
)
flags.DEFINE_bool(
    "tensorboard",
    True,
    "Write live metrics as TensorBoard event files into WORKDIR/tensorboard: one run for the sweep (population "
    "quantiles, named configurations, throughput at a global step through all chunks), per-model curves "
    "(--log_models) and every model's hyperparameters and final metrics (HParams dashboard).",
)
flags.DEFINE_enum(
    "log_models",
    "named",
    ["all", "named", "none"],
    "Which models get their own TensorBoard run of curves (models/<id>_<config>, step = epoch) and W&B curves: "
    "all, named (named configurations and --specs, not the sampled draws) or none. Every model gets its "
    "hyperparameters and final metrics in TensorBoard's HParams dashboard and W&B's models table.",
)
flags.DEFINE_string(
    "wandb_project",
    None,
    "Also log the live metrics to this Weights & Biases project: one W&B run, config = the run config, a table "
    "of every model at the end (needs wandb; WANDB_MODE=offline works without a network; WANDB_DIR is honoured).",
)
flags.DEFINE_bool(
    "plan",
    False,
    "Print what the run would do (models per Table III/IV cell, buckets, chunks, "
    "padding efficiency, FLOPs, peak memory, a calibrated wall-time estimate) and exit; writes nothing.",
)
flags.DEFINE_bool(
    "plan_quick",
    False,
    "--plan from the calibration cache (~/.cache/sparse_rnn_jax/plan_calibration.json, which every --plan fills) "
    "and at most two compiled shapes (the narrowest and widest not cached; the others interpolated by FLOPs).",
)
flags.DEFINE_bool("json", False, "With --plan: print the plan as one JSON object.")
flags.DEFINE_bool(
    "distributed",
    False,
    "Initialise jax.distributed (multi-host: on Cloud TPU the topology is "
    "auto-detected; elsewhere give the three flags below). Implied by --coordinator_address.",
)
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 for jax.distributed.")
flags.DEFINE_integer("num_processes", None, "Processes in a jax.distributed run.")
flags.DEFINE_integer("process_id", None, "This process' index in a jax.distributed run.")
RUN_FLAGS = [
    "workdir",
    "overwrite",
    "progress",
    "tensorboard",
    "log_models",
    "wandb_project",
    "plan",
    "plan_quick",
    "json",
    "matmul_precision",
    "distributed",
    "coordinator_address",
    "num_processes",
    "process_id",
]
POPULATION_FLAGS = common.define_dataclass_flags(PopulationConfig)
TRAIN_FLAGS = common.define_dataclass_flags(TrainConfig)
TASK_FLAGS: dict[str, list[str]] = {}


def define_task_flags(names: list[str]) -> None:
    """Defines the data flags of the tasks ``names``. A flag shared by tasks with different defaults gets the
    default None (each task then uses its own), with the defaults listed in its help; a shared flag's help is the
    text most of its tasks give it. With several tasks, ``--help`` lists the shared flags (naming their tasks)
    and then each task's own flags."""
    configs = {n: get_task(n).config_type for n in names}
    fields: dict[str, dict[str, dataclasses.Field]] = {}
    for n, cls in configs.items():
        for f in dataclasses.fields(cls):
            fields.setdefault(f.name, {})[n] = f
    shared = {k: v for k, v in fields.items() if len(v) > 1}
    differ = {k: v for k, v in shared.items() if len({repr(f.default) for f in v.values()}) > 1}
    defaults = {k: None for k in differ}
    suffix = {k: " (default: " + ", ".join(f"{t} {f.default!r}" for t, f in v.items()) + ")" for k, v in differ.items()}
    some = {k: v for k, v in shared.items() if k not in differ and len(v) < len(names)}
    suffix.update({k: f" (tasks: {', '.join(v)})" for k, v in some.items()})
    helps = {k: Counter(f.metadata.get("help", k) for f in v.values()).most_common(1)[0][0] for k, v in shared.items()}
    for n, cls in configs.items():
        TASK_FLAGS[n] = common.define_dataclass_flags(cls, defaults=defaults, help_suffix=suffix, help_text=helps)
    if len(names) == 1:
        common.help_group(f"task data ({names[0]})", TASK_FLAGS[names[0]])
    else:
        common.help_group("task data shared by several tasks", sorted(shared))
        for n in names:
            common.help_group(f"task data: {n}", [f for f in TASK_FLAGS[n] if f not in shared])
    common.help_group("population: which models (sampled and named)", POPULATION_FLAGS)
    common.help_group("training", TRAIN_FLAGS)
    common.help_group("run: workdir, resume, devices", RUN_FLAGS)


def init_distributed() -> None:
    """Joins a multi-process JAX run when asked, before any device is touched (exit 2 on inconsistent flags)."""
    given = [FLAGS.coordinator_address is not None, FLAGS.num_processes is not None, FLAGS.process_id is not None]
    if not (FLAGS.distributed or any(given)):
        return
    if any(given) and not all(given):
        common.fail("--coordinator_address, --num_processes and --process_id go together")
    if all(given) and not 0 <= FLAGS.process_id < FLAGS.num_processes:
        common.fail(f"--process_id must be in [0, --num_processes), got {FLAGS.process_id} of {FLAGS.num_processes}")
    from sparse_rnn_jax.engine.devices import init_distributed as init

    init(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id) if all(given) else init()


def run_config(task: str) -> RunConfig:
    """The RunConfig of the parsed flags for ``task``; every bad value exits 2 with a one-line error naming its
    flag, before anything heavy is imported."""
    if FLAGS.plan_quick:
        FLAGS.plan = True
    if not FLAGS.workdir and not FLAGS.plan:
        common.fail("--workdir is required")
    if FLAGS.json and not FLAGS.plan:
        common.fail("--json goes with --plan")
    others = sorted(
        n
        for t, names in TASK_FLAGS.items()
        if t != task
        for n in names
        if n not in TASK_FLAGS.get(task, []) and FLAGS[n].present
    )
    if others:
        common.fail(f"--{others[0]} does not apply to --task={task}")
    if FLAGS.workdir:
        common.check_path("workdir", workdir_path(), "dir")
    data = common.dataclass_from_flags(get_task(task).config_type, omit_none=True)
    home = {  # a path typed as ~/... (quoted, or in a flagfile) is the user's home, not a folder named ~
        f.name: os.path.expanduser(getattr(data, f.name))
        for f in dataclasses.fields(data)
        if isinstance(getattr(data, f.name), str) and getattr(data, f.name).startswith("~")
    }
    data = dataclasses.replace(data, **home) if home else data
    population = common.dataclass_from_flags(PopulationConfig)
    train = common.dataclass_from_flags(TrainConfig)
    try:
        return RunConfig(task, data, population, train, FLAGS.matmul_precision)
    except ValueError as e:
        common.fail(common.flag_error(e))


def workdir_path() -> str:
    """--workdir with ``~`` expanded."""
    return os.path.expanduser(FLAGS.workdir)
