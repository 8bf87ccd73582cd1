"""Helpers shared by the absl entry points: one-line errors with exit status 2, flag parsing that
reports bad flags and missing flagfiles that way, and run records."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
from typing import Any, Callable, NoReturn

from absl import app, flags, logging

EXIT_BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    """Prints ``error: message`` on one line to stderr and exits with status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def check_no_positional(argv) -> None:
    if len(argv) > 1:
        fail(f"unexpected positional arguments: {' '.join(argv[1:])}")


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(str(e).replace("ERROR:: ", "").splitlines()[0])


def run(main: Callable[[list[str]], Any]) -> None:
    """``absl.app.run`` whose flag errors (unknown flag, bad value, missing flagfile) are one line, exit 2.
    Library INFO logs (orbax's per-save lines) are hidden unless ``--verbosity`` asks for them."""

    def wrapped(argv):
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        return main(argv)

    app.run(wrapped, flags_parser=_parse_flags)


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    """Writes ``obj`` as JSON to a local path or gs:// URL, whole or not at all."""
    from sparse_rnn_jax.results import write_bytes_atomic

    write_bytes_atomic(json.dumps(obj, indent=2, sort_keys=True, default=str).encode(), path)


PACKAGES = (
    "sparse_rnn_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "numpy", "scipy", "pandas",
    "pyarrow", "absl-py", "mlxtend", "tensorflow-datasets", "minari", "gymnasium", "gymnasium-robotics", "mujoco",
    "scikit-learn",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out
