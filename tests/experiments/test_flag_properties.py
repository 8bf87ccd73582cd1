"""Property-based: bad flag values of every kind, for every entry point, end in one line on stderr naming the flag,
exit status 2, no traceback, and nothing created on disk.

Hypothesis draws an entry point, one of its flags and a bad value of that flag's kind (``experiments.common.
FLAG_KINDS`` for numbers: negative, zero, huge, NaN/inf, non-numeric; any text for a choice; an unwritable or
blocked output path; an unknown flag name; a non-boolean for a switch). Every other flag is valid. Each entry point
runs in one long-lived worker process (its absl flags reset between examples), so an example costs milliseconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from experiments.common import FLAG_KINDS
from sparse_rnn_jax.core.bounds import KINDS
from tests.conftest import REPO

WORKER = textwrap.dedent(
    """
    import contextlib, io, json, runpy, sys, traceback
    from absl import flags
    from experiments import common

    module = sys.argv[1]
    reply = sys.stdout
    captured, run = [], common.run
    common.run = captured.append  # the module's __main__ block hands its main function here
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    common.run = run
    F = flags.FLAGS
    listing = {}
    for name, flag in F._flags().items():
        defined = F.find_module_defining_flag(name) or ""
        if name == flag.name and not defined.startswith("absl"):
            listing[name] = {"type": flag.flag_type(), "enum": sorted(getattr(flag.parser, "enum_values", None) or [])}
    reply.write(json.dumps(listing) + "\\n")
    reply.flush()
    for line in sys.stdin:
        args = json.loads(line)
        F.unparse_flags()
        sys.argv = [module, *args]
        err = io.StringIO()
        code = None
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                common.run(captured[0])
            except SystemExit as e:
                code = e.code
            except BaseException:
                code = "exception"
                traceback.print_exc()
        reply.write(json.dumps({"code": code, "stderr": err.getvalue()}) + "\\n")
        reply.flush()
    """
)

TINY_RAD = [
    "--mnist_source=embedded",
    "--train_size=64",
    "--val_size=16",
    "--test_size=16",
    "--image_size=8",
    "--budget=2000",
    "--num_models=2",
    "--epochs=1",
    "--progress=false",
    "--cache_dir={S}/cache",
]
BASE: dict[str, list[str]] = {
    "experiments.sweep": ["--task=rad", "--workdir={S}/w", *TINY_RAD],
    "experiments.rad_sweep": ["--workdir={S}/w", *TINY_RAD],
    "experiments.reber_sweep": ["--workdir={S}/w", "--budget=500", "--num_models=2", "--epochs=1", "--train_size=64"],
    "experiments.ah_sweep": ["--workdir={S}/w", "--budget=500", "--num_models=2", "--epochs=1", "--download=false"],
    "experiments.describe": ["--input_dim=10", "--output_dim=3", "--budget=1000"],
    "experiments.analyze": ["--results={S}/results", "--out={S}/analysis", "--trees=2", "--nomlp"],
    "experiments.recommend": ["--input_dim=10", "--output_dim=3", "--budget=1000"],
    "experiments.prune": ["--workdir={S}/results", "--out={S}/pruned"],
    "experiments.diagnose": ["--workdir={S}/results", "--out={S}/diagnosed"],
    "experiments.bench": ["--tiny", "--json={S}/bench.json"],
    "experiments.zoo": ["--workdir={S}/zoo", "--plan", "--nocalibrate"],
    "experiments.replicate": ["--fig1={S}/results", "--out={S}/replication"],
    "experiments.show_rad": ["--out={S}/rad.png", "--mnist_source=embedded"],
    "experiments.collect_minari": [
        "--env_id=X-v0",
        "--policy_npz={S}/policy.npz",
        "--episodes=1",
        "--dataset_id=local/x-v0",
    ],
}
"""Each entry point's valid arguments (a drawn bad value replaces or adds to them); {S}: the sandbox folder. The
results folder is a stub, so an entry that got past its flag checks would fail differently, never silently."""

OUTPUT_PATHS: dict[str, tuple[str, ...]] = {
    "experiments.sweep": ("workdir", "cache_dir"),
    "experiments.rad_sweep": ("workdir", "cache_dir"),
    "experiments.reber_sweep": ("workdir",),
    "experiments.ah_sweep": ("workdir",),
    "experiments.analyze": ("out",),
    "experiments.prune": ("out", "cache_dir"),
    "experiments.diagnose": ("out", "cache_dir"),
    "experiments.bench": ("json",),
    "experiments.zoo": ("workdir",),
    "experiments.replicate": ("out",),
    "experiments.show_rad": ("out",),
}
"""The output paths of each entry point (each is probed by creating and removing a file before any work)."""
CHOICES = (
    "sampler",
    "activation",
    "hh_graph",
    "leak",
    "mask_mode",
    "mnist_source",
    "config",
    "configs",
    "scopes",
    "corruption",
    "variant",
    "matmul_precision",
    "task",
    "loss",
    "ranker",
    "split",
)
"""String flags with a fixed set of meaningful values (any other text is refused)."""
NOT_DRAWN = {"verbosity", "task"}
"""The sweep's --task changes which flags exist; absl's own flags are not the entries'."""


