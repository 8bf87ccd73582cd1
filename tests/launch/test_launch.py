"""The Cloud TPU launch scripts: the exact commands of --dry_run, one-line exit-2 errors for bad flags, running
commands with a stand-in gcloud, and the scripts the workers run, executed here in a temporary folder."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from launch.common import LIBTPU_FIND_LINKS, parse_accelerator
from tests.conftest import REPO  # noqa: E402

TPU = ["gcloud", "compute", "tpus", "tpu-vm"]
PIP = f'python3 -m pip install -e ".[tpu]" -f {LIBTPU_FIND_LINKS}'
V4_32 = ["--name=table-iv", "--accelerator_type=v4-32"]
SWEEP = ["--flagfile=experiments/flags/table_iv.flags", "--workdir=gs://my-bucket/table_iv"]


def launch(script: str, *args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"launch.{script}", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def dry(script: str, *args: str) -> list[list[str]]:
    res = launch(script, "--dry_run", *args)
    assert res.returncode == 0, res.stderr
    return [shlex.split(line) for line in res.stdout.splitlines()]


def refused(script: str, *args: str, says: str) -> None:
    res = launch(script, "--dry_run", *args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], res.stderr
    assert res.stdout == ""


def remote(cmd: list[str]) -> str:
    """The shell command of a ``gcloud ... ssh ... --command CMD`` line."""
    return cmd[cmd.index("--command") + 1]


def has_git_head() -> bool:
    return (
        subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "HEAD"], capture_output=True).returncode == 0
    )


# ---- accelerator types ----


@pytest.mark.parametrize(
    "text,chips,hosts",
    [
        ("v4-8", 4, 1),
        ("v4-16", 8, 2),
        ("v4-32", 16, 4),
        ("v4-128", 64, 16),
        ("v5litepod-1", 1, 1),
        ("v5litepod-8", 8, 1),
        ("v5litepod-16", 16, 4),
        ("v5litepod-256", 256, 64),
    ],
)
def test_accelerator_chips_and_hosts(text, chips, hosts):
    acc = parse_accelerator(text)
    assert (acc.chips, acc.hosts) == (chips, hosts)


@pytest.mark.parametrize("text", ["v4-12", "v4-0", "v4-8192", "v3-8", "v5litepod-3", "v5e-8", "V4-8", "v4-8 ", "v4"])
def test_unknown_accelerators_raise(text):
    with pytest.raises(ValueError, match="unknown accelerator type"):
        parse_accelerator(text)


# ---- create / delete ----


def test_create_v4_slice_spot_with_project():
    assert dry("create_tpu", *V4_32, "--spot", "--project=my-proj") == [
        TPU
        + [
            "create",
            "table-iv",
            "--zone=us-central2-b",
            "--accelerator-type=v4-32",
            "--version=tpu-ubuntu2204-base",
            "--spot",
            "--project=my-proj",
        ]
    ]


def test_create_v5e_defaults_and_overrides():
    assert dry("create_tpu", "--name=pop1", "--accelerator_type=v5litepod-16") == [
        TPU
        + ["create", "pop1", "--zone=us-west4-a", "--accelerator-type=v5litepod-16", "--version=v2-alpha-tpuv5-lite"]
    ]
    assert dry(
        "create_tpu", "--name=pop1", "--accelerator_type=v5litepod-8", "--zone=us-central1-a", "--preemptible"
    ) == [
        TPU
        + [
            "create",
            "pop1",
            "--zone=us-central1-a",
            "--accelerator-type=v5litepod-8",
            "--version=v2-alpha-tpuv5-lite",
            "--preemptible",
        ]
    ]


def test_delete_is_quiet():
    assert dry("delete_tpu", "--name=table-iv", "--zone=us-central2-b") == [
        TPU + ["delete", "table-iv", "--zone=us-central2-b", "--quiet"]
    ]
    assert dry("delete_tpu", "--name=pop1", "--accelerator_type=v5litepod-16", "--project=p-1") == [
        TPU + ["delete", "pop1", "--zone=us-west4-a", "--quiet", "--project=p-1"]
    ]


def test_one_flagfile_serves_every_script(tmp_path):
    tpu_flags = tmp_path / "tpu.flags"
    tpu_flags.write_text("--name=table-iv\n--accelerator_type=v4-32\n--zone=us-central2-b\n--project=my-proj\n")
    flagfile = f"--flagfile={tpu_flags}"
    assert dry("delete_tpu", flagfile)[0][-1] == "--project=my-proj"
    assert dry("tail_logs", flagfile)[0][:7] == TPU + ["ssh", "table-iv", "--zone=us-central2-b"]
    assert dry("run_sweep", flagfile, "--", *SWEEP)[0][-1] == "--project=my-proj"
    assert dry("setup_workers", flagfile, "--repo_url=https://example.org/r.git")[0][-1] == "--project=my-proj"


@pytest.mark.parametrize(
    "args,says",
    [
        (["--accelerator_type=v4-8"], "--name is required"),
        (["--name=My_TPU", "--accelerator_type=v4-8"], "not a valid TPU name"),
        (["--name=1tpu", "--accelerator_type=v4-8"], "not a valid TPU name"),
        (["--name=tpu-", "--accelerator_type=v4-8"], "not a valid TPU name"),
        (["--name=" + "a" * 64, "--accelerator_type=v4-8"], "not a valid TPU name"),
        (["--name=tpu"], "--accelerator_type is required"),
        (["--name=tpu", "--accelerator_type=v4-12"], "unknown accelerator type 'v4-12'"),
        (["--name=tpu", "--accelerator_type=v3-8"], "unknown accelerator type"),
        (["--name=tpu", "--accelerator_type=v4-8", "--zone=central"], "does not look like a zone"),
        (["--name=tpu", "--accelerator_type=v4-8", "--spot", "--preemptible"], "mutually exclusive"),
        (["--name=tpu", "--accelerator_type=v4-8", "--version=Bad Version"], "--version"),
        (["--name=tpu", "--accelerator_type=v4-8", "extra"], "unexpected positional"),
        (["--name=tpu", "--accelerator_type=v4-8", "--nosuchflag"], "nosuchflag"),
    ],
)
def test_create_refuses_bad_flags(args, says):
    refused("create_tpu", *args, says=says)


def test_delete_needs_a_zone_or_an_accelerator_type():
    refused("delete_tpu", "--name=tpu", says="--zone is required")
    refused("delete_tpu", "--zone=us-central2-b", says="--name is required")


# ---- setup ----


def test_setup_from_git_on_every_worker():
    cmds = dry("setup_workers", *V4_32, "--repo_url=https://github.com/OWNER/sparse_rnn_jax", "--ref=v0.1")
    script = (
        "mkdir -p sparse_rnn_jax && cd sparse_rnn_jax && { [ -d .git ] || git init -q; } && "
        "git fetch -q --depth=1 https://github.com/OWNER/sparse_rnn_jax v0.1 && git checkout -q --force FETCH_HEAD && "
        + PIP
    )
    assert cmds == [TPU + ["ssh", "table-iv", "--zone=us-central2-b", "--worker=all", "--command", script]]


def test_setup_options_reach_the_workers():
    [cmd] = dry(
        "setup_workers",
        *V4_32,
        "--repo_url=u",
        "--remote_dir=code/srj",
        "--python=python3.11",
        "--extras=tpu,dev",
        "--find_links=",
    )
    assert remote(cmd).startswith("mkdir -p code/srj && cd code/srj && ")
    assert remote(cmd).endswith(' && git checkout -q --force FETCH_HEAD && python3.11 -m pip install -e ".[tpu,dev]"')
    assert " u main && " in remote(cmd)  # default ref


@pytest.mark.skipif(not has_git_head(), reason="needs a git checkout with a commit")
def test_setup_from_this_checkout():
    archive = str(Path(tempfile.gettempdir()) / "sparse_rnn_jax-table-iv.tar.gz")
    script = (
        "mkdir -p sparse_rnn_jax && tar -xzf sparse_rnn_jax-src.tar.gz -C sparse_rnn_jax && "
        "rm -f sparse_rnn_jax-src.tar.gz && cd sparse_rnn_jax && " + PIP
    )
    assert dry("setup_workers", *V4_32, "--source=local") == [
        ["git", "-C", str(REPO), "archive", "--format=tar.gz", f"--output={archive}", "HEAD"],
        TPU + ["scp", archive, "table-iv:sparse_rnn_jax-src.tar.gz", "--zone=us-central2-b", "--worker=all"],
        TPU + ["ssh", "table-iv", "--zone=us-central2-b", "--worker=all", "--command", script],
    ]


@pytest.mark.parametrize(
    "args,says",
    [
        ([], "--repo_url is required"),
        (["--source=local", "--repo_url=u"], "--repo_url is for --source=git"),
        (["--source=local", "--ref=no-such-ref-anywhere"], "is not a commit"),
        (["--repo_url=u", "--ref=--upload-pack=x"], "is not a git ref"),
        (["--repo_url=u", "--remote_dir=~/x"], "--remote_dir"),
        (["--repo_url=u", "--extras=tpu]"], "--extras"),
        (["--repo_url=u", "--source=svn"], "source"),
    ],
)
def test_setup_refuses_bad_flags(args, says):
    refused("setup_workers", *V4_32, *args, says=says)


# ---- run ----


def test_run_starts_the_sweep_on_every_worker_under_nohup():
    [cmd] = dry("run_sweep", *V4_32, "--", *SWEEP)
    assert cmd[:8] == TPU + ["ssh", "table-iv", "--zone=us-central2-b", "--worker=all"] and cmd[8] == "--command"
    script = remote(cmd)
    assert (
        "(cd sparse_rnn_jax && exec nohup python3 -u -m experiments.rad_sweep "
        "--flagfile=experiments/flags/table_iv.flags --workdir=gs://my-bucket/table_iv) "
        ">> sparse_rnn_jax_logs/sweep.log 2>&1 < /dev/null & echo $! > sparse_rnn_jax_logs/sweep.pid"
    ) in script
    assert script.startswith("mkdir -p sparse_rnn_jax_logs || exit 1; ")


def test_run_options():
    [cmd] = dry(
        "run_sweep",
        "--name=p",
        "--accelerator_type=v5litepod-16",
        "--module=experiments.ah_sweep",
        "--log_file=logs/t3.log",
        "--remote_dir=srj",
        "--",
        "--flagfile=experiments/flags/table_iii.flags",
        "--workdir",
        "gs://b/t3",
        "--epochs=5",
    )
    script = remote(cmd)
    assert cmd[6] == "--zone=us-west4-a"
    assert (
        "(cd srj && exec nohup python3 -u -m experiments.ah_sweep --flagfile=experiments/flags/table_iii.flags "
        "--workdir gs://b/t3 --epochs=5) >> logs/t3.log 2>&1 < /dev/null & echo $! > logs/t3.pid"
    ) in script


def test_run_single_host_may_use_a_local_workdir():
    [cmd] = dry(
        "run_sweep", "--name=one", "--accelerator_type=v4-8", "--", "--flagfile=experiments/flags/rad_smoke.flags"
    )
    assert "exec nohup python3 -u -m experiments.rad_sweep --flagfile=experiments/flags/rad_smoke.flags)" in remote(cmd)


@pytest.mark.parametrize(
    "args,says",
    [
        (
            V4_32 + ["--", "--flagfile=experiments/flags/table_iv.flags"],
            "--workdir=runs/table_iv is local",
        ),  # from the flagfile
        (V4_32 + ["--", *SWEEP, "--workdir=runs/x"], "--workdir=runs/x is local"),  # the last one wins
        (["--name=p", "--accelerator_type=v5litepod-16", "--", "--workdir=/tmp/w", "--epochs=1"], "4 hosts"),
        (V4_32, "no sweep flags"),
        (V4_32 + ["--", "--epochs=1"], "needs --workdir"),
        (["--name=t", "--zone=us-central2-b", "--", *SWEEP], "--accelerator_type is required"),
        (V4_32 + ["--log_file=logs/run.txt", "--", *SWEEP], "--log_file"),
        (V4_32 + ["--module=experiments.bench", "--", *SWEEP], "module"),
    ],
)
def test_run_refuses_bad_flags(args, says):
    refused("run_sweep", *args, says=says)


# ---- tail / copy ----


def test_tail_follows_one_worker_or_shows_all():
    assert dry("tail_logs", *V4_32, "--worker=3") == [
        TPU
        + [
            "ssh",
            "table-iv",
            "--zone=us-central2-b",
            "--worker=3",
            "--command",
            "tail -n 50 -f sparse_rnn_jax_logs/sweep.log",
        ]
    ]
    [cmd] = dry(
        "tail_logs", "--name=t", "--zone=us-central2-b", "--worker=all", "--nofollow", "--lines=5", "--log_file=l/a.log"
    )
    assert cmd[-3:] == ["--worker=all", "--command", "tail -n 5 l/a.log"]


def test_tail_refuses_a_worker_out_of_range():
    refused("tail_logs", *V4_32, "--worker=4", says="v4-32 has 4 worker(s)")
    refused("tail_logs", *V4_32, "--worker=first", says="--worker")


def test_copy_results_down_and_up():
    assert dry("copy_results", "--src=gs://b/table_iv", "--dst=runs/table_iv") == [
        ["gcloud", "storage", "rsync", "--recursive", "gs://b/table_iv", "runs/table_iv", "--exclude=^checkpoints/"]
    ]
    assert dry("copy_results", "--src=runs/table_iv", "--dst=gs://b/table_iv", "--checkpoints") == [
        ["gcloud", "storage", "rsync", "--recursive", "runs/table_iv", "gs://b/table_iv"]
    ]


def test_copy_results_from_a_worker():
    assert dry(
        "copy_results", "--name=one", "--accelerator_type=v4-8", "--worker=0", "--src=runs/x", "--dst=gs://b/x"
    ) == [
        TPU
        + [
            "ssh",
            "one",
            "--zone=us-central2-b",
            "--worker=0",
            "--command",
            'cd sparse_rnn_jax && gcloud storage rsync --recursive runs/x gs://b/x "--exclude=^checkpoints/"',
        ]
    ]


@pytest.mark.parametrize(
    "args,says",
    [
        (["--dst=runs/x"], "--src is required"),
        (["--src=gs://b/x"], "--dst is required"),
        (["--src=runs/a", "--dst=runs/b"], "gs://"),
        (["--src=gs://", "--dst=runs/b"], "names no bucket"),
        (["--src=gs://b/x", "--dst=gs://b/x/"], "the same"),
        (["--src=runs/x", "--dst=gs://b/x", "--worker=0"], "--name is required"),
        (["--src=runs/x", "--dst=gs://b/x", "--worker=all", "--name=t", "--zone=us-central2-b"], "one worker"),
    ],
)
def test_copy_results_refuses_bad_flags(args, says):
    refused("copy_results", *args, says=says)


# ---- running commands (a stand-in gcloud records its arguments) ----


@pytest.fixture
def fake_gcloud(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.jsonl"
    (bin_dir / "gcloud").write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "sys.exit(int(os.environ.get('FAKE_GCLOUD_RC', '0')))\n"
    )
    (bin_dir / "gcloud").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", TMPDIR=str(tmp_path))

    def recorded() -> list[list[str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return env, recorded


def test_commands_run_in_order(fake_gcloud):
    env, recorded = fake_gcloud
    res = launch("delete_tpu", "--name=t", "--zone=us-central2-b", env=env)
    assert res.returncode == 0, res.stderr
    assert recorded() == [["compute", "tpus", "tpu-vm", "delete", "t", "--zone=us-central2-b", "--quiet"]]


@pytest.mark.skipif(not has_git_head(), reason="needs a git checkout with a commit")
def test_first_failure_stops_with_one_line(fake_gcloud, tmp_path):
    env, recorded = fake_gcloud
    res = launch(
        "setup_workers", "--name=t", "--zone=us-central2-b", "--source=local", env=dict(env, FAKE_GCLOUD_RC="1")
    )
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "exit status 1 from: gcloud compute tpus tpu-vm scp" in errors[0]
    assert [c[3] for c in recorded()] == ["scp"]  # the ssh after it never ran
    with tarfile.open(tmp_path / "sparse_rnn_jax-t.tar.gz") as tar:  # git archive ran for real
        names = tar.getnames()
    assert "pyproject.toml" in names and "README.md" in names and not any(n.startswith(".venv") for n in names)


def test_missing_gcloud_is_a_one_line_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = launch("delete_tpu", "--name=t", "--zone=us-central2-b", env=dict(os.environ, PATH=str(empty)))
    assert (
        res.returncode == 2 and res.stderr.strip() == "error: gcloud not found on PATH (install the Google Cloud CLI)"
    )


# ---- the scripts the workers run, executed here (a temporary folder stands in for a worker's home) ----


def test_run_script_starts_in_background_logs_and_refuses_a_second_start(tmp_path):
    pkg = tmp_path / "sparse_rnn_jax" / "experiments"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "rad_sweep.py").write_text(
        "import json, os, sys, time\n"
        "print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}), flush=True)\ntime.sleep(20)\n"
    )
    args = ["--workdir=gs://b/x", "--note=two words", '--quote=it\'s "q" $HOME']
    [cmd] = dry("run_sweep", "--name=one", "--accelerator_type=v4-8", f"--python={sys.executable}", "--", *args)
    script = remote(cmd)
    first = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert "started pid" in first.stdout
    pid = int((tmp_path / "sparse_rnn_jax_logs" / "sweep.pid").read_text())
    try:
        log = tmp_path / "sparse_rnn_jax_logs" / "sweep.log"
        deadline = time.time() + 20
        while not (log.exists() and log.read_text().strip()) and time.time() < deadline:
            time.sleep(0.1)
        record = json.loads(log.read_text().splitlines()[0])
        assert record == {"argv": args, "cwd": str(tmp_path / "sparse_rnn_jax")}
        second = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1 and "already running" in second.stderr
    finally:
        os.kill(pid, 15)


@pytest.mark.skipif(not has_git_head(), reason="needs a git checkout with a commit")
def test_setup_scripts_fetch_or_unpack_then_install(tmp_path):
    """Both setup scripts, run here with `echo` standing in for the workers' Python."""
    home_git, home_local = tmp_path / "git", tmp_path / "local"
    home_git.mkdir()
    home_local.mkdir()
    [cmd] = dry(
        "setup_workers", "--name=t", "--zone=us-central2-b", f"--repo_url=file://{REPO}", "--ref=HEAD", "--python=echo"
    )
    for _ in range(2):  # a second run updates in place
        res = subprocess.run(["bash", "-c", remote(cmd)], cwd=home_git, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == f"-m pip install -e .[tpu] -f {LIBTPU_FIND_LINKS}"
    assert (home_git / "sparse_rnn_jax" / "pyproject.toml").is_file()

    cmds = dry("setup_workers", "--name=t", "--zone=us-central2-b", "--source=local", "--python=echo")
    archive = home_local / "sparse_rnn_jax-src.tar.gz"
    subprocess.run(cmds[0][:5] + [f"--output={archive}", "HEAD"], check=True, timeout=60)
    res = subprocess.run(["bash", "-c", remote(cmds[2])], cwd=home_local, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (home_local / "sparse_rnn_jax" / "pyproject.toml").is_file() and not archive.exists()
