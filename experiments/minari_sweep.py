"""Trains a sweep on any Minari dataset (behaviour cloning of its actions), then scores every model in the
dataset's own environment (or --eval_env_id): the paper's Table III task on Adroit Hammer, and unchanged on the
other Adroit hand tasks (door, relocate, pen) or any dataset of a Box-action environment.
``experiments.sweep --task=ah`` (or ``--task=minari``); ``experiments.ah_sweep`` is its former name.

python -m experiments.minari_sweep --flagfile=experiments/flags/ah_smoke.flags
python -m experiments.minari_sweep --dataset_id=D4RL/door/expert-v2 --budget=30000 --workdir=runs/door
"""

from __future__ import annotations

from absl import flags

from experiments import common, sweep, sweep_flags

flags.adopt_module_key_flags(sweep_flags)
sweep_flags.define_task_flags(["ah"])


def main() -> None:
    common.run(lambda argv: sweep.run_task("ah", argv))


if __name__ == "__main__":
    main()
