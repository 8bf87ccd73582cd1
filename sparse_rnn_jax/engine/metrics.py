"""Live training metrics of a sweep: TensorBoard event files (tensorboardX, no TensorFlow) and, optionally, W&B.

``MetricsWriter(logdir)`` is fed once per epoch of a chunk with that epoch's per-model rows (the results table's
rows: model_id, config, epoch, train_loss, val_loss, val_accuracy, diverged and every hyperparameter) and writes
TensorBoard runs under ``logdir`` (``WORKDIR/tensorboard``):

    sweep/                  ONE run for the whole sweep, at the global step (below):
      <metric>/p10, /p50, /p90    quantiles over the chunk's models (metric: train_loss, val_loss, val_accuracy;
                                  non-finite values left out; a metric with no finite value is not written)
      config/<name>/<metric>      mean over the chunk's models of each named configuration
      diverged/share              share of the chunk's models flagged ``diverged``
      hidden_proportion/p50       the chunk's median hidden proportion (which part of the sweep it is)
      progress/chunk, progress/epoch   where the sweep was (chunk index from 0, epoch of that chunk)
      throughput/model_sequences_per_s
    models/<id>_<config>/   one run per model, step = epoch: train_loss, val_loss, val_accuracy curves (for the
                            models ``log_models`` picks: all, named (default: the named configurations and explicit
                            specs, not the sampled draws) or none), and for EVERY model, at its last epoch, the
                            hparams plugin's session (its hyperparameters: hidden size, learning rate, the 18 block
                            densities and inits, hidden proportion, model density, trainable weights, config, ...)
                            with its final metrics hparams/min_val_loss, hparams/final_val_loss,
                            hparams/best_val_accuracy, hparams/diverged: TensorBoard's HParams table, parallel
                            coordinates and scatter plots then compare the models.

**Global step.** The chunks of a sweep train one after another, each through all its epochs; the sweep run's
step is ``chunk index x epochs + epoch``, so it only grows while the sweep trains and TensorBoard draws one curve
through all chunks. A resumed or extended run rewrites the sweep run from results.parquet (``history``) with a
purge from step 1, so an extension to more epochs (which moves the later chunks' steps) leaves no stale points;
model runs are purged from the epoch they resume at.

**W&B** (``wandb_project``): one W&B run; config = the run config; the sweep run's scalars at the same global
step (``sweep/...``), the picked models' curves (``models/<id>_<config>/...``), and at the end a table of every
model (hyperparameters and final metrics, ``models``) and the best model in the run summary. It honours
``WANDB_MODE`` (``offline`` needs no account) and ``WANDB_DIR`` (else its files go under ``logdir``). Without
wandb installed, or when ``wandb.init`` fails, one line says so and W&B logging is off; TensorBoard goes on.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from sparse_rnn_jax.core.configs import NAMED_CONFIGS
from sparse_rnn_jax.core.samplers import SAMPLERS

QUANTILES: tuple[int, ...] = (10, 50, 90)
QUANTILE_METRICS: tuple[str, ...] = ("train_loss", "val_loss", "val_accuracy")
TENSORBOARD_DIR = "tensorboard"
"""The folder under a sweep's workdir that the sweep's writer uses (``WORKDIR/tensorboard``)."""

Log = Callable[[str], Any]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _safe(name: str) -> str:
    """A name usable as a folder and a tag part: anything but letters, digits, '.', '-', '_' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(name)) or "_"


def _records(rows: Any) -> list[Mapping[str, Any]]:
    if hasattr(rows, "to_dict"):  # a pandas DataFrame
        return rows.to_dict("records")
    return list(rows)


def _column(records: list[Mapping[str, Any]], name: str) -> np.ndarray:
    """f64[n] of ``name`` (NaN where a row lacks it or holds None)."""
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        v = r.get(name)
        if v is not None:
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                pass
    return out


