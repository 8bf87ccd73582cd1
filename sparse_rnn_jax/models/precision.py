"""The computation's dtype (Flax's meaning of ``dtype``): the products with the data take operands in
``compute_dtype`` and accumulate in float32; parameters, Adam's moments, losses and the recurrent state stay
float32.

``float32`` (the default) is the plain product, unchanged. ``bfloat16`` casts both operands of the input projection
(and, in its gradient, the output's cotangent and the stored input) to bf16 and asks XLA for a float32 result
(``preferred_element_type``): the form XLA's CPU backend runs on AMX matrix units and GPUs/TPUs on their tensor
cores. ``jax_default_matmul_precision`` does not reach a CPU's matrix units; the operands must be bf16.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sparse_rnn_jax.core.spec import COMPUTE_DTYPES, check_compute_dtype

__all__ = ["COMPUTE_DTYPES", "check_compute_dtype", "data_product"]


def data_product(subscripts: str, x: jax.Array, w: jax.Array, compute_dtype: str = "float32") -> jax.Array:
    """``jnp.einsum(subscripts, x, w)`` of two operands, with operands in ``compute_dtype`` and a float32 result.

    float32: exactly ``jnp.einsum(subscripts, x, w)``. bfloat16: both operands cast to bf16, accumulated in f32;
    the gradient is hand-written so that its products also take bf16 operands (the f32 cotangent cast to bf16)
    and return f32 gradients: autodiff of the cast product would multiply the f32 cotangent with the bf16 input
    in f32 and round the weight's gradient to bf16."""
    if check_compute_dtype(compute_dtype) == "float32":
        return jnp.einsum(subscripts, x, w)
    return _low_product(subscripts, compute_dtype, x, w)


def _einsum_low(subscripts: str, dtype: str, a: jax.Array, b: jax.Array) -> jax.Array:
    """The product in ``dtype`` with a float32 result, contracted into dot_general's own output order (shared
    indices, then ``a``'s, then ``b``'s) and transposed after: XLA's CPU backend has no bf16 x bf16 -> f32 kernel
    for a product that writes its result in another order (measured: "tbh,hx->btx" fails to run; the same
    product into "tbx", then transposed, runs)."""
    ins, out = subscripts.replace(" ", "").split("->")
    sa, sb = ins.split(",")
    natural = "".join(
        [i for i in sa if i in sb and i in out] + [i for i in sa if i not in sb] + [i for i in sb if i not in sa]
    )
    y = jnp.einsum(f"{sa},{sb}->{natural}", a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)
    return y if natural == out else jnp.transpose(y, [natural.index(i) for i in out])


def _weight_first(subscripts: str, dtype: str, x: jax.Array, w: jax.Array) -> jax.Array:
    """``_einsum_low`` of ``subscripts`` (data x, weight w) with the weight as the left operand when it contracts its
    trailing indices (a weight stored [H, X] times data [..., X]): the output order then starts with the weight's own
    rows (e.g. "hx,btx->hbt"), so a weight stacked over models [P, H, X] enters the product as stored. With the data
    first, XLA transposed every model's weight into a bf16 copy [X, P * H] before the product (measured: 34 ms of a
    68 ms step of 48 models at |h| 52, 2-core CPU), where the output's transpose after it is small ([P, H, T * B]).
    Any other product keeps the data first (a bf16 product whose left operand contracts its leading index has no
    CPU kernel)."""
    ins, out = subscripts.replace(" ", "").split("->")
    sx, sw = ins.split(",")
    contracted = [i for i in sw if i in sx and i not in out]
    if contracted and sw.endswith("".join(contracted)):
        return _einsum_low(f"{sw},{sx}->{out}", dtype, w, x)
    return _einsum_low(subscripts, dtype, x, w)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _low_product(subscripts: str, dtype: str, x: jax.Array, w: jax.Array) -> jax.Array:
    return _weight_first(subscripts, dtype, x, w)


def _low_forward(subscripts, dtype, x, w):
    xl, wl = x.astype(dtype), w.astype(dtype)
    return _weight_first(subscripts, dtype, xl, wl), (xl, wl)


def _low_backward(subscripts, dtype, residuals, g):
    xl, wl = residuals  # the operands as cast; the primal operands are float32 (parameters and data)
    ins, out = subscripts.replace(" ", "").split("->")
    sx, sw = ins.split(",")
    gl = g.astype(dtype)
    dw = _einsum_low(f"{out},{sx}->{sw}", dtype, gl, xl)
    dx = _einsum_low(f"{out},{sw}->{sx}", dtype, gl, wl)  # dead code for data (XLA drops it)
    return dx, dw


_low_product.defvjp(_low_forward, _low_backward)
