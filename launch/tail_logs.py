"""Shows (and by default follows) the log of a run on one worker, or on all of them.

  python -m launch.tail_logs --flagfile=tpu.flags --worker=0
  python -m launch.tail_logs --flagfile=tpu.flags --worker=all --nofollow --lines=5

Ctrl-C stops following; the run goes on.
"""

from __future__ import annotations

from absl import flags

from launch import common

FLAGS = flags.FLAGS
common.define_tpu_flags()
common.define_log_flag()
flags.adopt_module_key_flags(common)
flags.DEFINE_string("worker", "0", "Worker index (0, 1, ...) or 'all'.")
flags.DEFINE_integer("lines", 50, "Lines of the log to show first.")
flags.DEFINE_bool("follow", True, "Keep printing new lines (tail -f).")


def main(argv):
    common.check_no_positional(argv)
    tpu = common.tpu_from_flags()
    worker = common.check_worker(FLAGS.worker, tpu)
    log, _ = common.log_file_from_flags()
    if FLAGS.lines < 0:
        common.fail(f"--lines must be >= 0, got {FLAGS.lines}")
    tail = ["tail", "-n", str(FLAGS.lines), *(["-f"] if FLAGS.follow else []), log]
    common.execute([tpu.ssh(worker, common.rjoin(tail))])


if __name__ == "__main__":
    common.run(main)
