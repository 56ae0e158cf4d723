"""DDGAN's NCSN++ generator, its AdaGN and FIR resampling layers, against the official code.

Fixtures (tests/fixtures/): ddgan_ncsnpp.pt (official NCSNpp outputs and its sampling
loop, state_dict loaded with strict=True) and upfirdn2d.pt (official up_or_down_sampling functions;
the fixed upsample_conv_2d is the harness copy labelled NOT_OFFICIAL). The parameter counts of the
published recipes were computed by the official modules (NVlabs/denoising-diffusion-gan @ 6818ded)
imported from a scratch copy outside the repo, with its CUDA-extension imports stubbed.
"""

import argparse
import dataclasses

import pytest
import torch
import torch.nn.functional as F

import kernels
from kernels import reference
from ddx.checkpoints.state_dict import strip_module_prefix
from ddx.models.ncsnpp import NCSNpp, NCSNppConfig
from ddx.models.ncsnpp_config import EmbeddingType, Progressive, ResblockType
from ddx.nn import resample
from ddx.nn.adaptive_norm import AdaptiveGroupNorm, ncsnpp_group_norm
from ddx.nn.norm import GroupNorm
from ddx.nn.ddgan_embedding import GaussianFourierProjection, get_timestep_embedding
from ddx.ops import set_fused
from ddx.presets import get_preset
from tests.models import fir_functional
from tests.models.model_helpers import config_as_plain_dict, load_fixture, randomize_parameters
from tests.tolerances import NETWORK, assert_close

NCSNPP = load_fixture("ddgan_ncsnpp.pt")
UPFIRDN = load_fixture("upfirdn2d.pt")

# train_ddgan.py's argparse defaults for the fields NCSNpp reads (ch_mult has none there).
ARGPARSE_DEFAULTS = dict(
    image_size=32, num_channels=3, centered=True, num_channels_dae=128, n_mlp=3, num_res_blocks=2,
    attn_resolutions=(16,), dropout=0.0, resamp_with_conv=True, conditional=True, fir=True,
    fir_kernel=(1, 3, 3, 1), skip_rescale=True, resblock_type="biggan", progressive="none",
    progressive_input="residual", progressive_combine="sum", embedding_type="positional",
    fourier_scale=16.0, not_use_tanh=False, nz=100, z_emb_dim=256,
)
# The generator the fixture was recorded with: built from its stored args Namespace (parser defaults
# + cli + set_attrs), the way train_ddgan.py builds NCSNpp(args).
FIXTURE_CONFIG = NCSNppConfig.from_args(NCSNPP["args"])
TINY = dict(image_size=8, num_channels_dae=8, ch_mult=(1, 2), num_res_blocks=1, nz=4, z_emb_dim=8, n_mlp=1,
            attn_resolutions=(4,))


def fixture_generator():
    model = set_fused(NCSNpp(FIXTURE_CONFIG), False).eval()
    model.load_state_dict(NCSNPP["state_dict"], strict=True)
    return model


