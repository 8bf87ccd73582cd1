"""Helpers shared by the Cloud TPU launch scripts: accelerator types and their defaults, name checks, the
flags the scripts share, the gcloud command lines, and running them (or printing them with ``--dry_run``).

Every script takes ``--name``, ``--zone``, ``--accelerator_type`` and ``--project``, so one flagfile holding
those four can be passed to all of them (``--flagfile=tpu.flags``). Bad flags: one line on stderr, exit 2,
before any command runs. A failing command: one line on stderr, exit 1, no further command runs.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from absl import flags

from experiments.common import check_no_positional, fail, run  # noqa: F401  (re-exported for the scripts)

FLAGS = flags.FLAGS

REPO_ROOT = Path(__file__).resolve().parents[1]
TPU_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]")
LIBTPU_FIND_LINKS = "https://storage.googleapis.com/jax-releases/libtpu_releases.html"

# Default zone and TPU VM runtime version of each accelerator family.
FAMILY_DEFAULTS = {
    "v4": ("us-central2-b", "tpu-ubuntu2204-base"),
    "v5litepod": ("us-west4-a", "v2-alpha-tpuv5-lite"),  # v5e; also offered in us-central1-a
}
V5E_SIZES = (1, 4, 8, 16, 32, 64, 128, 256)
ACCELERATOR_HELP = "v4-N (N TensorCores: 8, 16, 32, ... up to 4096) or v5litepod-N (N chips: 1, 4, 8, 16, ..., 256)"


@dataclasses.dataclass(frozen=True)
class Accelerator:
    type: str
    family: str
    chips: int
    hosts: int


def parse_accelerator(text: str) -> Accelerator:
    """``v4-N``: N TensorCores, 2 per chip, 4 chips per host. ``v5litepod-N``: N chips, one host up to 8
    chips, 4 chips per host beyond. Raises ValueError for anything else."""
    m = re.fullmatch(r"(v4|v5litepod)-([0-9]+)", text)
    if m:
        family, n = m[1], int(m[2])
        if family == "v4" and n % 8 == 0 and 8 <= n <= 4096:
            return Accelerator(text, family, n // 2, n // 8)
        if family == "v5litepod" and n in V5E_SIZES:
            return Accelerator(text, family, n, 1 if n <= 8 else n // 4)
    raise ValueError(f"unknown accelerator type {text!r}; expected {ACCELERATOR_HELP}")


@dataclasses.dataclass(frozen=True)
class Tpu:
    """A TPU VM (or slice) and the gcloud command lines that act on it."""

    name: str
    zone: str
    project: str | None = None
    accelerator: Accelerator | None = None

    def gcloud(self, verb: str, *args: str, positional: list[str] | None = None) -> list[str]:
        """``gcloud compute tpus tpu-vm VERB NAME --zone=ZONE ARGS... [--project=PROJECT]`` (``positional``
        replaces NAME, for scp)."""
        cmd = ["gcloud", "compute", "tpus", "tpu-vm", verb, *(positional or [self.name]), f"--zone={self.zone}", *args]
        return cmd + ([f"--project={self.project}"] if self.project else [])

    def ssh(self, worker: str, command: str) -> list[str]:
        """Runs the shell command ``command`` on one worker (an index) or on ``all`` of them at once."""
        return self.gcloud("ssh", f"--worker={worker}", "--command", command)

    def scp_to_workers(self, local: str, remote: str) -> list[str]:
        return self.gcloud("scp", "--worker=all", positional=[local, f"{self.name}:{remote}"])


def rquote(arg: str) -> str:
    """Quotes one word for the workers' shell, in double quotes where that is safe, so that the whole
    command, single-quoted once more on the printed line, stays readable."""
    if re.fullmatch(r"[\w@%+=:,./-]+", arg):
        return arg
    if arg and not re.search(r'[$`\\"!\n]', arg):
        return f'"{arg}"'
    return shlex.quote(arg)


def rjoin(argv: list[str]) -> str:
    return " ".join(rquote(a) for a in argv)


def define_tpu_flags() -> None:
    """The four flags every launch script takes, plus ``--dry_run``."""
    flags.DEFINE_string("name", None, "TPU VM name: lowercase letters, digits and hyphens, starting with a letter.")
    flags.DEFINE_string("zone", None, "Zone (default: v4 us-central2-b, v5litepod us-west4-a).")
    flags.DEFINE_string("accelerator_type", None, f"Accelerator type: {ACCELERATOR_HELP}.")
    flags.DEFINE_string("project", None, "Google Cloud project (default: gcloud's configured project).")
    flags.DEFINE_bool("dry_run", False, "Print the commands, one per line, instead of running them.")


def define_remote_flags() -> None:
    """Where the checkout lives on each worker and which Python runs it."""
    flags.DEFINE_string("remote_dir", "sparse_rnn_jax", "Checkout folder on each worker (relative to the home folder).")
    flags.DEFINE_string("python", "python3", "Python interpreter on the workers.")


def define_log_flag() -> None:
    """Where a run logs on each worker; its process id goes beside it (LOG minus .log, plus .pid)."""
    flags.DEFINE_string(
        "log_file", "sparse_rnn_jax_logs/sweep.log", "Log file on each worker (relative to the home folder)."
    )


def log_file_from_flags() -> tuple[str, str]:
    """(log file, pid file) on the workers."""
    log = check_remote_path("log_file")
    if not log.endswith(".log") or log.endswith("/.log") or log == ".log":
        fail(f"--log_file must name a file ending in .log, got {log!r}")
    return log, log[: -len(".log")] + ".pid"


def tpu_from_flags(require_accelerator: bool = False) -> Tpu:
    """Validates --name, --accelerator_type, --zone and --project (exit 2 on the first bad one)."""
    name = FLAGS.name
    if not name:
        fail("--name is required")
    if not TPU_NAME.fullmatch(name) or len(name) > 63:
        fail(
            f"--name {name!r} is not a valid TPU name: lowercase letters, digits and hyphens, starting with a "
            "letter, not ending with a hyphen, at most 63 characters"
        )
    accelerator = None
    if FLAGS.accelerator_type:
        try:
            accelerator = parse_accelerator(FLAGS.accelerator_type)
        except ValueError as e:
            fail(f"--accelerator_type: {e}")
    elif require_accelerator:
        fail(f"--accelerator_type is required ({ACCELERATOR_HELP})")
    zone = FLAGS.zone or (FAMILY_DEFAULTS[accelerator.family][0] if accelerator else None)
    if not zone:
        fail("--zone is required when --accelerator_type is not given")
    if not ZONE.fullmatch(zone):
        fail(f"--zone {zone!r} does not look like a zone (e.g. us-central2-b)")
    project = FLAGS.project
    if project is not None and (not project or any(c.isspace() for c in project)):
        fail(f"--project {project!r} is not a project id")
    return Tpu(name, zone, project, accelerator)


def check_worker(worker: str, tpu: Tpu | None) -> str:
    """``all`` or a worker index (below the host count when the accelerator type is known)."""
    if worker == "all":
        return worker
    if not worker.isdigit():
        fail(f"--worker must be 'all' or a worker index (0, 1, ...), got {worker!r}")
    if tpu is not None and tpu.accelerator is not None and int(worker) >= tpu.accelerator.hosts:
        hosts = tpu.accelerator.hosts
        fail(f"--worker={worker}: {tpu.accelerator.type} has {hosts} worker(s), 0-{hosts - 1}")
    return str(int(worker))


def check_remote_path(flag: str) -> str:
    """A path on the workers; relative paths start at the home folder. ``~`` would be quoted, so it is refused."""
    value = FLAGS[flag].value
    if not value or value.startswith("~") or "\n" in value:
        fail(f"--{flag} must be a path relative to the home folder (or absolute), got {value!r}")
    return value


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def execute(commands: list[list[str]]) -> None:
    """With --dry_run prints each command (shlex-quoted, one per line). Otherwise runs them in order and stops
    at the first failure with one line on stderr and exit status 1."""
    if FLAGS.dry_run:
        for cmd in commands:
            print(shlex.join(cmd))
        return
    for tool in sorted({cmd[0] for cmd in commands}):
        if shutil.which(tool) is None:
            fail(f"{tool} not found on PATH" + (" (install the Google Cloud CLI)" if tool == "gcloud" else ""))
    for cmd in commands:
        note("+ " + shlex.join(cmd))
        try:
            rc = subprocess.run(cmd).returncode
        except KeyboardInterrupt:
            sys.exit(130)
        except OSError as e:
            print(f"error: could not run {cmd[0]}: {e}", file=sys.stderr)
            sys.exit(1)
        if rc != 0:
            print(f"error: exit status {rc} from: {shlex.join(cmd)}", file=sys.stderr)
            sys.exit(1)
