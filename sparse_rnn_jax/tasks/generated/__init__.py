"""Generated task families: small task modules whose descriptors (dims, length, memory span, loss) are sampled
from a range, so the task zoo spans tasks continuously rather than by hand-picked points.

Each module defines a config dataclass (``GeneratedConfig``'s sizes and seed plus its own parameters), a
``make(config, rng, n)`` of one split, and ``RANGES``: the range of each parameter the zoo samples instances from
(``base.sample_instances``: a Latin hypercube over the ranges, so a family's instances span them). ``base.define``
turns these into the module's ``TASK``, ``dims``, ``descriptor`` and ``load``; one line in ``tasks.registry``
registers the family.
"""