def tiny_inputs(config, batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    s = config.image_size
    x = torch.randn(batch, config.num_channels, s, s, generator=gen)
    z = torch.randn(batch, config.nz, generator=gen)
    if config.embedding_type == EmbeddingType.FOURIER:
        t = torch.rand(batch, generator=gen) + 0.1
    else:
        t = torch.randint(0, 4, (batch,), generator=gen)
    return x, t, z


def test_config_defaults_are_the_argparse_defaults():
    config = NCSNppConfig()
    for name, value in ARGPARSE_DEFAULTS.items():
        got = getattr(config, name)
        assert (got.value if hasattr(got, "value") else got) == value, name
    assert config.init_scale == 0.0


def test_config_reproduces_the_fixture_args():
    """from_args keeps exactly the fields NCSNpp reads (the fixture's `config`), and nothing else."""
    assert config_as_plain_dict(FIXTURE_CONFIG) == dict(NCSNPP["config"], init_scale=0.0)
    assert NCSNppConfig.from_args(NCSNPP["config"]) == FIXTURE_CONFIG
    assert NCSNppConfig.from_args(argparse.Namespace(**NCSNPP["args"])) == FIXTURE_CONFIG


def test_fixture_output_strict_load():
    model = fixture_generator()
    assert sum(p.numel() for p in model.parameters()) == NCSNPP["param_count"]
    with torch.no_grad():
        out = model(NCSNPP["x"], NCSNPP["t"], NCSNPP["z"])
    assert_close(out, NCSNPP["output"], **NETWORK)


def test_fixture_sampling_steps():
    """Every step of the official sample_from_model, x_0 = G(x_{t+1}, t, z), as one batch.

    Samples do not interact in the generator (per-sample norms), so the steps can share one call.
    """
    model = fixture_generator()
    run = NCSNPP["sample_from_model"]
    steps, batch = run["latents"].shape[:2]
    t = torch.tensor(run["step_t"], dtype=torch.int64).repeat_interleave(batch)
    with torch.no_grad():
        out = model(run["per_step_x_t"].flatten(0, 1), t, run["latents"].flatten(0, 1))
    assert_close(out, run["per_step_x_0"].flatten(0, 1), **NETWORK)


def test_state_dict_order_and_module_prefix():
    model = NCSNpp(FIXTURE_CONFIG)
    assert list(model.state_dict()) == list(NCSNPP["state_dict"])
    ddp_state = {"module." + k: v for k, v in NCSNPP["state_dict"].items()}
    model.load_state_dict(strip_module_prefix(ddp_state), strict=True)
    assert torch.equal(model.state_dict()["all_modules.0.weight"], NCSNPP["state_dict"]["all_modules.0.weight"])


# (preset, official parameter count) of the published recipes (train_ddgan readme), counted by the official
# modules; the network's settings come from ddx's presets of those recipes, so a preset that drifts fails here.
OFFICIAL_COUNTS = [("cifar10", 48_432_515), ("celeba_256", 39_726_979)]


@pytest.mark.parametrize("preset,count", OFFICIAL_COUNTS, ids=[name for name, _ in OFFICIAL_COUNTS])
def test_official_recipe_parameter_count(preset, count):
    with torch.device("meta"):
        model = NCSNpp(NCSNppConfig.from_args(dict(get_preset("ddgan", preset).defaults)))
    assert sum(p.numel() for p in model.parameters()) == count


VARIANTS = {
    "ddpm": dict(resblock_type="ddpm"),
    "ddpm-nofir": dict(resblock_type="ddpm", fir=False),
    "ddpm-noconv": dict(resblock_type="ddpm", resamp_with_conv=False),
    "biggan-nofir": dict(fir=False),
    "biggan-oneadagn": dict(resblock_type="biggan_oneadagn"),
    "out-skip": dict(progressive="output_skip"),
    "out-residual": dict(progressive="residual"),
    "out-residual-nofir": dict(progressive="residual", fir=False),
    "in-skip-sum": dict(progressive_input="input_skip"),
    "in-skip-cat": dict(progressive_input="input_skip", progressive_combine="cat"),
    "in-none": dict(progressive_input="none"),
    "fourier": dict(embedding_type="fourier"),
    "no-tanh": dict(not_use_tanh=True),
    "uncentered-no-rescale-no-attn": dict(centered=False, skip_rescale=False, attn_resolutions=()),
    "unconditional": dict(conditional=False),
    "3-levels": dict(image_size=12, ch_mult=(1, 1, 2), attn_resolutions=(3,)),
}


@pytest.mark.parametrize("overrides", list(VARIANTS.values()), ids=list(VARIANTS))
def test_variants_build_and_run(overrides):
    config = NCSNppConfig(**{**TINY, **overrides})
    model = set_fused(randomize_parameters(NCSNpp(config), 3), False)
    x, t, z = tiny_inputs(config, batch=2)
    out = model(x, t, z)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    if not config.not_use_tanh:
        assert out.abs().max() <= 1
    out.square().sum().backward()
    # Unconditional models keep the blocks' Dense_0 (as the official one does) but never call it.
    unused = "Dense_0" if not config.conditional else None
    for name, p in model.named_parameters():
        if p.requires_grad and (unused is None or unused not in name):
            assert p.grad is not None, name


def test_batch_of_one_and_not_use_tanh():
    """Samples are independent (a batch of one gives the same row); not_use_tanh drops only the final tanh."""
    config = NCSNppConfig(**TINY)
    with_tanh = set_fused(randomize_parameters(NCSNpp(config), 4), False).eval()
    without = set_fused(NCSNpp(dataclasses.replace(config, not_use_tanh=True)), False).eval()
    without.load_state_dict(with_tanh.state_dict(), strict=True)
    x, t, z = tiny_inputs(config, batch=2)
    with torch.no_grad():
        both = with_tanh(x, t, z)
        first = with_tanh(x[:1], t[:1], z[:1])
        raw = without(x, t, z)
    assert_close(first, both[:1], **NETWORK)
    assert_close(torch.tanh(raw), both, **NETWORK)
    assert not torch.allclose(raw, both)


def test_fused_path_equals_reference_path():
    """Forward and every gradient through the Triton AdaGN and upfirdn2d (interpreter) vs the eager path."""
    config = NCSNppConfig(**TINY)
    model = randomize_parameters(NCSNpp(config), 5)
    x, t, z = tiny_inputs(config, batch=2)
    results = []
    for fused in (True, False):
        set_fused(model, fused)
        model.zero_grad()
        xg = x.clone().requires_grad_(True)
        out = model(xg, t, z)
        out.square().sum().backward()
        results.append((out.detach(), xg.grad, [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (out_f, gx_f, gp_f), (out_r, gx_r, gp_r) = results
    assert_close(out_f, out_r, **NETWORK)
    assert_close(gx_f, gx_r, **NETWORK)
    for a, b in zip(gp_f, gp_r):
        assert_close(a, b, **NETWORK)


@pytest.mark.parametrize(
    "x_shape,t_shape,z_shape,match",
    [
        pytest.param((2, 3, 16, 16), (2,), (2, 4), "x must be", id="image-size"),
        pytest.param((2, 1, 8, 8), (2,), (2, 4), "x must be", id="channels"),
        pytest.param((3, 8, 8), (2,), (2, 4), "x must be", id="3-d"),
        pytest.param((2, 3, 8, 8), (2,), (3, 4), "z must be", id="z-batch"),
        pytest.param((2, 3, 8, 8), (2,), (2, 5), "z must be", id="z-dim"),
        pytest.param((2, 3, 8, 8), (3,), (2, 4), "t must be", id="t-length"),
        pytest.param((2, 3, 8, 8), (2, 1), (2, 4), "t must be", id="t-2d"),
    ],
)
def test_bad_inputs(x_shape, t_shape, z_shape, match):
    model = set_fused(NCSNpp(NCSNppConfig(**TINY)), False)
    with pytest.raises(ValueError, match=match):
        model(torch.randn(x_shape), torch.zeros(t_shape, dtype=torch.int64), torch.randn(z_shape))


@pytest.mark.parametrize(
    "overrides,error,match",
    [
        pytest.param(dict(resblock_type="resnet"), ValueError, "resblock_type", id="enum"),
        pytest.param(dict(image_size=10, ch_mult=(1, 2, 2)), ValueError, "divisible", id="image-size"),
        pytest.param(dict(ch_mult=()), ValueError, "ch_mult", id="empty-ch-mult"),
        pytest.param(dict(nz=0), ValueError, "nz", id="nz"),
        pytest.param(dict(attn_resolutions=16), TypeError, "attn_resolutions", id="attn-int"),
    ],
)
def test_bad_config(overrides, error, match):
    with pytest.raises(error, match=match):
        NCSNppConfig(**{**TINY, **overrides})


def test_config_accepts_enum_strings_case_insensitively():
    config = NCSNppConfig(**TINY, resblock_type="DDPM", progressive="Output_Skip")
    assert config.resblock_type is ResblockType.DDPM and config.progressive is Progressive.OUTPUT_SKIP
    assert dataclasses.replace(config, resblock_type="biggan").resblock_type is ResblockType.BIGGAN


def test_timestep_embedding_is_sin_then_cos():
    t = torch.tensor([0, 1, 3])
    emb = get_timestep_embedding(t, 9)
    assert emb.shape == (3, 9)
    assert torch.equal(emb[0, :4], torch.zeros(4)) and torch.equal(emb[0, 4:8], torch.ones(4))
    assert torch.equal(emb[:, 8], torch.zeros(3))
    assert_close(emb[2, 0], torch.sin(torch.tensor(3.0)))
    with pytest.raises(ValueError, match="1-D"):
        get_timestep_embedding(t[:, None], 8)


def test_gaussian_fourier_projection():
    proj = GaussianFourierProjection(embedding_size=4, scale=2.0)
    assert not proj.W.requires_grad and "W" in proj.state_dict()
    x = torch.tensor([0.5, 2.0])
    expected = x[:, None] * proj.W[None] * 2 * torch.pi
    assert_close(proj(x), torch.cat([expected.sin(), expected.cos()], dim=1))


@pytest.mark.parametrize("silu", [False, True], ids=["plain", "silu"])
@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
def test_adaptive_group_norm(silu, fused):
    """gamma * GN(x) + beta with [gamma, beta] = style(z); initial style bias [1] * C + [0] * C."""
    norm = AdaptiveGroupNorm(num_groups=3, in_channel=12, style_dim=5)
    assert torch.equal(norm.style.bias, torch.cat([torch.ones(12), torch.zeros(12)]))
    set_fused(randomize_parameters(norm, 6), fused)
    x = torch.randn(2, 12, 3, 5, requires_grad=True)
    style = torch.randn(2, 5)
    gamma, beta = norm.style(style)[:, :, None, None].chunk(2, dim=1)
    expected = gamma * F.group_norm(x, 3, eps=1e-6) + beta
    expected = F.silu(expected) if silu else expected
    out = norm(x, style, silu=silu)
    assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), [x, norm.style.weight])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, norm.style.weight])
    for a, b in zip(grads, expected_grads):
        assert_close(a, b, **NETWORK)
    with pytest.raises(ValueError, match="style"):
        norm(x, style[:1])


