"""Copies a sweep's workdir between a bucket and a local folder (or a worker's disk) with gcloud storage rsync.

  # bucket -> here, for python -m experiments.analyze (rerun it at any time: only new or changed files move)
  python -m launch.copy_results --src=gs://BUCKET/table_iv --dst=runs/table_iv
  # here -> bucket
  python -m launch.copy_results --src=runs/table_iv --dst=gs://BUCKET/table_iv
  # a workdir on a single-host TPU VM's disk -> bucket, run on worker 0
  python -m launch.copy_results --flagfile=tpu.flags --worker=0 --src=runs/table_iv --dst=gs://BUCKET/table_iv

checkpoints/ is left out unless --checkpoints (results.parquet, scores.parquet and run.json are what the
analysis reads; the checkpoints are only needed to resume elsewhere).
"""

from __future__ import annotations

from absl import flags

from launch import common

FLAGS = flags.FLAGS
common.define_tpu_flags()
common.define_remote_flags()
flags.adopt_module_key_flags(common)
flags.DEFINE_string("src", None, "Source folder: gs://BUCKET/PATH or a local path (required).")
flags.DEFINE_string("dst", None, "Destination folder: gs://BUCKET/PATH or a local path (required).")
flags.DEFINE_bool("checkpoints", False, "Also copy checkpoints/ (large).")
flags.DEFINE_string("worker", None, "Run the copy on this TPU worker instead of here (paths start in --remote_dir).")


def rsync_command() -> list[str]:
    cmd = ["gcloud", "storage", "rsync", "--recursive", FLAGS.src, FLAGS.dst]
    return cmd + ([] if FLAGS.checkpoints else ["--exclude=^checkpoints/"])


def main(argv):
    common.check_no_positional(argv)
    for name in ("src", "dst"):
        if not FLAGS[name].value:
            common.fail(f"--{name} is required")
        if FLAGS[name].value.startswith("gs://") and len(FLAGS[name].value.rstrip("/")) <= len("gs://"):
            common.fail(f"--{name} {FLAGS[name].value!r} names no bucket")
    if not (FLAGS.src.startswith("gs://") or FLAGS.dst.startswith("gs://")):
        common.fail("one of --src and --dst must be a gs:// path")
    if FLAGS.src.rstrip("/") == FLAGS.dst.rstrip("/"):
        common.fail("--src and --dst are the same")
    cmd = rsync_command()
    if FLAGS.worker is None:
        common.execute([cmd])
        return
    tpu = common.tpu_from_flags()
    worker = common.check_worker(FLAGS.worker, tpu)
    if worker == "all":
        common.fail("--worker must be one worker index: every worker would copy to the same place")
    remote_dir = common.check_remote_path("remote_dir")
    common.execute([tpu.ssh(worker, f"cd {common.rquote(remote_dir)} && {common.rjoin(cmd)}")])


if __name__ == "__main__":
    common.run(main)
