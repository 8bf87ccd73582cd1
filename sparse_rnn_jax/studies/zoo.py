"""The task zoo: one population per task and budget, the training data of the cross-task parent network.

``ZOO`` lists the entries (name, registered task, task-config overrides): RAD at two image sizes and two sequence
lengths, Reber next-symbol and classification, sequential and permuted sequential MNIST, the adding problem, the
copy task, Mackey-Glass and NARMA-10 forecasts, and Adroit Hammer when a local Minari dataset exists (else it is
skipped with a one-line note; the zoo never downloads). ``ZooConfig`` sets the scale (models, epochs, sizes).

Budgets are relative to each task's dims: budget level h means the trainable weights of the dense network with
hidden size h (``dense_budget``), so every task gets models of comparable shape. Each (entry, level) is one run of
``run.train.train_and_evaluate`` in ``WORKDIR/<entry>/b<budget>/`` (resumable; a rerun skips complete runs):
``num_models`` draws of ``sampler`` at the budget (draws whose hidden size exceeds ``max_hidden_factor`` x the
level are redrawn, which keeps every model CPU-sized; the draws enter the run as explicit specs) plus the named
``configs`` with ``config_repeats`` seeds each. ``WORKDIR/<entry>/descriptor.json`` holds the task's descriptor
(``tasks.base.descriptor_dict``) and ``WORKDIR/zoo.json`` the zoo's config.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

from sparse_rnn_jax.core.configs import NAMED_CONFIGS
from sparse_rnn_jax.core.samplers import mixture_counts, parse_sampler, sample_specs
from sparse_rnn_jax.core.solvers import trainable_at
from sparse_rnn_jax.core.spec import BLOCKS
from sparse_rnn_jax.core.spec_text import spec_to_text
from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.tasks.registry import TASKS, get_task

ZOO_FILE = "zoo.json"
DESCRIPTOR_FILE = "descriptor.json"
DRAWS_PER_MODEL = 50
"""Sampler draws tried per wanted model before the hidden-size cap is declared unmeetable."""


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One task of the zoo: ``name`` (its folder and its name in the meta-dataset), the registered ``task`` and
    the overrides of its config; ``family``: the generator the entry is a variant of (default: the registered
    task, so every variant of one task module is one family). Leave-one-family-out holds a whole family out at
    once."""

    name: str
    task: str
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    family: str = ""

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.task)

    @property
    def environment(self) -> bool:
        """Whether the task scores its models by an environment return after training (its ``after_training``)."""
        return get_task(self.task).after_training is not None


ZOO: tuple[ZooEntry, ...] = (
    ZooEntry("rad28_T11", "rad", {"image_size": 28, "images_per_sequence": 10}),
    ZooEntry("rad50_T11", "rad", {"image_size": 50, "images_per_sequence": 10}),
    ZooEntry("rad28_T6", "rad", {"image_size": 28, "images_per_sequence": 5}),
    ZooEntry("reber_next", "reber", {"variant": "next_symbol", "max_len": 20}),
    ZooEntry("reber_cls", "reber", {"variant": "classification", "max_len": 20}),
    ZooEntry("smnist", "smnist", {"permuted": False}),
    ZooEntry("psmnist", "smnist", {"permuted": True}),
    ZooEntry("adding", "adding", {"seq_len": 50}),
    ZooEntry("copy", "copy", {"num_symbols": 8, "length": 5, "delay": 10}),
    ZooEntry("mackey_glass", "mackey_glass", {"seq_len": 40}),
    ZooEntry("narma10", "narma", {"seq_len": 50}),
    ZooEntry("ah", "ah", {"download": False}),
)
ZOO_NAMES: tuple[str, ...] = tuple(e.name for e in ZOO)


def family_of(name: str, task: str = "") -> str:
    """The family of zoo entry ``name`` as declared in ``ZOO`` (an entry unknown here: its registered ``task``,
    else its name)."""
    entry = next((e for e in ZOO if e.name == name), None)
    return entry.family if entry is not None else (task or name)


def generated_families() -> tuple[str, ...]:
    """The registered tasks that sample their instances (``TaskDef.generator``), in registry order."""
    return tuple(name for name in TASKS if get_task(name).generator is not None)


def generated_entries(families: tuple[str, ...], per_family: int, seed: int) -> tuple[ZooEntry, ...]:
    """``per_family`` instances of each generated family (``tasks.generated.base.sample_instances``: a Latin
    hypercube over the family's ranges), named ``<family>_<k>``; each family is its own family."""
    from sparse_rnn_jax.tasks.generated.base import sample_instances

    out = []
    for family in families:
        for k, values in enumerate(sample_instances(get_task(family).generator, per_family, seed)):
            out.append(ZooEntry(f"{family}_{k:02d}", family, values, family=family))
    return tuple(out)


