"""Trains a sweep of block RNNs (and baseline cells) on a registered task as one batched program per bucket.

  python -m experiments.sweep --task=rad --flagfile=experiments/flags/rad_smoke.flags
  python -m experiments.sweep --task=minari --flagfile=experiments/flags/ah_smoke.flags
  python -m experiments.sweep --task=reber --flagfile=experiments/flags/reber_smoke.flags

Writes WORKDIR/results.parquet (one row per model and epoch; it can be read while the run goes on),
WORKDIR/run.json, WORKDIR/manifest.json and checkpoints; rerunning the same command resumes from the last commit
(after a kill at any instant), a larger --epochs continues a finished run, --overwrite starts afresh. One run per
workdir (a second is refused). Ctrl-C stops at the next step boundary (exit 3); a second Ctrl-C exits at once (130).
``rad_sweep``, ``minari_sweep`` (any Minari dataset; formerly ``ah_sweep``, still an alias) and ``reber_sweep`` are
this entry with the task fixed; ``--task=minari`` is ``--task=ah``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

from absl import flags

from experiments import common, sweep_flags
from sparse_rnn_jax.tasks.registry import TASKS

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(sweep_flags)
TASK_ALIASES = {"minari": "ah"}
"""Other names of a task on the command line (the run records the task's own name)."""


class StopFlag:
    """Set by the first SIGTERM/SIGINT: the sweep commits its state at its next step boundary and stops (exit 3).
    A second signal exits at once with status 128 + signal (130 for Ctrl-C), even while the main thread is inside a
    long computation: the signal's wakeup byte reaches a watcher thread, which calls ``os._exit`` (every write of
    the sweep is atomic, so the last commit stays intact)."""

    def __init__(self):
        self.stop = False
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        self._sockets = (reader, writer)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(reader,), daemon=True, name="second-signal").start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    @staticmethod
    def _watch(reader) -> None:
        seen = 0
        while True:
            data = reader.recv(64)
            if not data:
                return
            for signum in data:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    seen += 1
                    if seen >= 2:
                        os.write(2, b"\nsecond signal: exiting now; the last commit is intact, rerun to resume\n")
                        os._exit(128 + signum)

    def _handle(self, signum, frame):
        if self.stop:
            return  # the second signal: the watcher thread exits the process
        self.stop = True
        print(
            f"\nreceived signal {signum}: saving a checkpoint and stopping (send again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def __call__(self) -> bool:
        return self.stop


def run_task(task: str, argv) -> None:
    """Validates every flag (exit 2 before any work), trains the sweep (resuming where a previous run stopped)
    and prints the summary; exit 3 when interrupted."""
    common.check_no_positional(argv)
    config = sweep_flags.run_config(task)
    sweep_flags.init_distributed()
    if FLAGS.plan:
        return print_plan(config)
    import jax

    from sparse_rnn_jax.analysis.summary import sweep_summary
    from sparse_rnn_jax.engine.sweep import SweepInterrupted
    from sparse_rnn_jax.engine.workdir import LOG_FILE, SCORES_FILE, read_parquet
    from sparse_rnn_jax.run.train import RunError, train_and_evaluate

    workdir_path = sweep_flags.workdir_path()
    local = "://" not in workdir_path and jax.process_index() == 0
    log = common.logger(os.path.join(workdir_path, LOG_FILE) if local else None)
    try:
        result = train_and_evaluate(
            config,
            workdir_path,
            overwrite=FLAGS.overwrite,
            should_stop=StopFlag(),
            log=log,
            progress=FLAGS.progress,
            tensorboard=FLAGS.tensorboard,
            wandb_project=FLAGS.wandb_project,
            log_models=FLAGS.log_models,
        )
    except RunError as e:
        common.fail(common.flag_error(e) + ("; use --overwrite or another --workdir" if e.overwritable else ""))
    except SweepInterrupted as e:
        print(f"interrupted: {e}. Rerun the same command to resume.", file=sys.stderr)
        sys.exit(common.EXIT_INTERRUPTED)
    if jax.process_index() == 0:
        from etils import epath

        workdir = (
            epath.Path(sweep_flags.workdir_path()).absolute()
            if "://" not in FLAGS.workdir
            else epath.Path(FLAGS.workdir)
        )
        scores = read_parquet(workdir / SCORES_FILE) if (workdir / SCORES_FILE).is_file() else None
        print(sweep_summary(result.frame, result.record, scores))
        print(f"results: {workdir / 'results.parquet'}  (run record: {workdir / 'run.json'})")


def print_plan(config) -> None:
    """--plan: the run's plan (``run.estimate``) as text, or one JSON object with --json; nothing is written."""
    import json

    from sparse_rnn_jax.run.estimate import plan_run, plan_text
    from sparse_rnn_jax.run.train import RunError

    log = common.logger()
    try:
        plan = plan_run(config, log=log, quick=FLAGS.plan_quick)
    except RunError as e:
        common.fail(common.flag_error(e))
    print(json.dumps(plan, indent=2) if FLAGS.json else plan_text(plan))


if __name__ == "__main__":
    flags.DEFINE_enum(
        "task", "rad", [*TASKS, *TASK_ALIASES], "The task to train on (minari: any Minari dataset, the same as ah)."
    )
    sweep_flags.define_task_flags(list(TASKS))
    common.run(lambda argv: run_task(TASK_ALIASES.get(FLAGS.task, FLAGS.task), argv))
