"""From a trained zoo folder to the meta-learning outputs, and the copy into the package.

``build_outputs(zoo_dir)`` writes ``ZOO_DIR/meta/``: ``meta_dataset.parquet`` (``dataset``), ``lofo.json`` and
``lofo.md`` (``loto.leave_one_out`` held out by family, the headline evaluation), with ``holdouts`` including
"task" also ``loto.json`` and ``loto.md`` (held out by task), and ``parent/`` (``parent``, fitted on every model,
with the evaluations' summaries in its ``parent.json``). ``ship(out_dir)`` copies the meta-dataset and the parent
to where the package reads them (``dataset.SHIPPED_DATASET``, ``parent.SHIPPED_PARENT``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from sparse_rnn_jax.analysis.meta.dataset import SHIPPED_DATASET, build_meta_dataset, families, write_meta_dataset
from sparse_rnn_jax.analysis.meta.loto import BOOTSTRAP, LOTO_TREES, leave_one_out, loto_markdown
from sparse_rnn_jax.analysis.meta.parent import DEFAULT_MAX_DEPTH, DEFAULT_TREES, SHIPPED_PARENT, fit_parent
from sparse_rnn_jax.analysis.predictor import MLPConfig, json_safe

META_DIR = "meta"
DATASET_FILE = "meta_dataset.parquet"
HOLDOUT_FILES = {"family": "lofo", "task": "loto"}
"""Hold-out unit -> the stem of its evaluation's .json and .md files."""
PARENT_DIR = "parent"
SHIPPED_SIZE_LIMIT = 10 * 2**20
"""The shipped meta-dataset and parent together stay under this many bytes."""


def build_outputs(
    zoo_dir: str | Path,
    *,
    trees: int = DEFAULT_TREES,
    loto_trees: int = LOTO_TREES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    mlp: bool = True,
    mlp_config: MLPConfig = MLPConfig(),
    bootstrap: int = BOOTSTRAP,
    holdouts: tuple[str, ...] = ("family",),
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict:
    """Builds the meta-dataset of ``zoo_dir``, evaluates the parent held out by each of ``holdouts`` (when the
    zoo has >= 2 such units), fits it on every model and writes ``zoo_dir/meta/`` (module docstring). Returns
    {"out", "models", "tasks", "lofo", "loto"} (an evaluation not run is None)."""
    out = Path(zoo_dir) / META_DIR
    frame = build_meta_dataset(zoo_dir, log)
    write_meta_dataset(frame, out / DATASET_FILE)
    tasks = sorted(frame["task"].unique())
    log(
        f"meta-dataset: {len(frame)} models of {len(tasks)} tasks in {len(set(families(frame)))} families "
        f"-> {out / DATASET_FILE}"
    )
    results: dict[str, dict | None] = {"family": None, "task": None}
    for by in holdouts:
        units = set(families(frame)) if by == "family" else set(tasks)
        if len(units) < 2:
            log(f"leave-one-{by}-out: skipped (needs at least 2)")
            continue
        result = leave_one_out(
            frame,
            by=by,
            trees=loto_trees,
            max_depth=max_depth,
            seed=seed,
            mlp=mlp,
            mlp_config=mlp_config,
            bootstrap=bootstrap,
            log=log,
        )
        stem = HOLDOUT_FILES[by]
        (out / f"{stem}.json").write_text(json.dumps(json_safe(result), indent=1, allow_nan=False))
        (out / f"{stem}.md").write_text(loto_markdown(result) + "\n")
        results[by] = result

    def summary(r):
        return None if r is None else {"settings": r["settings"], "units": r["units"], "summary": r["summary"]}

    parent = fit_parent(
        frame,
        trees=trees,
        max_depth=max_depth,
        seed=seed,
        mlp=mlp,
        mlp_config=mlp_config,
        loto=summary(results["task"]),
        lofo=summary(results["family"]),
    )
    parent.save(out / PARENT_DIR)
    log(f"cross-task parent -> {out / PARENT_DIR}")
    return {"out": out, "models": len(frame), "tasks": tasks, "lofo": results["family"], "loto": results["task"]}


def ship(out_dir: str | Path) -> list[Path]:
    """Copies ``out_dir``'s meta-dataset and parent into the package (replacing the shipped ones); a ValueError
    when they are larger than ``SHIPPED_SIZE_LIMIT`` together. Returns the written paths."""
    out_dir = Path(out_dir)
    sources = [out_dir / DATASET_FILE] + sorted((out_dir / PARENT_DIR).iterdir())
    size = sum(p.stat().st_size for p in sources)
    if size > SHIPPED_SIZE_LIMIT:
        raise ValueError(f"the meta-dataset and parent are {size / 2**20:.1f} MiB, over the 10 MiB shipped limit")
    written = [Path(shutil.copyfile(out_dir / DATASET_FILE, SHIPPED_DATASET))]
    if SHIPPED_PARENT.exists():
        shutil.rmtree(SHIPPED_PARENT)
    SHIPPED_PARENT.mkdir(parents=True)
    for p in sorted((out_dir / PARENT_DIR).iterdir()):
        written.append(Path(shutil.copyfile(p, SHIPPED_PARENT / p.name)))
    return written
