"""Live training metrics of a sweep: TensorBoard event files (tensorboardX, no TensorFlow) and, optionally, W&B.

``MetricsWriter(logdir)`` is fed once per epoch of a chunk with that epoch's per-model rows (the results table's
rows: model_id, config, epoch, train_loss, val_loss, val_accuracy, diverged, hidden_proportion, ...) and writes:

    <metric>/p10, <metric>/p50, <metric>/p90   quantiles over the chunk's models (metric: train_loss, val_loss,
                                               val_accuracy; non-finite values left out; a metric with no finite
                                               value, e.g. accuracy on a regression task, is not written)
    config/<name>/<metric>                     mean over the chunk's models of each named configuration (a config
                                               name that is not a sampler name, e.g. balanced, lstm; and the
                                               paper's named configs, so "uniform" too, which is also a sampler's)
    diverged/share                             share of the chunk's models flagged ``diverged``
    hidden_proportion/p50                      the chunk's median hidden proportion (which part of the sweep it is)
    throughput/model_sequences_per_s           model-sequences trained per second in the epoch

**Steps.** The chunks of a sweep train one after another, each through all its epochs, so a tag shared by all
chunks at step = epoch would go back in time at every new chunk. Each chunk therefore writes into its own
TensorBoard run, ``logdir/chunk_<key>/``, with step = epoch: every (run, tag) is monotone, and TensorBoard overlays
the chunks' curves on one chart per tag. A chunk resumed after an interruption purges its own events from the
resumed epoch on (tensorboardX ``purge_step``). Population-wide statistics over all chunks are the analysis
report's (``analysis.report``), made from results.parquet once the sweep ends.

**W&B** (``wandb_project``): one W&B run; W&B needs one global step that only grows, so every call logs at the
next step the same values, prefixed ``chunk_<key>/``, with ``epoch`` as a field. It honours ``WANDB_MODE``
(``offline`` needs no account). Without wandb installed, or when ``wandb.init`` fails, one line says so and W&B
logging is off; TensorBoard logging goes on.
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


class MetricsWriter:
    """Writes each epoch of each chunk to TensorBoard (``logdir/chunk_<key>/``, step = epoch) and optionally W&B.

    Args:
      logdir: the TensorBoard folder (a sweep uses ``WORKDIR/tensorboard``); created when needed.
      wandb_project: a W&B project name; None: no W&B.
      run_name: the W&B run's name (e.g. the workdir's name).
      config: a JSON-able dict recorded as the W&B run's config (e.g. run.json's "config").
      log: where one-line notes go (stderr by default).
    """

    def __init__(
        self,
        logdir: str | Path,
        wandb_project: str | None = None,
        run_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        log: Log = _stderr,
    ):
        from tensorboardX import SummaryWriter

        self._summary_writer = SummaryWriter
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writers: dict[str, Any] = {}
        self._log = log
        self._wandb_run = None
        self._wandb_step = 0
        if wandb_project:
            self._wandb_run = self._start_wandb(wandb_project, run_name, config)

    def _start_wandb(self, project: str, run_name: str | None, config: Mapping[str, Any] | None):
        try:
            import wandb
        except ImportError:
            self._log("metrics: wandb is not installed (pip install wandb); W&B logging is off")
            return None
        try:
            return wandb.init(project=project, name=run_name, config=dict(config or {}), dir=str(self.logdir))
        except Exception as e:  # noqa: BLE001 - any W&B failure: one line, TensorBoard goes on
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self._log(f"metrics: W&B logging is off ({first})")
            return None

    @property
    def wandb_active(self) -> bool:
        """Whether a W&B run receives the metrics."""
        return self._wandb_run is not None

    def _writer(self, chunk_key: str, epoch: int):
        key = _safe(chunk_key)
        if key not in self._writers:
            # purge_step: a chunk resumed at this epoch hides its own earlier events from this epoch on.
            self._writers[key] = self._summary_writer(
                str(self.logdir / f"chunk_{key}"), purge_step=int(epoch), flush_secs=30
            )
        return self._writers[key]

    def epoch(
        self, chunk_key: str, epoch: int, rows: Iterable[Mapping[str, Any]], seconds: float, sequences: float
    ) -> dict[str, float]:
        """Writes one epoch of one chunk and returns the scalars written (tag -> value).

        Args:
          chunk_key: the chunk's key (its TensorBoard run is ``chunk_<key>``).
          epoch: the 1-based epoch just finished (the step).
          rows: the chunk's per-model rows of that epoch (dicts or a DataFrame).
          seconds: the epoch's wall seconds.
          sequences: model-sequences trained in the epoch (models x training sequences).
        """
        scalars = epoch_scalars(rows, seconds, sequences)
        writer = self._writer(chunk_key, epoch)
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, global_step=int(epoch))
        writer.flush()
        if self._wandb_run is not None:
            self._wandb_step += 1
            prefix = f"chunk_{_safe(chunk_key)}/"
            payload = {prefix + k: v for k, v in scalars.items()}
            payload.update({"epoch": int(epoch), "chunk": str(chunk_key)})
            self._wandb_run.log(payload, step=self._wandb_step)
        return scalars

    def close(self) -> None:
        """Flushes and closes every event file and finishes the W&B run."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_scalars(logdir: str | Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Every scalar in the event files under ``logdir``: {run folder (relative): {tag: [(step, value), ...]}}.

    Reads the TFRecord framing (length, masked CRC, event, masked CRC) with tensorboardX's protobuf classes, so it
    needs neither TensorFlow nor TensorBoard; the CRCs are checked. Steps are in file order.
    """
    import struct

    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    root = Path(logdir)
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for path in sorted(root.rglob("events.out.tfevents.*")):
        run = path.parent.relative_to(root).as_posix()
        tags = out.setdefault(run, {})
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
            event = event_pb2.Event.FromString(body)
            if event.HasField("summary"):
                for value in event.summary.value:
                    if value.HasField("simple_value"):
                        tags.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return out
