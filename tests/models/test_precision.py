"""The computation dtype of the products with the data (models.precision)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.models.precision import data_product


def _operands(seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.uniform(size=(4, 3, 40)).astype(np.float32))  # [B, T, X]
    w = jnp.asarray(rng.normal(size=(7, 40)).astype(np.float32))  # [H, X]
    return x, w


def test_float32_is_the_plain_einsum():
    x, w = _operands()
    np.testing.assert_array_equal(data_product("btx,hx->tbh", x, w), jnp.einsum("btx,hx->tbh", x, w))


def test_bfloat16_products_take_bf16_operands_and_return_float32_gradients():
    x, w = _operands()
    g = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4, 7)).astype(np.float32))

    def loss(x, w, dt):
        return jnp.sum(g * data_product("btx,hx->tbh", x, w, dt))

    y = data_product("btx,hx->tbh", x, w, "bfloat16")
    assert y.dtype == jnp.float32
    xl, wl, gl = (a.astype(jnp.bfloat16).astype(jnp.float32) for a in (x, w, g))
    np.testing.assert_allclose(y, jnp.einsum("btx,hx->tbh", xl, wl), rtol=1e-5, atol=1e-5)  # f32 accumulation
    dx, dw = jax.grad(loss, argnums=(0, 1))(x, w, "bfloat16")
    assert dx.dtype == dw.dtype == jnp.float32
    # the gradient's products: the cotangent and the stored operands in bf16, accumulated in f32, not rounded
    np.testing.assert_allclose(dw, jnp.einsum("tbh,btx->hx", gl, xl), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, jnp.einsum("tbh,hx->btx", gl, wl), rtol=1e-5, atol=1e-5)
    dw32 = jax.grad(loss, argnums=1)(x, w, "float32")
    assert 0 < float(jnp.max(jnp.abs(dw - dw32))) < 2e-2 * float(jnp.max(jnp.abs(dw32)))
    text = jax.jit(jax.grad(loss, argnums=1), static_argnums=2).lower(x, w, "bfloat16").as_text()
    assert text.count("bf16") > 0 and "dot_general" in text
    for line in text.splitlines():  # every product reads bf16 operands
        if "dot_general" in line:
            assert "tensor<" in line and "xf32>, tensor<" not in line.split("->")[0].split(":")[-1], line


def test_unknown_compute_dtype_is_refused():
    x, w = _operands()
    with pytest.raises(ValueError, match="compute_dtype"):
        data_product("btx,hx->tbh", x, w, "float16")


@pytest.mark.parametrize(
    "subscripts, xs, ws",
    [
        ("btx,hx->tbh", (4, 3, 40), (7, 40)),
        ("btx,gkx->tbgk", (4, 3, 40), (3, 5, 40)),
        ("tbh,hx->btx", (3, 4, 7), (7, 40)),  # a result in another order than the product's own
    ],
)
def test_bfloat16_products_run_in_any_output_order(subscripts, xs, ws):
    rng = np.random.default_rng(2)
    x, w = (jnp.asarray(rng.normal(size=s).astype(np.float32)) for s in (xs, ws))
    want = jnp.einsum(
        subscripts, x.astype(jnp.bfloat16).astype(jnp.float32), w.astype(jnp.bfloat16).astype(jnp.float32)
    )
    for f in (data_product, jax.jit(data_product, static_argnums=(0, 3))):
        np.testing.assert_allclose(f(subscripts, x, w, "bfloat16"), want, rtol=1e-5, atol=1e-5)
    per_model = jax.vmap(lambda w: data_product(subscripts, x, w, "bfloat16"))(jnp.stack([w, 2 * w]))
    np.testing.assert_allclose(per_model[1], 2 * want, rtol=1e-5, atol=1e-5)
