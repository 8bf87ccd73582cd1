"""Recommends a network for |x|, |y| and a trainable-weight budget, without training any child network.

Prints the a-priori balanced spec (Eqn 13; needs only the dims and the budget) with its block table; with a
parent network fitted by ``experiments.analyze`` (``--predictor=OUT/predictor``), also ranks candidate specs
(named configs, balanced variants, ``normal_size`` draws at the budget) by predicted minimum validation loss.

  python -m experiments.recommend --input_dim=2500 --output_dim=10 --budget=50000
  python -m experiments.recommend --input_dim=2500 --output_dim=10 --budget=50000 \
      --predictor=runs/report/predictor --num_candidates=500 --json

For any new task, the cross-task parent shipped with the package (trained on the task zoo, experiments.zoo) ranks
the candidates by predicted loss / the task's chance loss, and flags a task outside the zoo's range; --data takes
the task from a FILE.npz (tasks.npz), --task any registered task (its config as JSON), and --validate then trains
the top candidates, balanced and dense (a task scored in an environment, e.g. ah on any Minari dataset, by its
return normalised against a random policy):

  python -m experiments.recommend --input_dim=40 --output_dim=5 --seq_len=30 --loss=ce --budget=5000 --json
  python -m experiments.recommend --data=FILE.npz --budget=5000 --validate --top_k=3 --seeds=3
  python -m experiments.recommend --task=recall --task_config='{"lag": 12}' --budget=5000 --validate
"""

from __future__ import annotations

import json
import math

from absl import flags

from experiments import common
from sparse_rnn_jax.analysis.defaults import DEFAULT_BALANCE_TARGETS, DEFAULT_LEARNING_RATES, RANKERS

FLAGS = flags.FLAGS
flags.DEFINE_integer("input_dim", None, "|x| of the new task, e.g. 2500 for RAD, 46 for Adroit Hammer.")
flags.DEFINE_integer("output_dim", None, "|y| of the new task, e.g. 10 for RAD, 26 for Adroit Hammer.")
flags.DEFINE_float("budget", None, "Trainable-weight budget (biases excluded).")
flags.DEFINE_float("balance_target", 0.5, "Target hidden proportion of the a-priori balanced spec.")
flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")
BUDGET_SLACK_LOW, BUDGET_SLACK_HIGH = 0.9, 1.1
"""A budget outside [0.9 x smallest, 1.1 x largest] trainable count of the predictor's models is flagged."""
flags.DEFINE_string(
    "predictor",
    None,
    "Parent network folder written by experiments.analyze (OUT/predictor or "
    "OUT/predictor/<task>); without it only the balanced spec is printed.",
)
flags.DEFINE_integer("num_candidates", 200, "normal_size draws at the budget to rank besides the named configs.")
flags.DEFINE_integer("seed", 0, "Seed of the normal_size draws.")
flags.DEFINE_list(
    "balance_targets",
    [str(t) for t in DEFAULT_BALANCE_TARGETS],
    "Target hidden proportions of the balanced candidates.",
)
flags.DEFINE_list(
    "learning_rates",
    [f"{lr:g}" for lr in DEFAULT_LEARNING_RATES],
    "Learning rates of the named and balanced candidates.",
)
flags.DEFINE_enum("ranker", "forest", list(RANKERS), "Which prediction ranks: the forest, the MLP or their mean.")
flags.DEFINE_integer("top", 20, "Candidates shown in the text output (--json lists all).")
flags.DEFINE_integer(
    "seq_len", None, "Steps per sequence of the new task (with --loss: the shipped cross-task parent)."
)
flags.DEFINE_enum("loss", None, ["ce", "mse", "bce"], "Loss of the new task (with --seq_len: the cross-task parent).")
flags.DEFINE_string("data", None, "The new task as FILE.npz (tasks.npz): dims, length, loss and size from the file.")
flags.DEFINE_bool(
    "validate",
    False,
    "With --data or --task: train the top-k, balanced and dense candidates; predicted vs actual (loss, or a "
    "return normalised against a random policy where the task is scored in an environment).",
)
flags.DEFINE_integer(
    "train_top",
    0,
    "Train the K best candidates with --seeds seeds each into --workdir (one population): on --data or --task, or with "
    "--predictor on the analysed run's task, data and training; every candidate's printed command trains it alone.",
)
flags.DEFINE_integer("top_k", 3, "Top candidates --validate trains (besides balanced and dense).")
flags.DEFINE_integer("seeds", 3, "Seeds per candidate in --train_top, --validate and the printed commands.")
flags.DEFINE_string(
    "workdir", None, "Folder of --train_top's or --validate's run (default: a new recommend_* folder here)."
)
flags.DEFINE_integer("epochs", None, "Epochs of --train_top, --validate and the printed commands (default: the zoo's).")
flags.DEFINE_integer(
    "train_size",
    None,
    "Training sequences of the new task (a parent feature; default: from --data, else the zoo's median).",
)
flags.DEFINE_string("task", None, "A registered task (tasks.registry) as the new task; its config from --task_config.")
flags.DEFINE_string("task_config", "{}", "With --task: JSON object of the task config's fields, e.g. '{\"lag\": 12}'.")
flags.DEFINE_bool(
    "race", False, "With --data or --task: successive halving over the parent's candidates (analysis.meta.race)."
)
flags.DEFINE_float("race_budget", None, "Model-epochs the race may train (default: 0.2 x entrants x epochs).")
flags.DEFINE_integer("race_eta", 3, "Keep the best 1/eta of each rung.")
flags.DEFINE_integer("race_top", 6, "The parent's top picks in the race.")
flags.DEFINE_integer("race_diverse", 4, "Diverse candidates in the race (one per hidden-proportion quantile bin).")
common.help_group("the new task", ["input_dim", "output_dim", "budget", "balance_target"])
common.help_group(
    "race and new-task options",
    ["train_size", "task", "task_config", "race", "race_budget", "race_eta", "race_top", "race_diverse"],
)
common.help_group(
    "any task: the shipped cross-task parent",
    ["seq_len", "loss", "data", "train_top", "validate", "top_k", "seeds", "workdir", "epochs"],
)
common.help_group(
    "ranking candidates with a parent network",
    ["predictor", "num_candidates", "seed", "balance_targets", "learning_rates", "ranker"],
)
common.help_group("output", ["json", "top"])


