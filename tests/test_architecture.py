"""The layer order and the public/private boundary, read from the source's imports (ast): each package of
sparse_rnn_jax imports only from the layers before it, ``core`` needs nothing but numpy, no module imports another's
private name, and at most two modules sit flat in the package."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "sparse_rnn_jax"
LAYERS = ("core", "models", "engine", "tasks", "run", "studies", "analysis")
CORE_THIRD_PARTY = {"numpy"}
STDLIB_OK = {"__future__", "dataclasses", "math", "typing", "collections", "functools", "itertools", "warnings"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "sparse_rnn_jax" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names imported from it, line) for every import statement, nested ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def _own(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_downwards(path):
    own = _own(path)
    layer = _layer(own)
    if layer is None:  # sparse_rnn_jax/__init__.py: lazy re-exports by name only
        assert not any(m.startswith("sparse_rnn_jax") for m, _, _ in _imports(path))
        return
    for module, names, line in _imports(path):
        if not module.startswith("sparse_rnn_jax"):
            continue
        target = _layer(module)
        assert target is not None, f"{own}:{line} imports {module}, which is in no layer"
        assert target <= layer, f"{own}:{line} ({LAYERS[layer]}) imports {module} ({LAYERS[target]}): upward"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_private_name(path):
    own = _own(path)
    for module, names, line in _imports(path):
        if module.startswith("sparse_rnn_jax") and module != own:
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{own}:{line} imports private {private} from {module}"


def test_core_needs_only_numpy():
    for path in (PACKAGE / "core").rglob("*.py"):
        for module, _, line in _imports(path):
            top = module.split(".")[0]
            if top == "sparse_rnn_jax" or top in sys.stdlib_module_names:
                continue
            assert top in CORE_THIRD_PARTY, f"{_own(path)}:{line} imports {module}; core is numpy only"


def test_at_most_two_flat_modules():
    flat = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(flat) <= 2, flat


def test_every_layer_is_a_package():
    for name in LAYERS:
        assert (PACKAGE / name / "__init__.py").is_file(), name


def _layer_listing() -> str:
    """The package tree of docs/architecture.md's "Layers" section."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    start = doc.index("```\nsparse_rnn_jax/")
    return doc[start : doc.index("```", start + 4)]


def test_every_module_is_listed_in_the_architecture_doc():
    """Each module file of the package is named in the doc's tree (a subpackage's modules by its folder line, such
    as ``rad/``), and each file the tree names exists."""
    listing = _layer_listing()
    missing = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).parts
        if path.name == "__init__.py" or path.name in listing or (len(rel) > 2 and f"{rel[1]}/" in listing):
            continue
        missing.append("/".join(rel))
    assert not missing, f"docs/architecture.md does not list {missing}"
    names = {p.name for p in _modules()}
    stale = sorted(set(re.findall(r"\b(\w+\.py)\b", listing)) - names)
    assert not stale, f"docs/architecture.md lists modules that do not exist: {stale}"


def test_the_docs_cite_only_test_files_that_exist():
    cited = set()
    for doc in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        cited |= set(re.findall(r"\btests/[\w/]+\.py\b", doc.read_text()))
    assert cited and not [c for c in sorted(cited) if not (REPO / c).exists()]
