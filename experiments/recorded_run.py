"""A sweep re-created from its workdir, for the entry points that work on trained sweeps (prune, diagnose).

A sweep's ``run.json`` records its task and every defining flag. ``recreate_run`` imports the sweep's entry
module (``TASK_MODULES``: task ``rad`` -> ``experiments.rad_sweep``, ``ah`` -> ``experiments.ah_sweep``, the
Reber tasks -> ``experiments.reber_sweep``),
which defines that module's flags in absl's registry, sets every recorded flag to its recorded value and
then parses this process' remaining command-line flags: only flags a run does not record may be given
there (``--cache_dir``, ``--progress``, ...); giving a recorded one is refused, since the run is what it is.
The members, their seeds and the chunks then come from ``sweep_cli.build_members`` exactly as in the
sweep, and ``RecordedRun.task_data()`` calls the entry module's own ``load_task_data``: RAD regenerates (or
reads from its cache) the same sequences from the recorded config, Adroit Hammer loads the same Minari
split, Reber regenerates the same strings. Entry points using this parse their own flags with ``run`` (absl ``known_only``), which keeps the
entry module's flags for later.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from absl import app, flags, logging

from experiments import common, sweep_cli
from sparse_rnn_jax.population import Chunk, Member, make_chunks
from sparse_rnn_jax.sweep import SweepConfig

FLAGS = flags.FLAGS
TASK_MODULES: dict[str, str] = {
    "rad": "experiments.rad_sweep", "ah": "experiments.ah_sweep",
    "reber_next_symbol": "experiments.reber_sweep", "reber_classification": "experiments.reber_sweep",
}
"""The entry module of each task's sweeps (run.json records the task, not the module)."""


def run(main: Callable[[list[str]], Any]) -> None:
    """``common.run`` whose flag parsing keeps unknown flags in ``argv`` (for ``recreate_run``)."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return FLAGS(argv, known_only=True)
        except flags.Error as e:
            common.fail(str(e).replace("ERROR:: ", "").splitlines()[0])

    def wrapped(argv):
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        return main(argv)

    app.run(wrapped, flags_parser=parse)


@dataclasses.dataclass
class RecordedRun:
    """A sweep as recorded in ``workdir``: its run.json, entry module, members, training config and chunks
    (chunked for one device: chunk keys do not depend on the device count)."""

    workdir: Path
    record: dict
    module: ModuleType
    members: list[Member]
    cfg: SweepConfig
    chunks: list[Chunk]

    def describe(self) -> str:
        return f"{self.workdir}: task {self.record.get('task')}, {len(self.members)} models in {len(self.chunks)} chunks (flags from run.json)"

    def task_data(self) -> sweep_cli.TaskData:
        """The task and its training and validation data, loaded as the sweep loaded them."""
        data = self.module.load_task_data()
        if data.task.name != self.record.get("task"):
            common.fail(f"{self.workdir}: run.json records task {self.record.get('task')!r}, the data is {data.task.name!r}")
        return data


def recreate_run(workdir: str, argv: list[str], *, require_complete: bool = True) -> RecordedRun:
    """The sweep of ``workdir`` (module docstring); ``argv`` = the flags this process left unparsed. Exits 2
    with a one-line error on a missing or unfinished run, an unknown task or a refused flag."""
    workdir_path = Path(workdir)
    run_json = workdir_path / "run.json"
    if not run_json.is_file():
        common.fail(f"--workdir {workdir}: no run.json (not a sweep workdir)")
    try:
        record = json.loads(run_json.read_text())
    except (OSError, ValueError) as e:
        common.fail(f"--workdir {workdir}: unreadable run.json ({e})")
    if require_complete and record.get("status") != "complete":
        common.fail(f"--workdir {workdir}: the sweep is {record.get('status', 'unfinished')!r}, not complete; finish it first")
    task = record.get("task")
    if task not in TASK_MODULES:
        common.fail(f"--workdir {workdir}: run.json records task {task!r}; known tasks: {', '.join(TASK_MODULES)}")
    module = importlib.import_module(TASK_MODULES[task])
    recorded = record.get("flags", {})
    unknown = sorted(n for n in recorded if n not in FLAGS)
    if unknown:
        common.fail(f"--workdir {workdir}: run.json records flags this version does not know: --{', --'.join(unknown)}")
    extra = [a for a in argv[1:] if a.startswith("-")]
    positional = [a for a in argv[1:] if not a.startswith("-")]
    if positional:
        common.fail(f"unexpected positional arguments: {' '.join(positional)}")
    for name, value in recorded.items():
        FLAGS[name].value = value
    try:
        FLAGS([argv[0], *extra])
    except flags.Error as e:
        common.fail(str(e).replace("ERROR:: ", "").splitlines()[0])
    given = sorted(n for n in recorded if FLAGS[n].present)
    if given:
        common.fail(f"--{given[0]} is fixed by the sweep in {workdir} (run.json); it cannot be changed here")
    input_dim, output_dim = module.dims()
    members = sweep_cli.build_members(input_dim, output_dim)
    if record.get("num_models") not in (None, len(members)):
        common.fail(f"--workdir {workdir}: the recorded flags rebuild {len(members)} models, run.json says {record['num_models']}")
    cfg = SweepConfig(
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, eval_batch_size=FLAGS.eval_batch_size, seed=FLAGS.seed,
        per_model_order=FLAGS.per_model_order, max_buckets=FLAGS.max_buckets,
        max_models_per_chunk=FLAGS.max_models_per_chunk, steps_per_call=FLAGS.steps_per_call,
        mask_mode=FLAGS.mask_mode, unroll=FLAGS.unroll,
    )
    chunks = make_chunks(members, cfg.max_buckets, cfg.max_models_per_chunk, 1)
    return RecordedRun(workdir_path, record, module, members, cfg, chunks)
