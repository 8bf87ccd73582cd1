"""The model-family registry: name -> ``Family``. A new family is one module defining its spec and its ``Family``
value(s) (with its named configurations, their constructor and its results columns) plus its line in
``FAMILY_MODULES``: the members (``--configs``), buckets, programs, results, summary, analysis and Flax modules then
take it as it is (docs/architecture.md, "Adding a model family")."""

from __future__ import annotations

import importlib
from typing import Sequence

from sparse_rnn_jax.models.family import Family

FAMILY_MODULES: tuple[str, ...] = (
    "sparse_rnn_jax.models.block",
    "sparse_rnn_jax.models.cells",
    "sparse_rnn_jax.models.leaky",
)
"""The modules defining the families, each with ``FAMILY`` (one family) or ``FAMILIES`` (several)."""


def module_families(module: str) -> tuple[Family, ...]:
    """The ``Family`` values module ``module`` defines (its ``FAMILIES``, else its ``FAMILY``)."""
    m = importlib.import_module(module)
    return tuple(getattr(m, "FAMILIES", None) or (m.FAMILY,))


FAMILIES: dict[str, Family] = {f.name: f for module in FAMILY_MODULES for f in module_families(module)}


def get_family(name: str) -> Family:
    """The registered family ``name`` (a spec's ``spec.family``); a ValueError naming the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; expected one of {tuple(FAMILIES)}") from None


def family_of(spec) -> Family:
    """The family of a spec (``NetworkSpec``, ``CellSpec``, ``LeakySpec`` or any spec with ``.family``)."""
    return get_family(spec.family)


def named_configs() -> tuple[str, ...]:
    """Every registered family's named configurations (``Family.config_names``), in registry order."""
    return tuple(c for f in FAMILIES.values() for c in f.config_names)


NAMED_SPEC_OPTIONS: dict = {
    "budget": None,
    "hidden_dim": None,
    "learning_rate": 1e-4,
    "uniform_density": 0.2,
    "activation": "relu",
}
"""The options every ``Family.named_spec`` is called with, at these values unless given."""


def named_specs(configs: Sequence[str], input_dim: int, output_dim: int, **options) -> list:
    """One spec per named configuration, each built by the family that declares it (``Family.named_spec``) at
    ``budget`` trainable weights or, with no budget, ``hidden_dim`` units (``NAMED_SPEC_OPTIONS``); a ValueError
    naming an unknown configuration or option."""
    unknown = set(options) - set(NAMED_SPEC_OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}; expected any of {tuple(NAMED_SPEC_OPTIONS)}")
    options = {**NAMED_SPEC_OPTIONS, **options}
    owner = {c: f for f in FAMILIES.values() for c in f.config_names}
    out = []
    for c in configs:
        if c not in owner:
            raise ValueError(f"unknown config {c!r}; expected one of {named_configs()}")
        out.append(owner[c].named_spec(c, input_dim, output_dim, **options))
    return out
