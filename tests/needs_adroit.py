"""Imported by a test module that needs the Adroit stack (``pip install -e '.[adroit]'``), before the imports that
need it: without the stack the module is skipped, with a reason naming what is missing."""

from tests.conftest import skip_without_adroit

skip_without_adroit()
