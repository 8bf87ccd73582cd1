"""Installs the package on every worker of a TPU VM or slice: fetches the code, then ``pip install -e '.[tpu]'``.

  # from a git repository, at a branch, tag or commit
  python -m launch.setup_workers --flagfile=tpu.flags --repo_url=https://github.com/OWNER/sparse_rnn_jax --ref=main
  # from this checkout: its tracked files at --ref (default HEAD; uncommitted changes are not sent)
  python -m launch.setup_workers --flagfile=tpu.flags --source=local

Rerunning updates the checkout in place (--remote_dir, relative to each worker's home folder); files the
package does not track there (a local workdir, say) are kept.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from absl import flags

from launch import common

FLAGS = flags.FLAGS
common.define_tpu_flags()
common.define_remote_flags()
flags.adopt_module_key_flags(common)
flags.DEFINE_enum("source", "git", ["git", "local"], "git: clone --repo_url on each worker; local: send this checkout.")
flags.DEFINE_string("repo_url", None, "Git repository to fetch on each worker (for --source=git).")
flags.DEFINE_string("ref", None, "Branch, tag or commit (default: main for --source=git, HEAD for --source=local).")
flags.DEFINE_string("extras", "tpu", "Package extras to install, comma-separated ('' for none).")
flags.DEFINE_string("find_links", common.LIBTPU_FIND_LINKS, "pip --find-links page for libtpu ('' for none).")

REMOTE_ARCHIVE = "sparse_rnn_jax-src.tar.gz"


def local_archive_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"sparse_rnn_jax-{name}.tar.gz"


def pip_install() -> str:
    target = f".[{FLAGS.extras}]" if FLAGS.extras else "."
    cmd = [FLAGS.python, "-m", "pip", "install", "-e", target]
    return common.rjoin(cmd + (["-f", FLAGS.find_links] if FLAGS.find_links else []))


def git_commands(tpu: common.Tpu, remote_dir: str, ref: str) -> list[list[str]]:
    q = common.rquote
    script = " && ".join(
        [
            f"mkdir -p {q(remote_dir)}",
            f"cd {q(remote_dir)}",
            "{ [ -d .git ] || git init -q; }",
            f"git fetch -q --depth=1 {q(FLAGS.repo_url)} {q(ref)}",
            "git checkout -q --force FETCH_HEAD",
            pip_install(),
        ]
    )
    return [tpu.ssh("all", script)]


def local_commands(tpu: common.Tpu, remote_dir: str, ref: str) -> list[list[str]]:
    q = common.rquote
    archive = local_archive_path(tpu.name)
    script = " && ".join(
        [
            f"mkdir -p {q(remote_dir)}",
            f"tar -xzf {REMOTE_ARCHIVE} -C {q(remote_dir)}",
            f"rm -f {REMOTE_ARCHIVE}",
            f"cd {q(remote_dir)}",
            pip_install(),
        ]
    )
    return [
        ["git", "-C", str(common.REPO_ROOT), "archive", "--format=tar.gz", f"--output={archive}", ref],
        tpu.scp_to_workers(str(archive), REMOTE_ARCHIVE),
        tpu.ssh("all", script),
    ]


def check_local_ref(ref: str) -> None:
    """The ref must name a commit of this checkout; warns when tracked files have uncommitted changes."""
    git = ["git", "-C", str(common.REPO_ROOT)]
    try:
        found = subprocess.run(git + ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], capture_output=True)
    except OSError as e:
        common.fail(f"--source=local needs git: {e}")
    if found.returncode != 0:
        common.fail(f"--ref {ref!r} is not a commit of the checkout at {common.REPO_ROOT}")
    if ref == "HEAD":
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        if dirty.stdout.strip():
            common.note("warning: uncommitted changes to tracked files are not sent (git archive takes HEAD)")


def main(argv):
    common.check_no_positional(argv)
    tpu = common.tpu_from_flags()
    remote_dir = common.check_remote_path("remote_dir")
    if not re.fullmatch(r"[A-Za-z0-9_,-]*", FLAGS.extras):
        common.fail(f"--extras must be comma-separated extra names, got {FLAGS.extras!r}")
    if FLAGS.ref is not None and (not FLAGS.ref or FLAGS.ref.startswith("-") or any(c.isspace() for c in FLAGS.ref)):
        common.fail(f"--ref {FLAGS.ref!r} is not a git ref")
    if FLAGS.source == "git":
        if not FLAGS.repo_url:
            common.fail("--repo_url is required for --source=git (or use --source=local)")
        ref = FLAGS.ref or "main"
        commands = git_commands(tpu, remote_dir, ref)
    else:
        if FLAGS.repo_url:
            common.fail("--repo_url is for --source=git; --source=local sends this checkout")
        ref = FLAGS.ref or "HEAD"
        check_local_ref(ref)
        commands = local_commands(tpu, remote_dir, ref)
    common.execute(commands)


if __name__ == "__main__":
    common.run(main)
