"""Trains the task zoo (a population per task and budget), then builds the meta-dataset and the cross-task parent.

  python -m experiments.zoo --flagfile=experiments/flags/zoo_smoke.flags --plan
  python -m experiments.zoo --flagfile=experiments/flags/zoo_smoke.flags
  python -m experiments.zoo --flagfile=experiments/flags/zoo.flags --write_shipped
  python -m experiments.zoo --flagfile=experiments/flags/zoo_generated.flags --write_shipped

Each run (task x budget) trains into WORKDIR/<task>/b<budget>/ as experiments.sweep would (resumable: rerun the
same command after an interruption; complete runs are skipped). Then WORKDIR/meta/ gets meta_dataset.parquet,
lofo.json and lofo.md (leave-one-family-out evaluation; --holdouts=family,task adds loto.*, leave-one-task-out)
and parent/ (the cross-task parent). --write_shipped copies
the meta-dataset and the parent into the package, where experiments.recommend reads them. --plan prints each
run's calibrated time estimate and the total, and exits. Ctrl-C stops at the next step boundary (exit 3).
"""

from __future__ import annotations

import os
import signal
import sys

from absl import flags

from experiments import common
from sparse_rnn_jax.studies.zoo import ZooConfig

FLAGS = flags.FLAGS
SHIPPED = os.path.join("analysis", "meta", "data")
"""Where --write_shipped writes, inside the package (``analysis.meta.pipeline``)."""
ZOO_FLAGS = common.define_dataclass_flags(ZooConfig)
flags.DEFINE_string("workdir", None, "Folder of the zoo's runs and of meta/ (required).")
flags.DEFINE_bool("plan", False, "Print every run's calibrated time estimate and the total, then exit.")
flags.DEFINE_bool("calibrate", True, "With --plan: time each compiled shape (else FLOPs only).")
flags.DEFINE_bool("train", True, "Train the runs (false: only rebuild meta/ from the complete runs).")
flags.DEFINE_bool("progress", False, "Show a progress bar per run.")
flags.DEFINE_integer("trees", 300, "Trees of the cross-task parent's forest.")
flags.DEFINE_integer("loto_trees", 200, "Trees of each held-out forest (leave-one-family-out, -task-out).")
flags.DEFINE_list(
    "holdouts", ["family"], "Held-out evaluations: family (lofo.json, the headline) and/or task (loto.json)."
)
flags.DEFINE_bool("mlp", True, "Also fit and evaluate the MLP parent.")
flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples of the 95 % CIs.")
flags.DEFINE_bool("write_shipped", False, "Copy meta/meta_dataset.parquet and meta/parent/ into the package.")
common.help_group("the zoo: tasks, budgets, populations, training", ZOO_FLAGS)
common.help_group("run", ["workdir", "plan", "calibrate", "train", "progress"])
common.help_group(
    "meta-dataset and cross-task parent", ["trees", "loto_trees", "holdouts", "mlp", "bootstrap", "write_shipped"]
)


class _Stop:
    """The first SIGINT/SIGTERM asks the run to stop at its next step boundary; a second exits at once."""

    def __init__(self):
        self.stop = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.stop:
            os._exit(128 + signum)
        self.stop = True
        print(f"\nreceived signal {signum}: stopping at the next step boundary", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        return self.stop


def main(argv):
    common.check_no_positional(argv)
    if not FLAGS.workdir:
        common.fail("--workdir is required")
    workdir = common.check_path("workdir", FLAGS.workdir, "dir")
    if FLAGS.write_shipped:
        import sparse_rnn_jax

        common.check_path("write_shipped", os.path.join(os.path.dirname(sparse_rnn_jax.__file__), SHIPPED), "dir")
    for name in ("trees", "loto_trees", "bootstrap"):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    bad = [h for h in FLAGS.holdouts if h not in ("family", "task")]
    if bad or not FLAGS.holdouts:
        common.fail(f"--holdouts must be family and/or task, got {','.join(FLAGS.holdouts)}")
    zoo = common.dataclass_from_flags(ZooConfig)
    log = lambda s: print(s, flush=True)  # noqa: E731
    if FLAGS.plan:
        from sparse_rnn_jax.run.train import RunError
        from sparse_rnn_jax.studies.zoo import plan_zoo, plan_zoo_text

        try:
            print(plan_zoo_text(plan_zoo(zoo, calibrate=FLAGS.calibrate, log=log)))
        except (RunError, ValueError) as e:
            common.fail(common.flag_error(e))
        return
    from sparse_rnn_jax.engine.sweep import SweepInterrupted
    from sparse_rnn_jax.run.train import RunError
    from sparse_rnn_jax.studies.zoo import run_zoo

    if FLAGS.train:
        try:
            run_zoo(zoo, workdir, log=log, should_stop=_Stop(), progress=FLAGS.progress)
        except (RunError, ValueError) as e:
            common.fail(common.flag_error(e))
        except SweepInterrupted as e:
            print(f"interrupted: {e}. Rerun the same command to resume.", file=sys.stderr)
            sys.exit(common.EXIT_INTERRUPTED)
    from sparse_rnn_jax.analysis.meta.pipeline import build_outputs, ship

    try:
        out = build_outputs(
            workdir,
            trees=FLAGS.trees,
            loto_trees=FLAGS.loto_trees,
            mlp=FLAGS.mlp,
            bootstrap=FLAGS.bootstrap,
            holdouts=tuple(dict.fromkeys(FLAGS.holdouts)),
            log=log,
        )
    except ValueError as e:
        common.fail(str(e))
    from sparse_rnn_jax.analysis.meta.loto import loto_markdown

    for key, label in (("lofo", "Leave-one-family-out"), ("loto", "Leave-one-task-out")):
        if out[key] is not None:
            print(f"\n{label} (normalised losses; mean over tasks [95 % CI over held-out units]):\n")
            print(loto_markdown(out[key]))
    if FLAGS.write_shipped:
        try:
            for p in ship(out["out"]):
                print(f"shipped: {p}")
        except ValueError as e:
            common.fail(str(e))


if __name__ == "__main__":
    common.run(main)
