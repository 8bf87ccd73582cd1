"""The Adroit tests: those that need the optional Adroit stack (``pip install -e '.[adroit]'``) skip, naming what
is missing, when it is absent (``tests.conftest.skip_without_adroit``); the messages a missing stack gives are
tested without it (test_task.py)."""