def _floats(name: str, values, low: float, high: float) -> list[float]:
    try:
        out = [float(v) for v in values]
    except ValueError:
        common.fail(f"--{name} must be numbers, got {','.join(values)}")
    if not out or not all(low < v < high for v in out):
        common.fail(f"--{name} must be numbers in ({low:g}, {high:g}), got {','.join(values)}")
    return out


def _check_flags() -> None:
    for name in ("input_dim", "output_dim", "budget"):
        if FLAGS[name].value is None:
            common.fail(f"--{name} is required")
    for name in ("input_dim", "output_dim"):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    if not FLAGS.budget > 0 or math.isinf(FLAGS.budget):
        common.fail(f"--budget must be a positive number, got {FLAGS.budget}")
    if FLAGS.num_candidates < 0:
        common.fail(f"--num_candidates must be >= 0, got {FLAGS.num_candidates}")
    if not 0.0 < FLAGS.balance_target < 1.0:
        common.fail(f"--balance_target must be in (0, 1), got {FLAGS.balance_target}")
    if FLAGS.top < 1:
        common.fail(f"--top must be >= 1, got {FLAGS.top}")


def _any_task(targets: list[float], lrs: list[float]) -> None:
    """Ranks candidates for a new task with the shipped cross-task parent (``analysis.meta.recommend``)."""
    if FLAGS.budget is None or not FLAGS.budget > 0 or math.isinf(FLAGS.budget):
        common.fail("--budget is required (a positive number)")
    if FLAGS.train_top and not (FLAGS.data or FLAGS.task):
        common.fail(
            "--train_top needs --data=FILE.npz or --task=NAME (the printed commands train a candidate on any file)"
        )
    if FLAGS.train_top and FLAGS.validate:
        common.fail("give one of --train_top and --validate")
    if FLAGS.train_top < 0:
        common.fail(f"--train_top must be >= 0, got {FLAGS.train_top}")
    if FLAGS.train_size is not None and FLAGS.train_size < 1:
        common.fail(f"--train_size must be >= 1, got {FLAGS.train_size}")
    if FLAGS.race_budget is not None and not FLAGS.race_budget > 0:
        common.fail(f"--race_budget must be > 0 model-epochs, got {FLAGS.race_budget}")
    if FLAGS.race_eta < 2 or FLAGS.race_top < 1 or FLAGS.race_diverse < 0:
        common.fail("--race_eta must be >= 2, --race_top >= 1 and --race_diverse >= 0")
    for name in ("top_k", "seeds", "epochs"):
        if FLAGS[name].value is not None and FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    common.expand_user("data")
    from sparse_rnn_jax.analysis.meta import newtask

    task_config = None
    if FLAGS.task:
        try:
            task_config = newtask.registered_task_config(FLAGS.task, FLAGS.task_config)
        except ValueError as e:
            common.fail(common.flag_error(e))
    trains = FLAGS.validate or FLAGS.train_top > 0 or FLAGS.race
    workdir = common.check_path("workdir", FLAGS.workdir, "dir") if trains else None
    if trains and workdir is None:
        common.check_path("workdir", ".", "dir")  # the default: a new folder here
    from sparse_rnn_jax.analysis.meta import recommend
    from sparse_rnn_jax.run.train import RunError

    try:
        if FLAGS.task:
            descriptor = newtask.registered_descriptor(FLAGS.task, task_config)
        else:
            task = {n: FLAGS[n].value for n in ("data", "input_dim", "output_dim", "seq_len", "loss")}
            descriptor = recommend.new_task_descriptor(**task)
        if FLAGS.train_size is not None:
            descriptor = {**descriptor, "train_size": FLAGS.train_size}
        rec = recommend.recommend_for_task(
            descriptor,
            FLAGS.budget,
            num_sampled=FLAGS.num_candidates,
            seed=FLAGS.seed,
            balance_target=FLAGS.balance_target,
            balance_targets=targets,
            learning_rates=lrs,
            ranker=FLAGS.ranker,
        )
        on = dict(task=FLAGS.task or "npz", task_config=task_config)
        recommend.attach_commands(
            rec, FLAGS.data, seeds=FLAGS.seeds, epochs=FLAGS.epochs, seed=FLAGS.seed, loss=FLAGS.loss or "", **on
        )
        training = dict(
            seeds=FLAGS.seeds,
            epochs=FLAGS.epochs,
            loss=FLAGS.loss or "",
            seed=FLAGS.seed,
            log=(lambda s: None) if FLAGS.json else print,
            **on,
        )
        if FLAGS.train_top:
            rec["trained"] = recommend.train_top(rec, FLAGS.data, workdir, k=FLAGS.train_top, **training)
        if FLAGS.validate:
            rec["validation"] = recommend.validate(rec, FLAGS.data, workdir, top_k=FLAGS.top_k, **training)
        newtask.add_extrapolation(rec)
        if FLAGS.race:
            from sparse_rnn_jax.analysis.meta.race import run_race

            make = newtask.rung_config_factory(
                FLAGS.task or "npz", task_config, FLAGS.data, FLAGS.loss or "", FLAGS.seed
            )
            rec["race"] = run_race(
                rec,
                make,
                newtask.race_workdir(workdir),
                epochs=FLAGS.epochs or newtask.zoo_epochs(rec),
                budget=FLAGS.race_budget,
                eta=FLAGS.race_eta,
                top=FLAGS.race_top,
                diverse=FLAGS.race_diverse,
                log=(lambda s: None) if FLAGS.json else print,
            )
    except (ValueError, RunError) as e:
        common.fail(common.flag_error(e))
    print(json.dumps(rec, indent=2) if FLAGS.json else newtask.full_text(rec, FLAGS.top))


