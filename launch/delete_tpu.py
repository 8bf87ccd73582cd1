"""Deletes a Cloud TPU VM or slice (without asking; its local disks go with it).

python -m launch.delete_tpu --name=table-iv --zone=us-central2-b --dry_run
python -m launch.delete_tpu --flagfile=tpu.flags
"""

from __future__ import annotations

from absl import flags

from launch import common

common.define_tpu_flags()
flags.adopt_module_key_flags(common)


def main(argv):
    common.check_no_positional(argv)
    tpu = common.tpu_from_flags()
    common.execute([tpu.gcloud("delete", "--quiet")])


if __name__ == "__main__":
    common.run(main)
