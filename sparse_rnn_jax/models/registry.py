"""The model-family registry: name -> ``Family``. A new family is one module defining its ``Family`` value(s)
plus one line here."""

from __future__ import annotations

from sparse_rnn_jax.models import block, cells, leaky
from sparse_rnn_jax.models.family import Family

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        block.FAMILY,
        *cells.FAMILIES,
        *leaky.FAMILIES,
    )
}


def get_family(name: str) -> Family:
    """The registered family ``name`` (a spec's ``spec.family``); a ValueError naming the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; expected one of {tuple(FAMILIES)}") from None


def family_of(spec) -> Family:
    """The family of a spec (``NetworkSpec``, ``CellSpec``, ``LeakySpec`` or any spec with ``.family``)."""
    return get_family(spec.family)
