"""Runs side by side: when ``analyze`` is given several results folders, one table and one figure compare the
configurations they share (the named configurations, baseline cells and explicit specs; the sampled draws as one
row per sampler) across runs, whatever their tasks or seeds.

The value is the minimum validation loss / the run's chance loss (1 = chance; raw when a run records none, so the
columns stay comparable across tasks), as mean and 95 % t-interval over the configuration's models in that run,
with the model count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sparse_rnn_jax.analysis.tables import t_interval


def run_label(run: str) -> str:
    """A run's short name: its folder's name (its parent's too when needed to tell runs apart is the caller's)."""
    return Path(str(run)).name or str(run)


def comparison_table(models: pd.DataFrame) -> pd.DataFrame:
    """One row per (config, run): models, mean, lo, hi of the normalised minimum validation loss, and its unit.

    ``models``: ``final_per_model`` rows of several runs (columns run, config, min_val_loss, chance_loss)."""
    chance = models["chance_loss"].astype(float)
    usable = np.isfinite(chance) & (chance > 0)
    value = np.where(usable, models["min_val_loss"] / chance.where(usable, 1.0), models["min_val_loss"])
    frame = models.assign(value=value, unit=np.where(usable, "/ chance", "raw"))
    labels = _labels(sorted(frame["run"].unique()))
    rows = []
    for (config, run), g in frame.groupby(["config", "run"], sort=True):
        v = g["value"].to_numpy(float)
        v = v[np.isfinite(v)]
        lo, hi = t_interval(v)
        rows.append(
            {
                "config": config,
                "run": labels[run],
                "task": str(g["task"].iloc[0]) if "task" in g else "",
                "models": int(v.size),
                "mean": float(v.mean()) if v.size else np.nan,
                "lo": lo,
                "hi": hi,
                "unit": str(g["unit"].iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def _labels(runs: list[str]) -> dict[str, str]:
    """Folder names, with their parent's name where two runs share one."""
    names = {r: run_label(r) for r in runs}
    if len(set(names.values())) < len(names):
        names = {r: "/".join(Path(r).parts[-2:]) for r in runs}
    return names


def comparison_markdown(table: pd.DataFrame) -> str:
    """The table as configs x runs: ``mean [lo, hi] (n)``."""
    runs = list(dict.fromkeys(table["run"]))
    head = "| config | " + " | ".join(f"`{r}`" for r in runs) + " |"
    lines = [head, "|---|" + "---|" * len(runs)]
    for config, g in table.groupby("config", sort=True):
        cells = []
        by_run = {r["run"]: r for r in g.to_dict("records")}
        for run in runs:
            r = by_run.get(run)
            if r is None or not np.isfinite(r["mean"]):
                cells.append("")
            elif np.isfinite(r["lo"]):
                cells.append(f"{r['mean']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({r['models']})")
            else:
                cells.append(f"{r['mean']:.3f} ({r['models']})")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_figure(table: pd.DataFrame, path: Path, title: str) -> Path:
    """One row per configuration, one marker per run (mean with its 95 % interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = sorted(table["config"].unique())
    runs = list(dict.fromkeys(table["run"]))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(configs) + 1.5))
    offsets = np.linspace(-0.3, 0.3, len(runs)) if len(runs) > 1 else [0.0]
    for k, run in enumerate(runs):
        sub = table[table["run"] == run].set_index("config")
        ys = [i + offsets[k] for i, c in enumerate(configs) if c in sub.index]
        rows = [sub.loc[c] for c in configs if c in sub.index]
        means = np.array([r["mean"] for r in rows], float)
        lo = np.array([r["lo"] if np.isfinite(r["lo"]) else r["mean"] for r in rows], float)
        hi = np.array([r["hi"] if np.isfinite(r["hi"]) else r["mean"] for r in rows], float)
        ax.errorbar(means, ys, xerr=[means - lo, hi - means], fmt="o", capsize=3, label=run)
    ax.set_yticks(range(len(configs)), configs)
    ax.invert_yaxis()
    units = set(table["unit"])
    ax.set_xlabel("minimum validation loss " + ("/ chance loss" if units == {"/ chance"} else "(/ chance where known)"))
    if units == {"/ chance"}:
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
