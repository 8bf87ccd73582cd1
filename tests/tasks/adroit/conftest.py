"""The Adroit tests need the optional Adroit stack (``pip install -e '.[adroit]'``): without it they are not
collected (``missing_packages`` names what is missing)."""

from sparse_rnn_jax.tasks.adroit import missing_packages

if missing_packages():
    collect_ignore_glob = ["test_*.py"]
