"""The UNet's layers from ddx.nn: timestep_embedding, GroupNorm32 (plain / SiLU / scale-shift),
QKV attention backends, and the fused (Triton, via TRITON_INTERPRET=1) path against the eager one.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from ddx.models.unet import UNetModel
from ddx.nn.attention import AttentionBackend, AttentionBlock, qkv_attention
from ddx.nn.embedding import timestep_embedding
from ddx.nn.norm import GroupNorm32
from ddx.ops import set_fused
from tests.models.model_helpers import network_tol_on_gradient_scale, randomize_parameters
from tests.tolerances import assert_close


@pytest.mark.parametrize("dim", [1, 2, 7, 32], ids=lambda d: f"dim{d}")
def test_timestep_embedding_layout(dim):
    t = torch.tensor([0.0, 1.5, 999.0])
    emb = timestep_embedding(t, dim)
    assert emb.shape == (3, dim) and emb.dtype == torch.float32
    half = dim // 2
    freqs = torch.tensor([math.exp(-math.log(10000) * i / half) for i in range(half)])
    args = t[:, None].double() * freqs[None].double()
    torch.testing.assert_close(emb[:, :half].double(), torch.cos(args), rtol=0, atol=1e-5)
    torch.testing.assert_close(emb[:, half: 2 * half].double(), torch.sin(args), rtol=0, atol=1e-5)
    if dim % 2:
        assert (emb[:, -1] == 0).all()


def test_timestep_embedding_integer_timesteps_and_max_period():
    emb = timestep_embedding(torch.tensor([3]), 4, max_period=100)
    expected = torch.tensor([[math.cos(3), math.cos(3 / 10), math.sin(3), math.sin(3 / 10)]])
    torch.testing.assert_close(emb, expected)


@pytest.mark.parametrize(
    "args,error",
    [((torch.zeros(2, 1), 4), ValueError), ((torch.zeros(2), 0), ValueError), (([1.0], 4), TypeError)],
    ids=["2d_timesteps", "zero_dim", "not_tensor"],
)
def test_timestep_embedding_bad_input(args, error):
    with pytest.raises(error):
        timestep_embedding(*args)


def _norm(channels, silu, fused):
    norm = randomize_parameters(GroupNorm32(channels, silu=silu), seed=3)
    return set_fused(norm, fused)


@pytest.mark.parametrize("silu", [False, True], ids=["plain", "silu"])
@pytest.mark.parametrize("shape", [(1, 64, 1), (2, 64, 3, 5)], ids=["1d_size1", "2d_odd"])
def test_groupnorm32_matches_official_formula(shape, silu):
    norm = _norm(shape[1], silu, fused=False)
    x = torch.randn(shape)
    expected = F.group_norm(x, 32, norm.weight, norm.bias, eps=1e-5)
    assert_close(norm(x), F.silu(expected) if silu else expected)


def test_groupnorm32_scale_shift_matches_official_formula():
    norm = _norm(64, True, fused=False)
    x, scale, shift = torch.randn(2, 64, 3, 3), torch.randn(2, 64), torch.randn(2, 64)
    official = F.group_norm(x, 32, norm.weight, norm.bias, eps=1e-5) * (1 + scale[..., None, None]) + shift[..., None, None]
    assert_close(norm.scale_shift(x, scale, shift), F.silu(official))
    with pytest.raises(ValueError, match="scale must have shape"):
        norm.scale_shift(x, scale[:1], shift)


def test_groupnorm32_state_dict_and_channel_check():
    assert set(GroupNorm32(64).state_dict()) == {"weight", "bias"}
    with pytest.raises(ValueError):
        GroupNorm32(48)


def test_groupnorm32_bf16_statistics_in_fp32():
    norm = _norm(32, True, fused=False)
    x = (torch.randn(2, 32, 4, 4) * 100 + 1000).bfloat16()
    out = norm(x)
    assert out.dtype == torch.bfloat16
    expected = F.silu(F.group_norm(x.float(), 32, norm.weight, norm.bias, eps=1e-5))
    assert_close(out, expected, dtype=torch.bfloat16)


@pytest.mark.parametrize("shape", [(1, 3, 1), (3, 24, 7), (2, 48, 16)], ids=["T1_ch1", "odd_T7", "T16"])
def test_sdpa_backend_equals_official_math(shape):
    qkv = torch.randn(shape, requires_grad=True)
    outs = [qkv_attention(qkv, backend) for backend in (AttentionBackend.MATH, AttentionBackend.SDPA)]
    assert outs[0].shape == (shape[0], shape[1] // 3, shape[2])
    assert_close(outs[1], outs[0])
    grad = torch.randn_like(outs[0])
    grads = [torch.autograd.grad(out, qkv, grad)[0] for out in outs]
    assert_close(grads[1], grads[0])


def test_attention_block_head_layout():
    """Each head takes a contiguous block of 3 * C / heads qkv channels (the official reshape)."""
    block = set_fused(randomize_parameters(AttentionBlock(64, num_heads=2), seed=5), False)
    x = torch.randn(2, 64, 3, 3)
    qkv = block.qkv(block.norm(x.reshape(2, 64, 9)))
    heads = [qkv_attention(qkv[:, i * 96:(i + 1) * 96], AttentionBackend.MATH) for i in range(2)]
    expected = x.reshape(2, 64, 9) + block.proj_out(torch.cat(heads, dim=1))
    assert_close(block(x), expected.reshape(2, 64, 3, 3))


def test_qkv_attention_bad_input():
    with pytest.raises(ValueError, match="qkv must have shape"):
        qkv_attention(torch.randn(2, 4, 5))


@pytest.mark.parametrize("mode", ["plain", "scale_shift"])
def test_groupnorm32_fused_equals_reference(mode):
    norms = [_norm(32, True, fused) for fused in (True, False)]
    x, scale, shift = torch.randn(2, 32, 3, 3), torch.randn(2, 32), torch.randn(2, 32)
    results = []
    for norm in norms:
        inputs = [t.clone().requires_grad_() for t in (x, scale, shift)]
        out = norm(inputs[0]) if mode == "plain" else norm.scale_shift(*inputs)
        wrt = [inputs[0], norm.weight, norm.bias] + (inputs[1:] if mode == "scale_shift" else [])
        results.append([out] + list(torch.autograd.grad(out, wrt, torch.ones_like(out) * x)))
    for fused, reference in zip(*results):
        assert_close(fused, reference)


def test_unet_fused_path_equals_reference_path():
    """The whole UNet on the Triton adagn (interpreted) vs kernels.reference.

    Tiny (batch 1, 2x2, one level: 12 adagn calls) because the interpreter costs about 10 ms per
    program instance and each call launches one per (sample, group) in forward and backward.
    """
    kwargs = dict(
        in_channels=3,
        model_channels=32,
        out_channels=6,
        num_res_blocks=1,
        attention_resolutions=(),
        channel_mult=(1,),
        num_heads=2,
        use_scale_shift_norm=True,
        num_classes=3,
    )
    models = [set_fused(randomize_parameters(UNetModel(**kwargs), seed=11), fused) for fused in (True, False)]
    x, t, y = torch.randn(1, 3, 2, 2), torch.tensor([999.0]), torch.tensor([2])
    results = []
    for model in models:
        xr = x.clone().requires_grad_()
        out = model(xr, t, y)
        results.append([out] + list(torch.autograd.grad(out.square().sum(), [xr] + list(model.parameters()))))
    assert_close(results[0][0], results[1][0])
    # Gradients through ~20 layers differ by reduction order (a few 1e-6 relative to the largest).
    tol = network_tol_on_gradient_scale(results[1][1:])
    names = ["grad_x"] + [n for n, _ in models[0].named_parameters()]
    for name, fused, reference in zip(names, results[0][1:], results[1][1:]):
        torch.testing.assert_close(fused, reference, **tol, msg=lambda m, name=name: f"{name}: {m}")