def _check_task_source() -> None:
    """Where --validate and --race train: exactly one of --data and --task (one line, exit 2, before any work)."""
    if FLAGS.predictor and (FLAGS.data or FLAGS.validate or FLAGS.task or FLAGS.race):
        common.fail(
            "--data, --task, --validate and --race use the shipped cross-task parent; give them without --predictor"
        )
    if FLAGS.data and FLAGS.task:
        common.fail("give one of --data=FILE.npz and --task=NAME, not both")
    for name in ("validate", "race"):
        if FLAGS[name].value and not (FLAGS.data or FLAGS.task):
            common.fail(f"--{name} needs --data=FILE.npz or --task=NAME (with --task_config='{{...}}')")
    if not FLAGS.task and FLAGS.task_config.strip() not in ("", "{}"):
        common.fail("--task_config needs --task=NAME")


def main(argv):
    common.check_no_positional(argv)
    _check_task_source()
    if FLAGS.predictor and FLAGS.train_top:
        if FLAGS.train_top < 0 or FLAGS.seeds < 1:
            common.fail("--train_top must be >= 0 and --seeds >= 1")
        if not FLAGS.workdir:
            common.fail("--train_top with --predictor needs --workdir (where the top candidates train)")
        common.check_path("workdir", FLAGS.workdir, "dir")
    if not FLAGS.predictor and (FLAGS.data or FLAGS.task or FLAGS.seq_len is not None or FLAGS.loss is not None):
        targets = _floats("balance_targets", FLAGS.balance_targets, 0.0, 1.0)
        return _any_task(targets, _floats("learning_rates", FLAGS.learning_rates, 0.0, math.inf))
    _check_flags()
    targets = _floats("balance_targets", FLAGS.balance_targets, 0.0, 1.0)
    lrs = _floats("learning_rates", FLAGS.learning_rates, 0.0, math.inf)
    from sparse_rnn_jax.analysis.accounting_table import format_table
    from sparse_rnn_jax.core.accounting import describe_dict
    from sparse_rnn_jax.core.solvers import balanced_spec

    x, y, budget = FLAGS.input_dim, FLAGS.output_dim, FLAGS.budget
    try:
        spec = balanced_spec(x, y, budget, target=FLAGS.balance_target)
    except ValueError as e:
        common.fail(str(e))
    balanced = describe_dict(spec)
    balanced["densities"] = spec.densities()
    predictor = None
    if FLAGS.predictor:
        from sparse_rnn_jax.analysis.predictor import ParentPredictor, find_predictor

        try:
            folder = find_predictor(FLAGS.predictor, x, y)
            predictor = ParentPredictor.load(folder)
        except (ValueError, OSError, KeyError) as e:
            common.fail(f"cannot load predictor: {e}")
    out = {"input_dim": x, "output_dim": y, "budget": budget, "balanced": balanced}
    if predictor is not None:
        from sparse_rnn_jax.analysis.candidates import predictor_recommendation

        try:
            out.update(
                predictor_recommendation(
                    predictor,
                    str(folder),
                    x,
                    y,
                    budget,
                    num_candidates=FLAGS.num_candidates,
                    seed=FLAGS.seed,
                    balance_targets=targets,
                    learning_rates=lrs,
                    ranker=FLAGS.ranker,
                    seeds=FLAGS.seeds,
                    budget_slack=(BUDGET_SLACK_LOW, BUDGET_SLACK_HIGH),
                )
            )
        except ValueError as e:
            common.fail(str(e))
        if FLAGS.train_top:
            from sparse_rnn_jax.analysis.candidates import train_top_candidates
            from sparse_rnn_jax.run.train import RunError

            try:
                out["trained"] = train_top_candidates(
                    out,
                    FLAGS.train_top,
                    common.check_path("workdir", FLAGS.workdir, "dir"),
                    seeds=FLAGS.seeds,
                    log=(lambda s: None) if FLAGS.json else print,
                )
            except (ValueError, RunError) as e:
                common.fail(common.flag_error(e))
    if FLAGS.json:
        print(json.dumps(out, indent=2))
        return
    print("A-priori balanced network (Eqn 13: needs only |x|, |y| and the budget, no validation runs)\n")
    print(format_table(balanced))
    if predictor is None:
        print(
            "\nGive --predictor=OUT/predictor (from experiments.analyze) to rank candidate specs by predicted "
            "minimum validation loss, or --seq_len and --loss (or --data=FILE.npz) to rank them with the shipped "
            "cross-task parent."
        )
        return
    from sparse_rnn_jax.analysis.candidates import predictor_text

    print(predictor_text(out, FLAGS.top))


if __name__ == "__main__":
    common.run(main)
