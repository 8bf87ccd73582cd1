"""Helpers shared by the absl entry points: one-line errors with exit status 2."""

from __future__ import annotations

import sys
from typing import NoReturn


def fail(message: str) -> NoReturn:
    """Prints ``error: message`` on one line to stderr and exits with status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def check_no_positional(argv) -> None:
    if len(argv) > 1:
        fail(f"unexpected positional arguments: {' '.join(argv[1:])}")
