"""ddx's IDDPM UNet against the official improved-diffusion UNetModel.

Fixtures: tests/fixtures/iddpm_unet.pt (shared set: official outputs, state_dicts loaded with
strict=True); tests/models/official_unet_grads.pt (official outputs and gradients of two small
configs, parameters from model_helpers.randomize_parameters); tests/models/iddpm_cifar10_state_dict.json
(the official CIFAR-10 model's state_dict shapes and parameter count). The last two were written
by the official code (improved-diffusion @ 1bc7bbb) run from a scratch copy outside the repo.
"""

import ast
import dataclasses
import inspect
import json

import pytest
import torch

from ddx.models import unet, unet_config
from ddx.models.unet import UNetModel, build_unet, create_model
from ddx.models.unet_config import UNetConfig, parse_attention_resolutions
from ddx.nn.attention import AttentionBackend
from ddx.ops import set_fused
from tests.models.model_helpers import (
    HERE,
    as_constructor_kwargs,
    load_fixture,
    network_tol_on_gradient_scale,
    randomize_parameters,
)
from tests.tolerances import NETWORK, RANDN_ULPS, assert_close


SHARED = load_fixture("iddpm_unet.pt")
GRADS = torch.load(HERE / "official_unet_grads.pt", weights_only=True)


def tiny_unet(**overrides):
    """A 2-level 32-channel UNet with attention at both levels: small enough for quick tests."""
    kwargs = dict(
        in_channels=3,
        model_channels=32,
        out_channels=6,
        num_res_blocks=1,
        attention_resolutions=(1, 2),
        channel_mult=(1, 2),
        num_heads=2,
        use_scale_shift_norm=True,
    )
    kwargs.update(overrides)
    return set_fused(randomize_parameters(UNetModel(**kwargs), seed=7), False)


def build_from_case(case):
    """The UNet a fixture case describes: create_model's stored kwargs, or UNetModel's for direct cases."""
    if case["create_model_kwargs"] is not None:
        model = create_model(**as_constructor_kwargs(case["create_model_kwargs"]))
    else:
        model = UNetModel(**as_constructor_kwargs(case["unet_kwargs"]))
    return set_fused(model, False)


# The official-fixture tests run the default attention backend (SDPA); that MATH gives the same
# forward and gradients is test_sdpa_equals_math_backend_forward_and_backward.
@pytest.mark.parametrize("name", sorted(SHARED["cases"]))
def test_official_fixture_output(name):
    case = SHARED["cases"][name]
    model = build_from_case(case)
    model.load_state_dict(case["state_dict"], strict=True)
    assert sum(p.numel() for p in model.parameters()) == case["param_count"]
    model.eval()
    with torch.no_grad():
        out = model(case["x"], case["timesteps"], case.get("y"))
    torch.testing.assert_close(out, case["output"], **NETWORK)


@pytest.mark.parametrize("name", sorted(GRADS["cases"]))
def test_official_gradients(name):
    case = GRADS["cases"][name]
    model = UNetModel(**as_constructor_kwargs(case["unet_kwargs"]))
    set_fused(randomize_parameters(model, case["param_seed"]), False)
    # The parameters are seeded torch.randn draws, which may round RANDN_ULPS apart on another CPU; each
    # parameter moves by at most RANDN_ULPS + 1 ulps (1 + 0.1 N rounds once more), so the sum by that
    # share of sum |p|. A drifted seed, order or formula moves it by ~1e-3 of sum |p|.
    params = [p.detach().double() for p in model.parameters()]
    param_sum = sum(p.sum() for p in params).item()
    slack = (RANDN_ULPS + 1) * 2.0**-23 * sum(p.abs().sum() for p in params).item()
    assert param_sum == pytest.approx(case["param_sum"], rel=1e-12, abs=slack), "randomize_parameters drifted"
    x = case["x"].clone().requires_grad_()
    out = model(x, case["timesteps"], case["y"])
    torch.testing.assert_close(out, case["output"], **NETWORK)
    params = dict(model.named_parameters())
    names = sorted(case["grad_params"])
    grads = torch.autograd.grad(out, [x] + [params[n] for n in names], case["grad_out"])
    torch.testing.assert_close(grads[0], case["grad_x"], **NETWORK)
    tol = network_tol_on_gradient_scale(case["grad_params"].values())
    for n, grad in zip(names, grads[1:]):
        torch.testing.assert_close(grad, case["grad_params"][n], **tol, msg=lambda m, n=n: f"{n}: {m}")


