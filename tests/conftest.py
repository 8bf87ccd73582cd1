"""Shared test fixtures: locate ../shared beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


def skip_without_adroit() -> None:
    """Skips the calling test (or, at module level, its module), naming what is missing, when the Adroit stack
    (``.[adroit]``) is absent."""
    from sparse_rnn_jax.tasks.adroit import missing_packages, stack_message

    missing = missing_packages()
    if missing:
        pytest.skip(stack_message(missing), allow_module_level=True)
