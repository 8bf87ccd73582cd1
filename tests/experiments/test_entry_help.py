"""The analysis and tool entry points answer --help (flags grouped) and a bad flag before any heavy import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("jax", "pandas", "matplotlib", "orbax", "sklearn", "gymnasium", "minari", "flax", "torch")
ENTRIES = {
    "analyze": "parent network (random forest and MLP)",
    "recommend": "ranking candidates with a parent network",
    "describe": "size: give one",
    "bench": "what to measure",
    "show_rad": "data",
    "collect_minari": "what to collect",
    "prune": "fine-tuning after pruning",
    "diagnose": "measurement",
}
PROBE = """
import json, runpy, sys
sys.argv = [{module!r}] + {args!r}
code = 0
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def _probe(module: str, *args: str) -> tuple[dict, str, str]:
    code = PROBE.format(module=f"experiments.{module}", args=list(args), heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    *lines, last = proc.stderr.strip().splitlines()
    return json.loads(last), proc.stdout, "\n".join(lines)


@pytest.mark.parametrize("module,group", sorted(ENTRIES.items()))
def test_help_lists_grouped_flags_without_heavy_imports(module, group):
    result, out, _ = _probe(module, "--help")
    assert result == {"code": 0, "heavy": []}
    assert f"\n{group}:\n" in out
    assert "--helpfull" in out


@pytest.mark.parametrize("module", sorted(ENTRIES))
def test_bad_flag_is_one_line_exit_2_without_heavy_imports(module):
    result, _, err = _probe(module, "--no_such_flag")
    assert result == {"code": 2, "heavy": []}
    assert err == "error: Unknown command line flag 'no_such_flag'"


def test_prune_flag_defaults_are_the_librarys():
    from experiments import prune
    from sparse_rnn_jax.studies.pruning import masks

    assert prune.SCOPES == masks.SCOPES and prune.DEFAULT_FRACTIONS == masks.DEFAULT_FRACTIONS
