"""A block RNN as one line of text, for a flag value or a run config: ``NAME:h=H:lr=LR:act=ACT:hx=D/M/S:...``.

Fields after the name, in any order: ``h`` (hidden size), ``lr`` (learning rate), ``act`` (activation, default
relu) and one ``BLOCK=DENSITY/INIT_MEAN/INIT_STD`` per block (all six required). The text holds no comma, so a
list flag can carry several. The dims come from the task, not the text:

    balanced@0.30:h=57:lr=0.001:act=relu:hx=0.08/0.0/0.05:hh=1.0/0.0/0.05:hy=1.0/0.0/0.05:yx=1.0/0.0/0.05:...
"""

from __future__ import annotations

import re

from sparse_rnn_jax.core.spec import BLOCKS, BlockSpec, NetworkSpec

SPEC_NAME = re.compile(r"[A-Za-z0-9_.@#+-]+")
"""Characters a spec's name may use in its text form."""


def spec_to_text(spec: NetworkSpec) -> str:
    """The one-line text of ``spec`` (floats in their shortest exact form; graph hh masks are not expressed)."""
    if not SPEC_NAME.fullmatch(spec.name):
        raise ValueError(f"spec name {spec.name!r} must match {SPEC_NAME.pattern}")
    if spec.hh_graph is not None:
        raise ValueError("a spec with a random-graph hh mask has no text form")
    parts = [spec.name, f"h={spec.hidden_dim}", f"lr={float(spec.learning_rate)!r}", f"act={spec.activation}"]
    for b in BLOCKS:
        blk = spec.blocks[b]
        parts.append(f"{b}={float(blk.density)!r}/{float(blk.init_mean)!r}/{float(blk.init_std)!r}")
    return ":".join(parts)


def spec_from_text(text: str, input_dim: int, output_dim: int) -> NetworkSpec:
    """The NetworkSpec of ``text`` (module docstring) for these dims; a ValueError naming what is wrong."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"spec {text!r}: expected NAME:h=H:lr=LR:hx=D/M/S:... (core.spec_text)")
    name, *fields = text.split(":")
    if not SPEC_NAME.fullmatch(name):
        raise ValueError(f"spec {text!r}: name {name!r} must match {SPEC_NAME.pattern}")
    values: dict[str, str] = {}
    for field in fields:
        key, sep, value = field.partition("=")
        if not sep or key in values:
            raise ValueError(f"spec {name}: bad or repeated field {field!r}")
        values[key] = value
    unknown = sorted(set(values) - {"h", "lr", "act", *BLOCKS})
    missing = [k for k in ("h", "lr", *BLOCKS) if k not in values]
    if unknown or missing:
        raise ValueError(f"spec {name}: unknown fields {unknown}, missing {missing}")
    try:
        blocks = {}
        for b in BLOCKS:
            d, m, s = (float(v) for v in values[b].split("/"))
            blocks[b] = BlockSpec(d, m, s)
        hidden = int(values["h"])
        lr = float(values["lr"])
    except ValueError:
        raise ValueError(f"spec {name}: h must be an int, lr and each BLOCK=D/M/S numbers") from None
    return NetworkSpec(
        input_dim, hidden, output_dim, blocks, activation=values.get("act", "relu"), learning_rate=lr, name=name
    )


def check_spec_text(text: str) -> None:
    """A ValueError unless ``text`` is a valid spec text (checked at dims 1 x 1)."""
    spec_from_text(text, 1, 1)