@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
def test_group_norm_matches_nn_group_norm(fused):
    """The constructor's silu is the default; a call may override it either way."""
    theirs = randomize_parameters(torch.nn.GroupNorm(2, 6, eps=1e-6), 8)
    x = torch.randn(3, 6, 4, 1)
    for default_silu in (False, True):
        ours = set_fused(GroupNorm(2, 6, eps=1e-6, silu=default_silu), fused)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        expected = theirs(x)
        assert_close(ours(x), F.silu(expected) if default_silu else expected)
        assert_close(ours(x, silu=True), F.silu(expected))
        assert_close(ours(x, silu=False), expected)


def test_ncsnpp_group_norm_is_the_official_layer():
    """score_sde's nn.GroupNorm(min(C // 4, 32), C, eps=1e-6), with the same keys."""
    for channels, groups in ((8, 2), (256, 32)):
        norm = ncsnpp_group_norm(channels)
        assert (norm.num_groups, norm.num_channels, norm.eps, norm.silu) == (groups, channels, 1e-6, False)
        assert set(norm.state_dict()) == {"weight", "bias"}


def test_group_norm_scale_shift_without_affine():
    norm = set_fused(GroupNorm(3, 6, affine=False), False)
    x, scale, shift = torch.randn(2, 6, 5), torch.randn(2, 6), torch.randn(2, 6)
    expected = F.group_norm(x, 3, eps=1e-5) * (1 + scale[..., None]) + shift[..., None]
    assert_close(norm.scale_shift(x, scale, shift), expected)
    assert_close(norm.scale_shift(x, scale, shift, silu=True), F.silu(expected))