def test_sdpa_equals_math_backend_forward_and_backward():
    math_model = tiny_unet(attention_backend=AttentionBackend.MATH)
    sdpa_model = tiny_unet(attention_backend=AttentionBackend.SDPA)
    sdpa_model.load_state_dict(math_model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    t = torch.tensor([1.0, 500.5])
    outs, grads = [], []
    for model in (math_model, sdpa_model):
        out = model(x, t)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), list(model.parameters())))
    assert_close(outs[1], outs[0])
    for g_sdpa, g_math in zip(grads[1], grads[0]):
        assert_close(g_sdpa, g_math, **NETWORK)


@pytest.mark.parametrize("class_cond", [False, True], ids=["uncond", "class_cond"])
@pytest.mark.parametrize("learn_sigma", [False, True], ids=["fixed_sigma", "learn_sigma"])
def test_create_model_shapes(class_cond, learn_sigma):
    model = create_model(16, 32, 1, learn_sigma, class_cond, False, "8", 2, -1, True, 0.0, num_classes=10)
    set_fused(model, False)
    assert model.channel_mult == (1, 2, 2)
    assert model.attention_resolutions == (2,)
    assert hasattr(model, "label_emb") == class_cond
    y = torch.tensor([0, 9, 3]) if class_cond else None
    out = model(torch.randn(3, 3, 16, 16), torch.tensor([0, 10, 999]), y)
    assert out.shape == (3, 6 if learn_sigma else 3, 16, 16)


def test_class_labels_change_the_output():
    model = tiny_unet(num_classes=3)
    x, t = torch.randn(1, 3, 4, 4).expand(3, -1, -1, -1), torch.full((3,), 10.0)
    out = model(x, t, torch.tensor([0, 1, 2]))
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])


def test_official_cifar10_config_state_dict():
    expected = json.loads((HERE / "iddpm_cifar10_state_dict.json").read_text())
    with torch.device("meta"):
        model = create_model(32, 128, 3, True, False, False, "16,8", 4, -1, True, 0.3)
    assert sum(p.numel() for p in model.parameters()) == expected["param_count"] == 52_546_438
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == expected["state_dict_shapes"]


def test_build_unet_equals_create_model():
    config = UNetConfig(image_size=32, num_channels=32, num_res_blocks=1, learn_sigma=True, attention_resolutions=(8,))
    a, b = build_unet(config), create_model(32, 32, 1, True, False, False, "8", 4, -1, True, 0.0)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    assert a.attention_resolutions == (4,) and a.out_channels == 6 and a.channel_mult == (1, 2, 2, 2)
    override = build_unet(dataclasses.replace(config, channel_mult=(1, 2)))
    assert override.channel_mult == (1, 2)


