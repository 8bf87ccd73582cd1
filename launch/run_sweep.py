"""Starts the same sweep on every worker of a TPU VM or slice, in the background.

  python -m launch.run_sweep --flagfile=tpu.flags -- \\
      --flagfile=experiments/flags/table_iv.flags --workdir=gs://BUCKET/table_iv

Everything after ``--`` is passed to ``python -m MODULE`` (run in --remote_dir on each worker). Each worker
runs it under nohup, so it survives the ssh session, appending to its own --log_file (default
sparse_rnn_jax_logs/sweep.log) and writing its process id beside it (sweep.pid); a worker where that process
is still alive refuses to start a second one. On a multi-host slice the engine joins the hosts itself
(jax.distributed, auto-detected on Cloud TPU), and the workdir must be a gs:// path that every host sees.
Rerunning the same command resumes from the workdir.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from absl import flags

from launch import common

FLAGS = flags.FLAGS
common.define_tpu_flags()
common.define_remote_flags()
common.define_log_flag()
flags.adopt_module_key_flags(common)
flags.DEFINE_enum(
    "module",
    "experiments.rad_sweep",
    ["experiments.rad_sweep", "experiments.minari_sweep", "experiments.ah_sweep"],
    "The sweep entry point to run.",
)

USAGE = (
    "give the sweep's flags after --, e.g. "
    "-- --flagfile=experiments/flags/table_iv.flags --workdir=gs://BUCKET/table_iv"
)


def _flag_values(args: list[str], name: str) -> list[str]:
    """Values of ``--name=V`` and ``--name V`` in an argument list, in order."""
    out = []
    for i, a in enumerate(args):
        if a.startswith(f"--{name}="):
            out.append(a.split("=", 1)[1])
        elif a == f"--{name}" and i + 1 < len(args):
            out.append(args[i + 1])
    return out


def find_workdir(args: list[str]) -> str | None:
    """The --workdir the sweep will see: the last one on the command line or in a flagfile it names (read from
    this checkout; absl reads flagfiles where they appear, so later flags win)."""
    found = None
    for i, a in enumerate(args):
        if a.startswith("--flagfile=") or (a == "--flagfile" and i + 1 < len(args)):
            path = a.split("=", 1)[1] if "=" in a else args[i + 1]
            p = Path(path) if Path(path).is_absolute() else common.REPO_ROOT / path
            try:
                lines = [ln.strip() for ln in p.read_text().splitlines()]
            except OSError:
                continue
            values = _flag_values([ln for ln in lines if ln and not ln.startswith("#")], "workdir")
            found = values[-1] if values else found
        elif a.startswith("--workdir=") or a == "--workdir":
            values = _flag_values(args[i : i + 2], "workdir")
            found = values[0] if values else found
    return found


def remote_script(sweep: list[str], remote_dir: str, log: str, pid: str) -> str:
    q = common.rquote
    return (
        f"mkdir -p {q(posixpath.dirname(log) or '.')} || exit 1; "
        f'if [ -f {q(pid)} ] && kill -0 "$(cat {q(pid)})" 2>/dev/null; then '
        f'echo "$(hostname): already running as pid $(cat {q(pid)}), see {log}" >&2; exit 1; fi; '
        f"(cd {q(remote_dir)} && exec nohup {common.rjoin(sweep)}) >> {q(log)} 2>&1 < /dev/null & "
        f'echo $! > {q(pid)}; echo "$(hostname): started pid $!, logging to {log}"'
    )


def main(argv):
    sweep_args = argv[1:]
    if not sweep_args:
        common.fail(f"no sweep flags: {USAGE}")
    tpu = common.tpu_from_flags(require_accelerator=True)
    remote_dir = common.check_remote_path("remote_dir")
    log, pid = common.log_file_from_flags()
    workdir = find_workdir(sweep_args)
    hosts = tpu.accelerator.hosts
    if not workdir:
        common.fail(f"the sweep needs --workdir (none after -- nor in a flagfile found in this checkout): {USAGE}")
    if not workdir.startswith("gs://"):
        if hosts > 1:
            common.fail(
                f"--workdir={workdir} is local, but {tpu.accelerator.type} has {hosts} hosts that would each "
                "write their own copy; use a gs://BUCKET/PATH workdir"
            )
        common.note(
            f"note: --workdir={workdir} is on the VM's disk (under {remote_dir}/ unless absolute); copy it off "
            "before deleting the VM, or use a gs:// workdir"
        )
    sweep = [FLAGS.python, "-u", "-m", FLAGS.module, *sweep_args]
    common.note(f"{FLAGS.module} on {hosts} worker(s) of {tpu.name}; workdir {workdir}; log {log} on each")
    common.execute([tpu.ssh("all", remote_script(sweep, remote_dir, log, pid))])
    if not FLAGS.dry_run:
        common.note("follow it with: python -m launch.tail_logs --worker=0 (and the same TPU and log flags)")


if __name__ == "__main__":
    common.run(main)