OPS = [pytest.param(reference.upfirdn2d, id="reference"), pytest.param(kernels.upfirdn2d, id="fused")]
RESAMPLE_CASES = {
    "upsample_2d": lambda x, w, op: fir_functional.upsample_2d(x, [1, 3, 3, 1], op=op),
    "downsample_2d": lambda x, w, op: fir_functional.downsample_2d(x, [1, 3, 3, 1], op=op),
    "upsample_2d_k_none": lambda x, w, op: fir_functional.upsample_2d(x, None, op=op),
    "downsample_2d_k_none": lambda x, w, op: fir_functional.downsample_2d(x, None, op=op),
    "naive_upsample_2d": lambda x, w, op: resample.naive_upsample_2d(x),
    # The official call crops x to even sizes first: x[..., :2 * (H // 2), :2 * (W // 2)].
    "naive_downsample_2d": lambda x, w, op: resample.naive_downsample_2d(
        x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
    ),
    "conv_downsample_2d": lambda x, w, op: fir_functional.conv_downsample_2d(x, w, [1, 3, 3, 1], op=op),
    "upsample_conv_2d_fixed_NOT_OFFICIAL": lambda x, w, op: fir_functional.upsample_conv_2d(x, w, [1, 3, 3, 1], op=op),
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", list(RESAMPLE_CASES))
def test_resample_functions_match_official(name, op):
    case = UPFIRDN["up_or_down_sampling"][name]
    x = UPFIRDN["x"].clone().requires_grad_(True)
    w = case["w"].clone().requires_grad_(True) if "w" in case else None
    out = RESAMPLE_CASES[name](x, w, op)
    assert_close(out, case["out"])
    inputs = [x] if w is None else [x, w]
    grads = torch.autograd.grad(out, inputs, case["grad_out"])
    assert_close(grads[0], case["grad_x"])
    if w is not None:
        assert_close(grads[1], case["grad_w"])


def test_setup_kernel_and_resample_errors():
    assert torch.equal(resample.setup_kernel([1, 3, 3, 1]), UPFIRDN["setup_kernel_1331"])
    with pytest.raises(ValueError, match="square"):
        resample.setup_kernel(torch.ones(2, 3))
    with pytest.raises(ValueError, match="factor"):
        fir_functional.upsample_2d(torch.ones(1, 1, 4, 4), factor=0, op=reference.upfirdn2d)
    with pytest.raises(ValueError, match="channels"):
        fir_functional.upsample_conv_2d(torch.ones(1, 2, 4, 4), torch.ones(3, 1, 3, 3), op=reference.upfirdn2d)
    with pytest.raises(ValueError, match="divisible"):
        resample.naive_downsample_2d(torch.ones(1, 1, 5, 4))


def test_fir_modules_keep_no_state_and_follow_set_fused():
    up = resample.FIRUpsample2d()
    assert up.state_dict() == {}
    x = torch.randn(1, 2, 3, 5)
    expected = fir_functional.upsample_2d(x, [1, 3, 3, 1], op=reference.upfirdn2d)
    assert_close(set_fused(up, False)(x), expected)
    assert_close(set_fused(up, True)(x), expected)
    conv = resample.FIRConv2d(2, 4, 3, down=True)
    assert set(conv.state_dict()) == {"weight", "bias"}

