import math

import pytest

from sparse_rnn_jax.core.spec import BLOCKS, BlockSpec, NetworkSpec, make_spec


def test_valid_spec_and_shapes():
    s = make_spec(2500, 29, 10)
    assert s.block_shape("hx") == (29, 2500)
    assert s.block_shape("hh") == (29, 29)
    assert s.block_shape("hy") == (29, 10)
    assert s.block_shape("yx") == (10, 2500)
    assert s.block_shape("yh") == (10, 29)
    assert s.block_shape("yy") == (10, 10)
    assert hash(s) == hash(make_spec(2500, 29, 10))


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, math.nan, math.inf])
def test_invalid_density_names_field(block, bad):
    with pytest.raises(ValueError, match=f"density_{block}"):
        make_spec(10, 5, 3, {b: (bad if b == block else 1.0) for b in BLOCKS})


@pytest.mark.parametrize("field", ["input_dim", "hidden_dim", "output_dim"])
@pytest.mark.parametrize("bad", [0, -3])
def test_invalid_dims_name_field(field, bad):
    dims = {"input_dim": 4, "hidden_dim": 4, "output_dim": 4, field: bad}
    with pytest.raises(ValueError, match=field):
        NetworkSpec(**dims)


def test_invalid_std_and_mean_name_field():
    with pytest.raises(ValueError, match="init_std_hh"):
        make_spec(4, 4, 4, init_std={b: (-0.1 if b == "hh" else 0.05) for b in BLOCKS})
    with pytest.raises(ValueError, match="init_mean_yx"):
        make_spec(4, 4, 4, init_mean={b: (math.nan if b == "yx" else 0.0) for b in BLOCKS})
    with pytest.raises(ValueError, match="init_std_hx"):
        make_spec(4, 4, 4, init_std={b: (math.nan if b == "hx" else 0.05) for b in BLOCKS})


def test_invalid_activation_and_lr():
    with pytest.raises(ValueError, match="activation"):
        make_spec(4, 4, 4, activation="sigmoid")
    with pytest.raises(ValueError, match="learning_rate"):
        make_spec(4, 4, 4, learning_rate=0.0)


def test_blocks_immutable_and_with_blocks():
    s = make_spec(4, 4, 4)
    with pytest.raises(TypeError):
        s.blocks["hx"] = BlockSpec(0.5)
    t = s.with_blocks(hx={"density": 0.5})
    assert t.density("hx") == 0.5 and s.density("hx") == 1.0