def epoch_scalars(rows: Iterable[Mapping[str, Any]], seconds: float, sequences: float) -> dict[str, float]:
    """The scalars of one epoch of one chunk (tag -> value; see the module docstring).

    Args:
      rows: the chunk's per-model rows of the epoch (dicts, or a DataFrame).
      seconds: wall seconds of the epoch.
      sequences: model-sequences trained in the epoch (models x training sequences).
    """
    records = _records(rows)
    out: dict[str, float] = {}
    for metric in QUANTILE_METRICS:
        values = _column(records, metric)
        values = values[np.isfinite(values)]
        if values.size:
            for q, v in zip(QUANTILES, np.percentile(values, QUANTILES)):
                out[f"{metric}/p{q}"] = float(v)
    configs = [str(r.get("config")) for r in records]
    for name in sorted({c for c in configs if (c not in SAMPLERS or c in NAMED_CONFIGS) and c != "None"}):
        picked = [r for r, c in zip(records, configs) if c == name]
        for metric in QUANTILE_METRICS:
            values = _column(picked, metric)
            values = values[np.isfinite(values)]
            if values.size:
                out[f"config/{_safe(name)}/{metric}"] = float(values.mean())
    if records:
        diverged = [bool(r.get("diverged")) if r.get("diverged") is not None else False for r in records]
        out["diverged/share"] = float(np.mean(diverged))
        hp = _column(records, "hidden_proportion")
        if np.isfinite(hp).any():
            out["hidden_proportion/p50"] = float(np.median(hp[np.isfinite(hp)]))
    if seconds > 0 and math.isfinite(seconds):
        out["throughput/model_sequences_per_s"] = float(sequences) / float(seconds)
    return out


LOG_MODELS: tuple[str, ...] = ("all", "named", "none")
"""Which models get their own curves: all, the named ones (named configurations and explicit specs), none."""
SWEEP_RUN = "sweep"
MODELS_DIR = "models"
HPARAM_COLUMNS: tuple[str, ...] = (
    ("config", "hidden_dim", "learning_rate", "hidden_proportion", "model_density", "trainable_params")
    + tuple(f"{k}_{b}" for k in ("density", "init_mean", "init_std") for b in ("hx", "hh", "hy", "yx", "yh", "yy"))
    + ("activation", "seed", "leak_mode", "hh_graph")
)
"""The hyperparameters of a model's hparams session (columns of the results rows)."""
FINAL_METRICS: tuple[str, ...] = ("min_val_loss", "final_val_loss", "best_val_accuracy", "diverged")


def is_named(config: str) -> bool:
    """Whether a results row's config names a configuration (balanced, lstm, an explicit spec) rather than a
    sampler's draw."""
    return (config not in SAMPLERS or config in NAMED_CONFIGS) and config != "None"


def model_run(row: Mapping[str, Any]) -> str:
    """The TensorBoard run (and W&B key prefix) of a model: ``models/<id>_<config>``."""
    return f"{MODELS_DIR}/{int(row['model_id']):05d}_{_safe(row.get('config'))}"