def test_gradient_checkpointing_gives_the_same_gradients():
    """Bit-identical gradients with dropout on: the recomputation replays the same dropout masks."""
    plain = tiny_unet(dropout=0.3, num_classes=2).train()
    checkpointed = tiny_unet(dropout=0.3, num_classes=2, use_checkpoint=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x, t, y = torch.randn(2, 3, 4, 4), torch.tensor([3.0, 700.0]), torch.tensor([0, 1])
    calls = []
    checkpointed.middle_block[0].in_layers.register_forward_hook(lambda *_: calls.append(1))
    grads = []
    for model in (plain, checkpointed):
        torch.manual_seed(123)
        xr = x.clone().requires_grad_()
        loss = model(xr, t, y).square().mean()
        grads.append(torch.autograd.grad(loss, [xr] + list(model.parameters())))
    assert len(calls) == 2, "the checkpointed ResBlock should run again in backward"
    for g_ckpt, g_plain in zip(grads[1], grads[0]):
        torch.testing.assert_close(g_ckpt, g_plain, rtol=0, atol=0)


@pytest.mark.parametrize("dims,shape", [(1, (2, 3, 8)), (3, (1, 3, 2, 4, 4))], ids=["dims1", "dims3"])
def test_other_dims_run(dims, shape):
    model = tiny_unet(dims=dims, conv_resample=False)
    out = model(torch.randn(shape), torch.tensor([5.0] * shape[0]))
    assert out.shape == (shape[0], 6, *shape[2:])
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_autocast(dtype):
    model = tiny_unet()
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([3.0, 400.0])
    reference = model(x, t)
    with torch.autocast("cpu", dtype=dtype):
        out = model(x, t)
    assert out.dtype == dtype
    # Half precision through ~20 layers: the error grows well past one rounding, so compare
    # on the output's scale with a few percent (a wrong fp32 path or a mixed-up cast is O(1)).
    torch.testing.assert_close(out.float(), reference, rtol=0, atol=0.05 * reference.abs().max().item())


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: m(torch.randn(1, 4, 8, 8), torch.zeros(1)), "in_channels=3"),
        (lambda m: m(torch.randn(1, 3, 5, 8), torch.zeros(1)), "divisible by 2"),
        (lambda m: m(torch.randn(1, 3, 8), torch.zeros(1)), "shape"),
        (lambda m: m(torch.randn(2, 3, 8, 8), torch.zeros(3)), "timesteps must have shape"),
        (lambda m: m(torch.randn(2, 3, 8, 8), torch.zeros(2), torch.tensor([0, 1])), "class-conditional"),
    ],
    ids=["wrong_channels", "indivisible_size", "wrong_rank", "timesteps_length", "unexpected_labels"],
)
def test_bad_forward_input(call, message):
    with pytest.raises(ValueError, match=message):
        call(tiny_unet())


def test_missing_labels_for_class_conditional_model():
    with pytest.raises(ValueError, match="class-conditional"):
        tiny_unet(num_classes=3)(torch.randn(1, 3, 8, 8), torch.zeros(1))


@pytest.mark.parametrize(
    "build,error,message",
    [
        (lambda: tiny_unet(num_heads=3), ValueError, "divisible by num_heads"),
        (lambda: tiny_unet(dims=4), ValueError, "dims must be 1, 2 or 3"),
        (lambda: tiny_unet(channel_mult=()), ValueError, "channel_mult"),
        (lambda: tiny_unet(model_channels=0), ValueError, "model_channels"),
        (lambda: create_model(48, 32, 1, True, False, False, "8", 4, -1, True, 0.0), ValueError, "unsupported image size"),
        (lambda: create_model(32, 32, 1, True, False, False, "8,x", 4, -1, True, 0.0), ValueError, "comma-separated"),
        (lambda: create_model(32, 32, 1, True, False, False, "12", 4, -1, True, 0.0), ValueError, "does not divide"),
        (lambda: UNetConfig(attention_resolutions="16,8"), TypeError, "tuple of ints"),
        (lambda: UNetConfig(image_size=20, attention_resolutions=(), channel_mult=(1, 2, 2, 2)), ValueError, "divisible by 8"),
        (lambda: build_unet({"image_size": 32}), TypeError, "UNetConfig"),
    ],
    ids=["heads", "dims", "empty_mult", "zero_channels", "image_size", "attention_string", "attention_res", "config_string",
         "config_image_size", "not_config"],
)
def test_bad_construction(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_parse_attention_resolutions():
    assert parse_attention_resolutions("16,8") == (16, 8)
    assert parse_attention_resolutions([8]) == (8,)


def test_the_config_module_does_not_import_the_network():
    """One arrow: ddx.models.unet imports unet_config (and re-exports UNetConfig with its builders), never back."""
    tree = ast.parse(inspect.getsource(unet_config))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "ddx.models.unet" not in imported and "ddx.models" not in imported
    assert unet.UNetConfig is unet_config.UNetConfig
    assert unet.parse_attention_resolutions is unet_config.parse_attention_resolutions
