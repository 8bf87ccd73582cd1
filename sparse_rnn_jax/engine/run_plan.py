"""The plan of a run, computed once: which members it trains, in which hidden-size buckets and chunks, at most
how many models per chunk, with which operand dtype and program form (``RunPlan``).

``plan_members`` is the one place a plan is made (from the members, the training config and the device count);
``make_run_plan`` builds the members first (``engine.members.build_members``). The sweep trains a plan's chunks,
run.json records it (``RunPlan.as_dict``), and a resume, ``load_run``, ``--plan``, pruning, the Adroit scoring and
the bench read the same value (``RunPlan.from_dict`` checks a recorded plan against the members its config
rebuilds). Chunk keys and members do not depend on the device count; only the ghosts that pad each chunk to a
multiple of the devices do (``RunPlan.for_devices``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.engine.devices import device_memory_bytes
from sparse_rnn_jax.engine.members import build_members
from sparse_rnn_jax.engine.population import Chunk, Member, make_chunks, padding_efficiency, resolve_chunk_models

PLAN_VERSION = 1
"""Version of ``RunPlan.as_dict``'s layout (run.json's ``plan``)."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run trains and how: ``members`` in id order, ``chunks`` (each one compiled program, bucketed by
    hidden size per family and activation, padded with ghosts to a multiple of ``device_count``), the most models
    per chunk ``chunk_models``, ``max_buckets``, the products' operand dtype ``compute_dtype`` and the program form
    as configured (``program_form``: auto, population or loop; ``engine.programs.choose_form`` resolves it on the
    machine that trains)."""

    members: tuple[Member, ...]
    chunks: tuple[Chunk, ...]
    chunk_models: int
    max_buckets: int
    device_count: int = 1
    compute_dtype: str = "float32"
    program_form: str = "auto"

    @property
    def buckets(self) -> tuple[int, ...]:
        """The hidden-size buckets, in order."""
        return tuple(sorted({c.bucket for c in self.chunks}))

    @property
    def padding_efficiency(self) -> float:
        """Useful / executed matrix FLOPs over every chunk (``engine.population.padding_efficiency``)."""
        return padding_efficiency(self.chunks)

    def describe(self) -> str:
        """One line: models, buckets, chunks, devices and padding efficiency."""
        return (
            f"{len(self.members)} models in {len(self.buckets)} hidden-size buckets, {len(self.chunks)} chunks "
            f"on {self.device_count} device(s); padding efficiency {self.padding_efficiency:.1%}"
        )

    def for_devices(self, device_count: int) -> RunPlan:
        """The same plan on ``device_count`` devices: the same chunks and members, each padded with ghosts to a
        multiple of the devices."""
        if device_count < 1:
            raise ValueError(f"device_count must be >= 1, got {device_count}")
        if device_count == self.device_count:
            return self
        chunks = tuple(dataclasses.replace(c, ghosts=(-len(c.members)) % device_count) for c in self.chunks)
        return dataclasses.replace(self, chunks=chunks, device_count=device_count)

    def chunk_of(self) -> dict[int, str]:
        """{model_id: key of its chunk}."""
        return {m.model_id: c.key for c in self.chunks for m in c.members}

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data (run.json's ``plan``): its settings and, per chunk, its key, bucket, padded
        hidden size, family, activation, ghosts and model ids. The members themselves are not written: their
        specs are rebuilt from the run's config (``from_dict`` checks that they fit)."""
        return {
            "version": PLAN_VERSION,
            "models": len(self.members),
            "chunk_models": self.chunk_models,
            "max_buckets": self.max_buckets,
            "device_count": self.device_count,
            "compute_dtype": self.compute_dtype,
            "program_form": self.program_form,
            "padding_efficiency": self.padding_efficiency,
            "chunks": [
                {
                    "key": c.key,
                    "bucket": c.bucket,
                    "index": c.index,
                    "padded_hidden_dim": c.padded_hidden_dim,
                    "family": c.family,
                    "activation": c.activation,
                    "ghosts": c.ghosts,
                    "model_ids": [m.model_id for m in c.members],
                }
                for c in self.chunks
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, members: Sequence[Member]) -> RunPlan:
        """The plan ``as_dict`` wrote, its chunks filled with ``members`` (rebuilt from the run's config).
        ValueError naming the problem when the data is not such a plan or does not fit the members."""
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise ValueError(f"plan: not a version-{PLAN_VERSION} run plan (version {version!r})")
        try:
            by_id = {m.model_id: m for m in members}
            if data["models"] != len(members) or len(by_id) != len(members):
                raise ValueError(f"it holds {data['models']} models, the config rebuilds {len(members)}")
            chunks, seen = [], 0
            for c in data["chunks"]:
                unknown = [i for i in c["model_ids"] if i not in by_id]
                if unknown or not c["model_ids"]:
                    raise ValueError(f"chunk {c.get('key')!r} names no model or models the config lacks {unknown[:3]}")
                part = tuple(by_id[int(i)] for i in c["model_ids"])
                chunk = Chunk(int(c["bucket"]), int(c["index"]), int(c["padded_hidden_dim"]), part, int(c["ghosts"]))
                if (chunk.key, chunk.family, chunk.activation) != (c["key"], c["family"], c["activation"]):
                    raise ValueError(f"chunk {c.get('key')!r} does not fit its members")
                if any(
                    (m.spec.family, m.spec.activation) != (chunk.family, chunk.activation)
                    or m.spec.hidden_dim > chunk.padded_hidden_dim
                    for m in part
                ):
                    raise ValueError(f"chunk {chunk.key} holds a model of another family or a larger hidden size")
                seen += len(part)
                chunks.append(chunk)
            if seen != len(members) or {m.model_id for c in chunks for m in c.members} != set(by_id):
                raise ValueError("its chunks do not hold every model exactly once")
            return cls(
                tuple(members),
                tuple(chunks),
                int(data["chunk_models"]),
                int(data["max_buckets"]),
                int(data["device_count"]),
                str(data["compute_dtype"]),
                str(data["program_form"]),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"plan: damaged ({type(e).__name__}: {e})") from None
        except ValueError as e:
            raise ValueError(f"plan: {e}") from None


def plan_members(
    members: Sequence[Member], train: TrainConfig, device_count: int = 1, chunk_models: int | None = None
) -> RunPlan:
    """The plan of training ``members`` with ``train`` on ``device_count`` devices: at most ``chunk_models``
    models per chunk (default: ``train.max_models_per_chunk``, or, when that is 0, as many as this device's memory
    holds, ``engine.population.resolve_chunk_models``), bucketed into at most ``train.max_buckets`` hidden sizes
    per family."""
    cap = chunk_models or resolve_chunk_models(members, train.max_models_per_chunk, device_memory_bytes())
    chunks = make_chunks(members, train.max_buckets, cap, device_count)
    return RunPlan(
        tuple(members),
        tuple(chunks),
        int(cap),
        train.max_buckets,
        device_count,
        train.compute_dtype,
        train.program_form,
    )


def make_run_plan(
    population: PopulationConfig,
    train: TrainConfig,
    input_dim: int,
    output_dim: int,
    device_count: int = 1,
    chunk_models: int | None = None,
    recorded: dict | None = None,
) -> RunPlan:
    """The plan of a run: its members (``engine.members.build_members`` from ``population`` and ``train.seed``)
    in the chunks of ``recorded`` (a plan ``RunPlan.as_dict`` wrote: a resumed or reloaded run keeps its layout),
    else laid out by ``plan_members``; on ``device_count`` devices."""
    members = build_members(population, train.seed, input_dim, output_dim)
    if recorded is not None:
        return RunPlan.from_dict(recorded, members).for_devices(device_count)
    return plan_members(members, train, device_count, chunk_models)
