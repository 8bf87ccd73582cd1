"""The sweep's progress bar: one rate and an ETA that knows chunks differ in cost and that new shapes compile.

tqdm's own rate and ETA count steps, but a step of a chunk of 300 wide models costs far more than one of 20
narrow ones, and the first call of each new program shape includes XLA's compilation (seconds to minutes). So the
bar shows ``steps/s`` of the current chunk (after its first call) and an ETA from

    remaining work / work rate + programs still to compile x mean compile time so far

where a step's work is the chunk's models x their padded matrix entries (``step_work``), the work rate is timed
on calls that compiled nothing, and a first call's compile time is its wall time less its work at that rate.
Before any call has been timed the ETA shows ``?``.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Hashable, Sequence

BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
"""tqdm's bar without its own rate and ETA (``SweepEta`` supplies them)."""


def step_work(chunk, input_dim: int, output_dim: int) -> float:
    """Work of one step of ``chunk``: models x padded weight-matrix entries (h(x + h + y) + y(x + h + y))."""
    h = chunk.padded_hidden_dim
    return float(chunk.size) * (h + output_dim) * (input_dim + h + output_dim)


def format_seconds(seconds: float) -> str:
    """``1:22`` or ``1:02:03``; ``?`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class SweepEta:
    """Tracks a sweep's work and time (module docstring).

    Args:
      chunks: (work per step, steps still to train, program shape) of each chunk still to train, in order.
      clock: the time source (``time.perf_counter``).
    """

    def __init__(self, chunks: Sequence[tuple[float, int, Hashable]], clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self._remaining = sum(w * n for w, n, _ in chunks)
        self._to_compile = {shape for _, _, shape in chunks}
        self._compiled: set = set()
        self._timed_work = 0.0
        self._timed_seconds = 0.0
        self._compile_seconds: list[float] = []
        self._pending: list[tuple[float, int, Hashable]] = []  # first calls waiting for a work rate
        self._chunk_steps = 0
        self._chunk_seconds = 0.0

    def start_chunk(self) -> None:
        """A new chunk begins: its rate starts afresh."""
        self._chunk_steps, self._chunk_seconds = 0, 0.0

    def record(self, work_per_step: float, steps: int, seconds: float, shape: Hashable) -> None:
        """One call of ``steps`` steps took ``seconds``; the first call of a new ``shape`` compiled it."""
        self._remaining = max(0.0, self._remaining - work_per_step * steps)
        if shape not in self._compiled:
            self._compiled.add(shape)
            self._to_compile.discard(shape)
            self._pending.append((work_per_step * steps, steps, seconds))
        else:
            self._timed_work += work_per_step * steps
            self._timed_seconds += seconds
            self._chunk_steps += steps
            self._chunk_seconds += seconds
        rate = self.work_rate
        if rate > 0:
            for work, _, wall in self._pending:
                self._compile_seconds.append(max(0.0, wall - work / rate))
            self._pending.clear()

    @property
    def work_rate(self) -> float:
        """Work per second on calls that compiled nothing (0 before any)."""
        return self._timed_work / self._timed_seconds if self._timed_seconds > 0 else 0.0

    @property
    def steps_per_s(self) -> float:
        """The current chunk's steps per second, its compiling call left out (NaN before a timed call)."""
        return self._chunk_steps / self._chunk_seconds if self._chunk_seconds > 0 else math.nan

    @property
    def eta_seconds(self) -> float:
        """Seconds left: remaining work at the work rate plus the programs still to compile (NaN when unknown)."""
        rate = self.work_rate
        if rate <= 0:
            return math.nan
        compile_each = sum(self._compile_seconds) / len(self._compile_seconds) if self._compile_seconds else 0.0
        return self._remaining / rate + compile_each * len(self._to_compile)

    def postfix(self) -> str:
        """``12.3 steps/s, ETA 1:22`` for the bar."""
        rate = self.steps_per_s
        return f"{'?' if math.isnan(rate) else f'{rate:.1f}'} steps/s, ETA {format_seconds(self.eta_seconds)}"
