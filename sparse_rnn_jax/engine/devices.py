"""Devices and processes: the population mesh, global arrays built per shard, and multi-process helpers.

One 1-D mesh over every (global) device whose one axis is the population: model arrays are sharded on it,
data replicated. Every process holds the same host values (deterministic data and inits), so each fills in
only its own shards and no data moves between hosts.
"""

from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

POPULATION_AXIS = "population"


def population_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over all (global) devices whose one axis is the population."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (POPULATION_AXIS,))


def shardings(mesh: Mesh) -> tuple[NamedSharding, NamedSharding]:
    """(replicated, sharded along the population axis) shardings of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(POPULATION_AXIS))


def put(tree, sharding: NamedSharding):
    """Host numpy arrays -> global arrays with ``sharding``; every process holds the same full values, so each
    fills in its own shards (works across hosts)."""
    return jax.tree.map(
        lambda a: jax.make_array_from_callback(np.shape(a), sharding, lambda idx, a=a: np.asarray(a)[idx]), tree
    )


def fetch(x) -> np.ndarray:
    """A global array's full value on every process (gathered across hosts when needed)."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def device_memory_bytes() -> float | None:
    """Total memory of one device: an accelerator's usable memory (``memory_stats()["bytes_limit"]``) or, on a CPU,
    the host's total RAM; None where unknown. Total, not free, so that sizes derived from it are the same on every
    run on the same machine (a resumed run chunks its models as the first run did)."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return float(stats["bytes_limit"])
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def barrier(name: str) -> None:
    """Waits for every process (a no-op in a single-process run)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def agree(flag: bool) -> bool:
    """Process 0's ``flag``, on every process (so that all take the same branch after a check only process 0
    makes, such as taking the workdir's lock); ``flag`` itself in a single-process run."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag, np.int32)))


def is_lead() -> bool:
    """Whether this is process 0, the one that writes files and prints."""
    return jax.process_index() == 0


def init_distributed(
    coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Joins a multi-process JAX run before any device is touched: with all three arguments, or auto-detected
    (Cloud TPU) with none. On CPU the processes talk through JAX's gloo collectives, so the multi-host path
    runs (and is tested) on one machine."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address is not None:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    else:
        jax.distributed.initialize()
