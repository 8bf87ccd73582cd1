"""The paper's Fig. 3-5 block tables of a network, as text (``describe``, ``recommend``)."""

from __future__ import annotations


def format_table(d: dict) -> str:
    """The paper's Fig. 3-5 block tables (density, trainable weights) and the totals, as text."""
    b = d["blocks"]
    dims = [d["input_dim"], d["hidden_dim"], d["output_dim"]]
    w = 12
    lines = [
        f"config={d['config']}  |x|={d['input_dim']}  |h|={d['hidden_dim']}  |y|={d['output_dim']}",
        "",
        "density (paper: f<100*density>, 'sparsity')",
        " " * 8 + "".join(f"{v:>{w}}" for v in dims),
    ]
    for row, label in (("h", d["hidden_dim"]), ("y", d["output_dim"])):
        lines.append(f"{label:>8}" + "".join(f"{b[row + c]['density']:>{w}.2f}" for c in "xhy"))
    lines += ["", "trainable weights (expected = rows x cols x density)", " " * 8 + "".join(f"{v:>{w}}" for v in dims)]
    for row, label in (("h", d["hidden_dim"]), ("y", d["output_dim"])):
        lines.append(f"{label:>8}" + "".join(f"{b[row + c]['trainable']:>{w},.0f}" for c in "xhy"))
    lines += [
        "",
        f"trainable weights : {d['trainable_params']:,.0f}   (+ {d['bias_params']:,} dense biases)",
        f"weight entries    : {d['weight_entries']:,}",
        f"model density     : {d['model_density']:.4f}",
        f"hidden proportion : {d['hidden_proportion']:.4f}   (Eqn 12: hh / (hx + hh + hy))",
    ]
    return "\n".join(lines)
