"""Draws a few RAD sequences as a PNG grid: one row per sequence, the anomaly framed in red.

  python -m experiments.show_rad --out=/tmp/rad.png [--mnist_source=auto] [--num_sequences=6]
      [--seed=0] [--split=train]

Bad flags or an unusable MNIST source: one line on stderr, exit status 2.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from absl import flags

from experiments import common

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Where to write the PNG.")
flags.DEFINE_string("mnist_source", "auto", "MNIST source: auto | tfds | embedded | idx:DIR.")
flags.DEFINE_integer("num_sequences", 6, "Sequences (rows) to draw.", lower_bound=1, upper_bound=100)
flags.DEFINE_integer("seed", 0, "RadConfig.seed.", lower_bound=0)
flags.DEFINE_enum("split", "train", ["train", "val", "test"], "Which split's sequences to draw.")
flags.mark_flag_as_required("out")
common.help_group("data", ["mnist_source", "num_sequences", "seed", "split"])
common.help_group("output", ["out"])


def _fail(message) -> None:
    common.fail(" ".join(str(message).split()))


def save_grid(split, config, out: str, title: str) -> None:
    """Saves ``split`` (a RadSplit) as a PNG: one row per sequence, its anomaly framed in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from sparse_rnn_jax.tasks.rad.generate import RECIPES

    rows, n = split.images.shape[:2]
    side = config.image_size
    fig = plt.figure(figsize=(1.05 * (n + 1), 1.45 * rows + 0.4), layout="constrained")
    fig.suptitle(title, fontsize=10)
    for row, sub in enumerate(np.atleast_1d(fig.subfigures(rows, 1))):
        recipe_a, recipe_b = (RECIPES[r] for r in split.recipes[row])
        sub.suptitle(
            f"#{row}  digit {split.digits[row]}   normal: {recipe_a}   anomaly (pos {split.labels[row]}): {recipe_b}",
            fontsize=8,
        )
        axes = sub.subplots(1, n + 1)
        for col, ax in enumerate(axes):
            pixels = split.images[row, col].reshape(side, side) if col < n else np.zeros((side, side))
            ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("query" if col == n else str(col), fontsize=7, labelpad=1)
            if col == split.labels[row]:
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(3)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    common.check_no_positional(argv)
    common.expand_user("out")
    common.check_path("out", FLAGS.out, "file")
    from sparse_rnn_jax.tasks.rad import generate as rad
    from sparse_rnn_jax.tasks.rad.mnist import MnistSourceError, load_mnist

    try:
        digits = load_mnist(FLAGS.mnist_source, log=print)
        config = dataclasses.replace(rad.RadConfig(seed=FLAGS.seed), **{f"{FLAGS.split}_size": FLAGS.num_sequences})
        split = rad.make_rad_split(digits, config, FLAGS.split)
    except (MnistSourceError, ValueError) as e:
        _fail(e)
    title = f"RAD {FLAGS.split}, seed {FLAGS.seed}, {digits.source} (anomaly framed red)"
    save_grid(split, config, FLAGS.out, title)
    print(f"show_rad: wrote {FLAGS.out}")


if __name__ == "__main__":
    common.run(main)
