"""The Adroit task's config and scoring length, and the one-line error without the Adroit stack."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from sparse_rnn_jax.tasks import adroit
from sparse_rnn_jax.tasks.adroit import AdroitTaskConfig, check_stack, missing_packages, stack_message
from tests.conftest import REPO


def test_eval_steps_follow_the_dataset_unless_given():
    from sparse_rnn_jax.tasks.adroit.task import eval_steps

    collected_at_100 = {"max_episode_steps": 100, "longest_episode": 100, "steps": 50}
    assert AdroitTaskConfig().eval_max_steps is None
    assert eval_steps(AdroitTaskConfig(), collected_at_100) == 100
    assert eval_steps(AdroitTaskConfig(eval_max_steps=30), collected_at_100) == 30
    assert eval_steps(AdroitTaskConfig(), {"max_episode_steps": None, "longest_episode": 80}) == 80
    with pytest.raises(ValueError, match="eval_max_steps"):
        eval_steps(AdroitTaskConfig(), {})
    with pytest.raises(ValueError, match="eval_max_steps must be >= 1"):
        AdroitTaskConfig(eval_max_steps=0)


needs_stack = pytest.mark.skipif(
    bool(missing_packages()), reason=stack_message(missing_packages()) if missing_packages() else ""
)
"""The tests that hide one part of an installed stack."""


def _hide(monkeypatch, module: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))


@needs_stack
def test_missing_stack_is_one_line_naming_the_extra(monkeypatch):
    assert missing_packages() == []  # the test environment has the stack
    check_stack()
    _hide(monkeypatch, "mujoco")
    assert missing_packages() == ["mujoco"]
    with pytest.raises(ValueError) as e:
        adroit.TASK.check(AdroitTaskConfig())
    assert str(e.value) == stack_message(["mujoco"])
    assert "\n" not in str(e.value) and "pip install -e '.[adroit]'" in str(e.value)


def test_collect_minari_without_the_stack_exits_2_in_one_line(tmp_path):
    code = (
        "import importlib.util, runpy, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'gymnasium_robotics' else real(name, *a)\n"
        "sys.argv = ['collect_minari', '--env_id=AdroitHandDoor-v1', '--policy_npz=p.npz', '--episodes=1',\n"
        "            '--dataset_id=local/door/x-v0']\n"
        "runpy.run_module('experiments.collect_minari', run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "gymnasium-robotics" in proc.stderr and "pip install -e '.[adroit]'" in proc.stderr