def _field(default, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class ZooConfig:
    """The zoo's scale; its fields are ``experiments.zoo``'s flags."""

    tasks: tuple[str, ...] = _field(
        (), f"Zoo entries to run (default: all of {ZOO_NAMES} and the generated instances)."
    )
    generated: int = _field(0, "Instances sampled per generated task family (tasks.generated; 0: none).")
    generated_families: tuple[str, ...] = _field((), "Generated families to sample (default: every registered one).")
    dense_hidden: tuple[int, ...] = _field(
        (8, 24), "Budget levels: each task's budget is the dense network's trainable weights at these hidden sizes."
    )
    num_models: int = _field(24, "Sampler draws per run (task x budget).")
    sampler: str = _field("normal_size:0.5,uniform_size:0.5", "Sampler (or mixture) of the drawn models.")
    max_hidden_factor: float = _field(
        8.0, "Draws with a hidden size above this x the budget level are redrawn (keeps models CPU-sized)."
    )
    configs: tuple[str, ...] = _field(NAMED_CONFIGS, f"Named configs per run, any of {NAMED_CONFIGS}.")
    config_repeats: int = _field(3, "Seeds per named config.")
    config_lr: float = _field(1e-3, "Learning rate of the named configs.")
    epochs: int = _field(10, "Training epochs of every run.")
    train_size: int = _field(1000, "Training sequences per task (Adroit: ah_train_size).")
    val_size: int = _field(200, "Validation sequences per task (Adroit: ah_val_size).")
    batch_size: int = _field(32, "Sequences per minibatch.")
    max_buckets: int = _field(2, "Hidden-size buckets per run.")
    seed: int = _field(0, "Seed of the draws, the model seeds and the minibatch order.")
    mnist_source: str = _field("auto", "MNIST digits of the RAD and sequential-MNIST tasks: auto | tfds | embedded.")
    ah_dataset: str = _field("local/hammer/expert-v0", "Local Minari dataset of the Adroit entry (never downloaded).")
    ah_train_size: int = _field(100, "Adroit training episodes.")
    ah_val_size: int = _field(10, "Adroit validation episodes.")
    ah_eval_episodes: int = _field(4, "Adroit environment episodes per model (the return in the meta-dataset).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "generated_families", tuple(self.generated_families))
        bad = [f for f in self.generated_families if f not in generated_families()]
        if bad:
            raise ValueError(f"generated_families: unknown family {bad[0]!r}; expected any of {generated_families()}")
        if self.generated < 0:
            raise ValueError(f"generated must be >= 0, got {self.generated}")
        object.__setattr__(self, "configs", tuple(self.configs))
        try:
            object.__setattr__(self, "dense_hidden", tuple(int(h) for h in self.dense_hidden))
        except (TypeError, ValueError):
            raise ValueError(f"dense_hidden must be hidden sizes (ints), got {self.dense_hidden}") from None
        names = ZOO_NAMES + tuple(e.name for e in self.generated_entries())
        unknown = [t for t in self.tasks if t not in names]
        if unknown:
            raise ValueError(f"tasks: unknown zoo entry {unknown[0]!r}; expected any of {names}")
        bad = [c for c in self.configs if c not in NAMED_CONFIGS]
        if bad:
            raise ValueError(f"configs: unknown config {bad[0]!r}; expected any of {NAMED_CONFIGS}")
        if not self.dense_hidden or min(self.dense_hidden) < 1:
            raise ValueError(f"dense_hidden must be one or more hidden sizes >= 1, got {self.dense_hidden}")
        parse_sampler(self.sampler)
        if not self.max_hidden_factor >= 1:
            raise ValueError(f"max_hidden_factor must be >= 1, got {self.max_hidden_factor}")
        for name in ("num_models", "config_repeats", "ah_eval_episodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("epochs", "train_size", "val_size", "batch_size", "max_buckets", "ah_train_size", "ah_val_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_models + len(self.configs) * self.config_repeats == 0:
            raise ValueError("num_models: nothing to train (0 draws and no configs)")
        if not self.config_lr > 0:
            raise ValueError(f"config_lr must be > 0, got {self.config_lr}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    def generated_entries(self) -> tuple[ZooEntry, ...]:
        """The generated instances (``generated`` per family of ``generated_families``, default all)."""
        if not self.generated:
            return ()
        return generated_entries(self.generated_families or generated_families(), self.generated, self.seed)

    def entries(self) -> tuple[ZooEntry, ...]:
        """The selected entries: ``ZOO``'s, then the generated instances."""
        return tuple(e for e in ZOO + self.generated_entries() if not self.tasks or e.name in self.tasks)


@dataclasses.dataclass(frozen=True)
class ZooRun:
    """One run of the zoo: an entry at one budget level, its RunConfig and its folder (relative to WORKDIR)."""

    entry: ZooEntry
    level: int
    budget: float
    config: RunConfig

    @property
    def path(self) -> str:
        """``<entry>/b<budget>``."""
        return f"{self.entry.name}/b{int(round(self.budget))}"


def dense_budget(input_dim: int, output_dim: int, hidden_dim: int) -> float:
    """Trainable weights (biases excluded) of the dense network with ``hidden_dim`` units: a zoo budget level."""
    return float(round(trainable_at(hidden_dim, {b: 1.0 for b in BLOCKS}, input_dim, output_dim)))


def unavailable(entry: ZooEntry, zoo: ZooConfig) -> str | None:
    """Why ``entry`` cannot run here (a one-line note), or None: its task's ``TaskDef.unavailable`` on the entry's
    config (Adroit: its packages or the local Minari dataset ``zoo.ah_dataset``)."""
    note = get_task(entry.task).unavailable(entry_data_config(entry, zoo))
    return f"{entry.name}: skipped ({note})" if note else None


def entry_data_config(entry: ZooEntry, zoo: ZooConfig):
    """The task config of ``entry`` at the zoo's sizes (test splits are one sequence: the zoo never tests)."""
    cls = get_task(entry.task).config_type
    fields = {f.name for f in dataclasses.fields(cls)}
    values = dict(entry.data)
    if entry.environment:  # scored in an environment: the zoo's episode counts (the fields the task has)
        env = dict(
            dataset_id=zoo.ah_dataset,
            train_size=zoo.ah_train_size,
            val_size=zoo.ah_val_size,
            test_size=1,
            eval_episodes=zoo.ah_eval_episodes,
        )
        values.update({k: v for k, v in env.items() if k in fields})
    else:
        values.update({k: v for k, v in (("train_size", zoo.train_size), ("val_size", zoo.val_size)) if k in fields})
        if "test_size" in fields:
            values["test_size"] = 1
    if "mnist_source" in fields:
        values["mnist_source"] = zoo.mnist_source
    return cls(**values)


def draw_seed(zoo: ZooConfig, entry: ZooEntry, level: int) -> int:
    """The seed of an entry's draws at one level (independent across entries and levels, stable across versions)."""
    return (zoo.seed * 1_000_003 + zlib.crc32(f"{entry.name}:{level}".encode())) % 2**31


def sampled_specs(zoo: ZooConfig, input_dim: int, output_dim: int, budget: float, level: int, seed: int) -> list[str]:
    """``zoo.num_models`` draws of ``zoo.sampler`` at ``budget`` as spec texts (``core.spec_text``), each mixture
    component keeping its share; draws with a hidden size above ``max_hidden_factor`` x ``level`` are redrawn."""
    components = parse_sampler(zoo.sampler)
    cap = zoo.max_hidden_factor * level
    out: list[str] = []
    for i, ((name, _), count) in enumerate(zip(components, mixture_counts(components, zoo.num_models))):
        if count == 0:
            continue
        drawn = sample_specs(name, count * DRAWS_PER_MODEL, seed + i, input_dim, output_dim, budget).specs
        kept = [s for s in drawn if s.hidden_dim <= cap][:count]
        if len(kept) < count:
            raise ValueError(
                f"max_hidden_factor: only {len(kept)} of {count * DRAWS_PER_MODEL} {name} draws at budget "
                f"{budget:,.0f} have a hidden size <= {cap:g}; raise --max_hidden_factor"
            )
        out += [spec_to_text(s) for s in kept]
    return out


def zoo_runs(zoo: ZooConfig, log: Callable[[str], None] = print) -> list[ZooRun]:
    """Every run of the zoo (entries that cannot run here are skipped with a one-line note to ``log``)."""
    runs = []
    for entry in zoo.entries():
        note = unavailable(entry, zoo)
        if note:
            log(note)
            continue
        data = entry_data_config(entry, zoo)
        input_dim, output_dim = get_task(entry.task).dims(data)
        for level in zoo.dense_hidden:
            budget = dense_budget(input_dim, output_dim, level)
            specs = sampled_specs(zoo, input_dim, output_dim, budget, level, draw_seed(zoo, entry, level))
            population = PopulationConfig(
                num_models=0,
                budget=budget,
                configs=zoo.configs if zoo.config_repeats else (),
                config_repeats=zoo.config_repeats,
                config_lr=zoo.config_lr,
                specs=tuple(specs),
            )
            train = TrainConfig(
                epochs=zoo.epochs, batch_size=zoo.batch_size, seed=zoo.seed, max_buckets=zoo.max_buckets
            )
            runs.append(ZooRun(entry, level, budget, RunConfig(entry.task, data, population, train)))
    return runs


def task_descriptor(task: str, data_config: Any, data: Any = None) -> dict:
    """The registered task's ``descriptor(config, data)`` (``tasks.base.descriptor_dict``)."""
    task_def = get_task(task)
    if task_def.descriptor is None:
        raise ValueError(f"task {task!r} declares no descriptor (TaskDef.descriptor)")
    return task_def.descriptor(data_config, data)


def write_descriptor(folder: Path, entry: ZooEntry, data_config: Any) -> dict:
    """Writes ``folder/descriptor.json``: the entry's task descriptor with the zoo entry's name and task (for
    reading; the meta-dataset computes it from each run's own config)."""
    path = Path(folder) / DESCRIPTOR_FILE
    desc = {
        **task_descriptor(entry.task, data_config),
        "zoo_task": entry.name,
        "task": entry.task,
        "family": entry.family,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(desc, indent=1))
    tmp.replace(path)
    return desc


def zoo_record(zoo: ZooConfig, runs: list[ZooRun]) -> dict:
    """The zoo.json record: the config and every run's folder and budget."""
    return {
        "config": dataclasses.asdict(zoo),
        "runs": [
            {
                "entry": r.entry.name,
                "task": r.entry.task,
                "family": r.entry.family,
                "level": r.level,
                "budget": r.budget,
                "path": r.path,
            }
            for r in runs
        ],
    }


def run_zoo(
    zoo: ZooConfig,
    workdir: str | Path,
    *,
    log: Callable[[str], None] = print,
    should_stop: Callable[[], bool] = lambda: False,
    progress: bool = False,
) -> list[ZooRun]:
    """Trains every run of the zoo into ``workdir`` (complete runs are left as they are; an interrupted one
    resumes). Raises ``run.train.RunError`` (naming the run) before a run starts on bad input, and
    ``engine.sweep.SweepInterrupted`` after a stop request."""
    from sparse_rnn_jax.run.train import RunError, train_and_evaluate

    workdir = Path(workdir)
    runs = zoo_runs(zoo, log)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ZOO_FILE).write_text(json.dumps(zoo_record(zoo, runs), indent=1))
    for k, run in enumerate(runs, 1):
        if should_stop():
            break
        write_descriptor(workdir / run.entry.name, run.entry, run.config.data)
        log(f"zoo run {k}/{len(runs)}: {run.path} ({run.config.population.size} models, budget {run.budget:,.0f})")
        try:
            train_and_evaluate(run.config, workdir / run.path, should_stop=should_stop, log=log, progress=progress)
        except RunError as e:
            raise RunError(f"{run.path}: {e}", e.overwritable) from None
    return runs


def plan_zoo(zoo: ZooConfig, *, calibrate: bool = True, log: Callable[[str], None] = print) -> dict:
    """The plan of every run (``run.estimate.plan_run``): {"runs": [{path, models, estimated_seconds, ...}],
    "total_seconds"} (None without calibration). Environment scoring is not included."""
    from sparse_rnn_jax.run.estimate import plan_run

    rows = []
    for run in zoo_runs(zoo, log):
        plan = plan_run(run.config, calibrate=calibrate, calibration_models=4, calibration_steps=3)
        rows.append(
            {
                "path": run.path,
                "task": run.entry.task,
                "budget": run.budget,
                "models": plan["models"],
                "buckets": len(plan["buckets"]),
                "max_hidden": max(b["padded_hidden_dim"] for b in plan["buckets"]),
                "executed_flops": plan["executed_flops"],
                "estimated_seconds": plan["estimated_seconds"],
                "environment_scoring": run.entry.environment,
            }
        )
    secs = [r["estimated_seconds"] for r in rows]
    total = None if not rows or any(s is None for s in secs) else float(sum(secs))
    return {"runs": rows, "total_seconds": total}


def plan_zoo_text(plan: dict) -> str:
    """The zoo plan as a table for a terminal."""
    lines = [f"{'run':<26}{'models':>7}{'h<=':>6}{'TFLOP':>9}{'estimate':>11}"]
    for r in plan["runs"]:
        est = "-" if r["estimated_seconds"] is None else f"{r['estimated_seconds'] / 60:.1f} min"
        note = " (+ environment scoring)" if r["environment_scoring"] else ""
        lines.append(
            f"{r['path']:<26}{r['models']:>7}{r['max_hidden']:>6}{r['executed_flops'] / 1e12:>9.2f}{est:>11}{note}"
        )
    total = plan["total_seconds"]
    if total is not None:
        lines.append(f"total: {total / 60:.1f} min ({total / 3600:.2f} h) on this machine (calibrated estimate)")
    return "\n".join(lines)
