"""The cross-task parent network (meta-learning across the task zoo, ``studies.zoo``).

Modules, in the order data flows:
  dataset    the meta-dataset: one row per trained zoo model, losses normalised by the task's chance loss
  parent     the cross-task parent: forest and MLP predicting the normalised loss curve from task descriptors and
             hyperparameters; saved as plain arrays, JSON and msgpack
  loto       leave-one-task-out evaluation against the balanced rule, dense, a random pick and a per-task predictor
  recommend  ranked candidates for any new task from the shipped parent, and their validation on a user's npz file
The shipped meta-dataset and parent live in ``data/`` (``dataset.SHIPPED_DATASET``, ``parent.SHIPPED_PARENT``).
"""