def hparams_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The model's hyperparameters for the hparams plugin: every ``HPARAM_COLUMNS`` entry, numbers as floats, text
    as text ("none" where missing), so every session has the same keys."""
    out: dict[str, Any] = {}
    for k in HPARAM_COLUMNS:
        v = row.get(k)
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = float(v)
        else:
            out[k] = "none" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    return out


class MetricsWriter:
    """Writes each epoch of each chunk to TensorBoard (module docstring) and optionally W&B.

    Args:
      logdir: the TensorBoard folder (a sweep uses ``WORKDIR/tensorboard``); created when needed.
      wandb_project: a W&B project name; None: no W&B.
      run_name: the W&B run's name (e.g. the workdir's name).
      config: a JSON-able dict recorded as the W&B run's config (e.g. run.json's "config").
      log: where one-line notes go (stderr by default).
      chunk_keys: the sweep's chunks in training order (the global step's chunk index); a chunk not listed gets
        the next index when it first appears.
      epochs: the sweep's epochs (the global step's stride and each model's last epoch); None: the step counts the
        writer's calls and no model is known to have finished.
      log_models: which models get their own curves (``LOG_MODELS``).
      history: the rows already committed (results.parquet of a resumed or extended run), rewritten into the sweep
        run before anything else; ``chunk_of`` maps their model_id to chunk key.
    """

    def __init__(
        self,
        logdir: str | Path,
        wandb_project: str | None = None,
        run_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        log: Log = _stderr,
        *,
        chunk_keys: Iterable[str] = (),
        epochs: int | None = None,
        log_models: str = "named",
        history: Any = None,
        chunk_of: Mapping[int, str] | None = None,
    ):
        from tensorboardX import SummaryWriter

        if log_models not in LOG_MODELS:
            raise ValueError(f"log_models must be one of {LOG_MODELS}, got {log_models!r}")
        self._summary_writer = SummaryWriter
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._log = log
        self._epochs = epochs
        self._log_models = log_models
        self._positions = {str(k): i for i, k in enumerate(chunk_keys)}
        self._calls = 0
        self._models: dict[str, Any] = {}  # open model writers of the current chunk
        self._model_chunk: str | None = None
        self._best: dict[int, dict[str, float]] = {}  # model_id -> running min val loss, best accuracy
        self._final: dict[int, dict[str, Any]] = {}  # model_id -> hyperparameters and final metrics
        self._sweep = SummaryWriter(str(self.logdir / SWEEP_RUN), purge_step=1, flush_secs=30)
        self._pending: list[tuple[int, str, int, dict]] = []  # replayed history not yet written (by step)
        self._wandb_run = None
        if wandb_project:
            self._wandb_run = self._start_wandb(wandb_project, run_name, config)
        if history is not None and len(history):
            self._replay(_records(history), chunk_of or {})

    def _start_wandb(self, project: str, run_name: str | None, config: Mapping[str, Any] | None):
        try:
            import wandb
        except ImportError:
            self._log("metrics: wandb is not installed (pip install wandb); W&B logging is off")
            return None
        try:
            import os

            where = None if os.environ.get("WANDB_DIR") else str(self.logdir)  # WANDB_DIR wins when set
            run = wandb.init(project=project, name=run_name, config=dict(config or {}), dir=where)
            run.define_metric("global_step")
            run.define_metric("*", step_metric="global_step")  # x-axis: the sweep's global step
            return run
        except Exception as e:  # noqa: BLE001 - any W&B failure: one line, TensorBoard goes on
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self._log(f"metrics: W&B logging is off ({first})")
            return None

    @property
    def wandb_active(self) -> bool:
        """Whether a W&B run receives the metrics."""
        return self._wandb_run is not None

    def global_step(self, chunk_key: str, epoch: int) -> int:
        """The sweep run's step of this chunk's epoch (module docstring)."""
        key = str(chunk_key)
        if key not in self._positions:
            self._positions[key] = max(self._positions.values(), default=-1) + 1
        if self._epochs is None:
            return self._calls
        return self._positions[key] * self._epochs + int(epoch)

    def _picked(self, row: Mapping[str, Any]) -> bool:
        if row.get("model_id") is None:
            return False
        return self._log_models == "all" or (self._log_models == "named" and is_named(str(row.get("config"))))

    def _track(self, records: list[Mapping[str, Any]]) -> None:
        for r in records:
            if r.get("model_id") is None:
                continue
            best = self._best.setdefault(int(r["model_id"]), {"min_val_loss": math.inf, "best_val_accuracy": -math.inf})
            for key, value, pick in (
                ("min_val_loss", r.get("val_loss"), min),
                ("best_val_accuracy", r.get("val_accuracy"), max),
            ):
                if value is not None and np.isfinite(float(value)):
                    best[key] = pick(best[key], float(value))

    def _replay(self, records: list[Mapping[str, Any]], chunk_of: Mapping[int, str]) -> None:
        self._track(records)
        groups: dict[tuple[str, int], list] = {}
        for r in records:
            key = str(chunk_of.get(int(r["model_id"]), "?"))
            groups.setdefault((key, int(r["epoch"])), []).append(r)
        for (key, epoch), rows in sorted(groups.items(), key=lambda kv: (self.global_step(kv[0][0], 0), kv[0][1])):
            self._calls += 1
            step = self.global_step(key, epoch)
            self._pending.append((step, key, epoch, epoch_scalars(rows, 0.0, 0.0)))
            self._final_metrics(rows, epoch, write=False)
        self._pending.sort(key=lambda p: p[0])

    def _flush_pending(self, before: float) -> None:
        """Writes the replayed points whose step comes before ``before`` (TensorBoard drops points written after a
        larger step, so history the sweep has not reached yet waits for it)."""
        while self._pending and self._pending[0][0] < before:
            step, key, epoch, scalars = self._pending.pop(0)
            self._emit(step, key, epoch, scalars)

    def _write_sweep(self, chunk_key: str, epoch: int, scalars: Mapping[str, float]) -> int:
        step = self.global_step(chunk_key, epoch)
        self._flush_pending(step)
        self._pending = [p for p in self._pending if p[0] != step]  # the live point replaces its replay
        return self._emit(step, chunk_key, epoch, scalars)

    def _emit(self, step: int, chunk_key: str, epoch: int, scalars: Mapping[str, float]) -> int:
        values = dict(scalars)
        values["progress/chunk"] = float(self._positions[str(chunk_key)])
        values["progress/epoch"] = float(epoch)
        for tag, value in values.items():
            self._sweep.add_scalar(tag, value, global_step=step)
        if self._wandb_run is not None:
            payload = {f"{SWEEP_RUN}/{k}": v for k, v in values.items()}
            self._wandb_run.log({**payload, "global_step": step})
        return step

    def _model_writer(self, row: Mapping[str, Any], chunk_key: str, epoch: int):
        if chunk_key != self._model_chunk:
            self._close_models()
            self._model_chunk = chunk_key
        run = model_run(row)
        if run not in self._models:  # purge_step: a model resumed at this epoch hides its own later events
            self._models[run] = self._summary_writer(str(self.logdir / run), purge_step=int(epoch), flush_secs=60)
        return self._models[run]

    def _close_models(self) -> None:
        for writer in self._models.values():
            writer.close()
        self._models.clear()

    def _final_metrics(self, records: list[Mapping[str, Any]], epoch: int, write: bool = True) -> None:
        """Records (and with ``write`` writes the hparams session of) every model whose last epoch this is."""
        if self._epochs is None or int(epoch) != self._epochs:
            return
        for r in records:
            if r.get("model_id") is None:
                continue
            mid = int(r["model_id"])
            best = self._best.get(mid, {})
            val = r.get("val_loss")
            metrics = {
                "hparams/min_val_loss": best.get("min_val_loss", math.nan),
                "hparams/final_val_loss": float(val) if val is not None else math.nan,
                "hparams/best_val_accuracy": best.get("best_val_accuracy", math.nan),
                "hparams/diverged": float(bool(r.get("diverged"))),
            }
            metrics = {k: (v if np.isfinite(v) else math.nan) for k, v in metrics.items()}
            hp = hparams_of(r)
            self._final[mid] = {"model_id": mid, "run": model_run(r), **hp, **metrics}
            if write:
                self._write_hparams(r, hp, metrics, epoch)

    def _write_hparams(self, row, hp: dict, metrics: dict, epoch: int) -> None:
        from tensorboardX.summary import hparams

        exp, ssi, sei = hparams(hp, {k: v for k, v in metrics.items()})
        run = model_run(row)
        own = run not in self._models
        writer = self._summary_writer(str(self.logdir / run), flush_secs=60) if own else self._models[run]
        for summary in (exp, ssi, sei):
            writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            if math.isfinite(value):  # a regression task has no accuracy: its metric stays blank
                writer.add_scalar(tag, value, global_step=int(epoch))
        writer.close() if own else writer.flush()

    def epoch(
        self, chunk_key: str, epoch: int, rows: Iterable[Mapping[str, Any]], seconds: float, sequences: float
    ) -> dict[str, float]:
        """Writes one epoch of one chunk and returns the sweep run's scalars (tag -> value).

        Args:
          chunk_key: the chunk's key.
          epoch: the 1-based epoch just finished.
          rows: the chunk's per-model rows of that epoch (dicts or a DataFrame).
          seconds: the epoch's wall seconds.
          sequences: model-sequences trained in the epoch (models x training sequences).
        """
        records = _records(rows)
        self._calls += 1
        self._track(records)
        scalars = epoch_scalars(records, seconds, sequences)
        step = self._write_sweep(chunk_key, epoch, scalars)
        self._sweep.flush()
        curves = {}
        for r in records:
            if not self._picked(r):
                continue
            writer = self._model_writer(r, str(chunk_key), epoch)
            for metric in QUANTILE_METRICS:
                v = r.get(metric)
                if v is not None and np.isfinite(float(v)):
                    writer.add_scalar(metric, float(v), global_step=int(epoch))
                    curves[f"{model_run(r)}/{metric}"] = float(v)
            writer.flush()
        if curves and self._wandb_run is not None:
            self._wandb_run.log({**curves, "global_step": step})
        self._final_metrics(records, epoch)
        if self._epochs is not None and int(epoch) == self._epochs:
            self._close_models()
        return scalars

    def models_table(self) -> list[dict[str, Any]]:
        """One dict per model that reached its last epoch: its run, hyperparameters and final metrics."""
        return [self._final[k] for k in sorted(self._final)]

    def close(self) -> None:
        """Flushes and closes every event file; logs the models table to W&B and finishes its run."""
        self._flush_pending(math.inf)
        self._close_models()
        self._sweep.close()
        if self._wandb_run is not None:
            table = self.models_table()
            if table:
                import wandb

                columns = list(table[0])
                self._wandb_run.log(
                    {"models": wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in table])}
                )
                best = min(
                    table,
                    key=lambda r: r["hparams/min_val_loss"] if np.isfinite(r["hparams/min_val_loss"]) else math.inf,
                )
                self._wandb_run.summary.update(
                    {"best_model": best["run"], "best_min_val_loss": best["hparams/min_val_loss"]}
                )
            self._wandb_run.finish()
            self._wandb_run = None

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _events(path: Path):
    """The events of one event file, reading the TFRecord framing (length, masked CRC, event, masked CRC) with
    tensorboardX's protobuf classes (no TensorFlow or TensorBoard); the CRCs are checked."""
    import struct

    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if masked_crc32c(header) != header_crc:
            raise ValueError(f"{path}: corrupt record header at byte {pos}")
        body = data[pos + 12 : pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
        if masked_crc32c(body) != body_crc:
            raise ValueError(f"{path}: corrupt record at byte {pos}")
        pos += 16 + length
        yield event_pb2.Event.FromString(body)


def read_scalars(logdir: str | Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Every scalar in the event files under ``logdir``: {run folder (relative): {tag: [(step, value), ...]}}, steps
    in file order (files by name, so by creation time)."""
    root = Path(logdir)
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for path in sorted(root.rglob("events.out.tfevents.*")):
        tags = out.setdefault(path.parent.relative_to(root).as_posix(), {})
        for event in _events(path):
            if event.HasField("summary"):
                for value in event.summary.value:
                    if value.HasField("simple_value"):
                        tags.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return out


def read_hparams(logdir: str | Path) -> dict[str, dict[str, Any]]:
    """The hparams plugin's sessions under ``logdir``: {run folder (relative): {hyperparameter: value}} (the last
    session start of each run)."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    root = Path(logdir)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("events.out.tfevents.*")):
        for event in _events(path):
            for value in event.summary.value if event.HasField("summary") else ():
                if value.metadata.plugin_data.plugin_name != "hparams":
                    continue
                data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if data.HasField("session_start_info"):
                    hp = data.session_start_info.hparams
                    out[path.parent.relative_to(root).as_posix()] = {
                        k: getattr(v, v.WhichOneof("kind")) for k, v in hp.items()
                    }
    return out
