"""Creates a Cloud TPU VM or multi-host slice.

  python -m launch.create_tpu --name=table-iv --accelerator_type=v4-32 --spot --dry_run
  python -m launch.create_tpu --flagfile=tpu.flags

The zone and runtime version default to the accelerator family's: v4-* in us-central2-b with
tpu-ubuntu2204-base; v5e (v5litepod-*) in us-west4-a with v2-alpha-tpuv5-lite.
"""

from __future__ import annotations

import re

from absl import flags

from launch import common

FLAGS = flags.FLAGS
common.define_tpu_flags()
flags.adopt_module_key_flags(common)
flags.DEFINE_string("version", None, "TPU VM runtime version (default: the accelerator family's).")
flags.DEFINE_bool("spot", False, "Create a spot TPU (cheaper; can be preempted at any time).")
flags.DEFINE_bool("preemptible", False, "Create a preemptible TPU (the older form of --spot).")


def main(argv):
    common.check_no_positional(argv)
    tpu = common.tpu_from_flags(require_accelerator=True)
    acc = tpu.accelerator
    version = FLAGS.version or common.FAMILY_DEFAULTS[acc.family][1]
    if not re.fullmatch(r"[a-z0-9][-a-z0-9.]*", version):
        common.fail(f"--version {version!r} is not a TPU runtime version (e.g. tpu-ubuntu2204-base)")
    if FLAGS.spot and FLAGS.preemptible:
        common.fail("--spot and --preemptible are mutually exclusive")
    extra = ["--spot"] if FLAGS.spot else ["--preemptible"] if FLAGS.preemptible else []
    common.note(f"{acc.type}: {acc.chips} chip(s) on {acc.hosts} host(s) in {tpu.zone}")
    common.execute([tpu.gcloud("create", f"--accelerator-type={acc.type}", f"--version={version}", *extra)])


if __name__ == "__main__":
    common.run(main)