def _bad_numbers(kind: str) -> st.SearchStrategy[str]:
    k = KINDS[kind]
    junk = st.sampled_from(["abc", "1.5.2", "--", "1e", "one", "0x", "[]"])
    if k.integer:
        return st.one_of(
            st.integers(max_value=int(k.low) - 1, min_value=-(2**70)).map(str),
            st.integers(min_value=int(k.high) + 1, max_value=2**80).map(str),
            st.sampled_from(["1.5", "nan", "inf", "2e3"]),
            junk,
        )
    low = st.floats(max_value=k.low, exclude_max=not k.open_low, allow_nan=False, min_value=-1e308)
    high = st.floats(min_value=k.high, exclude_min=not k.open_high, allow_nan=False, max_value=1e308)
    return st.one_of(low.map(repr), high.map(repr), st.sampled_from(["nan", "inf", "-inf", "1e400"]), junk)


def _bad_text() -> st.SearchStrategy[str]:
    return st.text(alphabet="xyzqw_:+", min_size=1, max_size=12).filter(lambda t: t not in ("x", "none"))


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    sandbox = tmp_path_factory.mktemp("sandbox")
    (sandbox / "blocker").write_text("a file in the way")
    (sandbox / "results").mkdir()
    (sandbox / "results" / "results.parquet").write_bytes(b"PAR1 not a parquet file")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    procs = {
        m: subprocess.Popen(
            [sys.executable, "-c", WORKER, m],
            cwd=sandbox,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in BASE
    }
    listings = {}
    for m, p in procs.items():
        line = p.stdout.readline()
        assert line, f"{m}: {p.stderr.read()[-2000:]}"
        listings[m] = json.loads(line)
    yield sandbox, procs, listings
    for p in procs.values():
        p.stdin.close()
        p.kill()  # nothing of a worker's is left to finish
        p.wait(timeout=60)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _candidates(module: str, listing: dict) -> list[tuple[str, str]]:
    """(flag, what to draw) pairs of an entry point."""
    out = [("no_such_flag_zz", "unknown")]
    for name, info in sorted(listing.items()):
        if name in NOT_DRAWN:
            continue
        if name in FLAG_KINDS:
            out.append((name, f"kind:{FLAG_KINDS[name]}"))
        elif info["type"] in ("int", "float"):
            out.append((name, "number"))  # without a kind (the test above fails): values no number flag accepts
        elif info["type"] == "bool":
            out.append((name, "bool"))
        elif info["enum"] or name in CHOICES:
            out.append((name, "choice"))
        elif name in OUTPUT_PATHS.get(module, ()):
            out.append((name, "path"))
    return out


def test_every_numeric_flag_of_every_entry_has_a_kind(workers):
    _, _, listings = workers
    missing = {
        f"{m}:{n}"
        for m, listing in listings.items()
        for n, info in listing.items()
        if info["type"] in ("int", "float") and n not in FLAG_KINDS and n not in NOT_DRAWN
    }
    assert not missing  # every number a user gives has one shared rule (experiments.common.FLAG_KINDS)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_bad_flag_value_is_one_line_exit_2_nothing_created(workers, data):
    sandbox, procs, listings = workers
    module = data.draw(st.sampled_from(sorted(BASE)), label="entry")
    flag, what = data.draw(st.sampled_from(_candidates(module, listings[module])), label="flag")
    if what == "unknown":
        value = "1"
    elif what == "bool":
        value = data.draw(st.sampled_from(["maybe", "2", "yes please", "nan"]))
    elif what == "choice":
        value = data.draw(_bad_text())
    elif what == "path":
        value = data.draw(st.sampled_from(["/proc/x", "/proc/x/y", "{S}/blocker/x", "{S}/blocker/x/y"]))
    elif what == "number":
        value = data.draw(st.sampled_from(["nan", "inf", "abc", str(-(2**70)), str(2**80)]))
    else:
        value = data.draw(_bad_numbers(what.split(":")[1]))
    event(f"{module.split('.')[1]}: {what}")
    if what == "kind:" + FLAG_KINDS.get(flag, "") and listings[module][flag]["type"].startswith("comma"):
        value = data.draw(st.sampled_from(["1,", ""])) + value  # a bad item in a list
    if what == "path" and flag == "json" and module == "experiments.bench":
        value = value.replace("/x", "/x.json")
    args = [a for a in BASE[module] if not a.startswith(f"--{flag}=")] + [f"--{flag}={value}"]
    args = [a.replace("{S}", str(sandbox)) for a in args]
    before = _tree(sandbox)
    procs[module].stdin.write(json.dumps(args) + "\n")
    procs[module].stdin.flush()
    outcome = json.loads(procs[module].stdout.readline())
    lines = [line for line in outcome["stderr"].splitlines() if line.strip()]
    context = f"{module} {args[-1]}: {outcome}"
    assert outcome["code"] == 2, context
    assert len(lines) == 1 and lines[0].startswith("error: "), context
    assert "Traceback" not in outcome["stderr"], context
    assert f"--{flag}" in lines[0] or flag in lines[0] or value.replace("{S}", str(sandbox)) in lines[0], context
    assert _tree(sandbox) == before, context
