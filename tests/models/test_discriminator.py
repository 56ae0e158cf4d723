"""DDGAN's time-conditioned discriminators against the official code.

Fixture: ddgan_disc.pt (tests/fixtures/; for every stored case, the official
discriminator's output and R1 input gradient, built from the case's class and kwargs, state_dict
loaded with strict=True). The parameter counts of the published recipes were computed by the
official modules (NVlabs/denoising-diffusion-gan @ 6818ded) imported from a scratch copy outside
the repo.
"""

import pytest
import torch

from ddx.models.discriminator import Discriminator_large, Discriminator_small, minibatch_stddev
from ddx.ops import set_fused
from tests.models.model_helpers import load_fixture, randomize_parameters
from tests.tolerances import NETWORK, assert_close

DISC = load_fixture("ddgan_disc.pt")


def r1_terms(model, x_t, t, x_tp1):
    """Output, the R1 input gradient (create_graph) and the parameter gradients of its squared norm."""
    x_t = x_t.clone().requires_grad_(True)
    out = model(x_t, t, x_tp1)
    (grad,) = torch.autograd.grad(out.sum(), x_t, create_graph=True)
    params = [p for p in model.parameters() if p.requires_grad]
    second = torch.autograd.grad(grad.pow(2).sum(), params, allow_unused=True)
    return out.detach(), grad.detach(), second


# The fixture names each case's class by its official dotted path and passes act as an instance
# (stored as its repr); ddx's classes keep the official names and take the same kwargs.
DISCRIMINATORS = {cls.__name__: cls for cls in (Discriminator_small, Discriminator_large)}
ACTIVATIONS = {"torch.nn.LeakyReLU(0.2)": lambda: torch.nn.LeakyReLU(0.2)}


def build_from_case(case):
    """The ddx discriminator a fixture case describes (class and kwargs as stored)."""
    name = case["class"].rsplit(".", 1)[-1]
    if name not in DISCRIMINATORS:
        raise KeyError(f"fixture case uses {case['class']}, which ddx does not map")
    kwargs = dict(case["kwargs"])
    if "act" in kwargs:
        kwargs["act"] = ACTIVATIONS[kwargs["act"]]()
    return DISCRIMINATORS[name](**kwargs)


@pytest.mark.parametrize("name", sorted(DISC["cases"]))
def test_fixture_output_and_input_gradient(name):
    case = DISC["cases"][name]
    model = set_fused(build_from_case(case), False).eval()
    model.load_state_dict(case["state_dict"], strict=True)
    assert list(model.state_dict()) == list(case["state_dict"])
    assert sum(p.numel() for p in model.parameters()) == case["param_count"]
    x_t = case["x_t"].clone().requires_grad_(True)
    out = model(x_t, case["t"], case["x_tp1"])
    (grad,) = torch.autograd.grad(out.sum(), x_t)
    assert_close(out, case["output"], **NETWORK)
    assert_close(grad, case["grad_x_t_of_output_sum"], **NETWORK)


# The published recipes: CIFAR-10 uses Discriminator_small (nc = 2 * 3, ngf 64, t_emb_dim 256),
# CelebA-HQ 256 Discriminator_large with the same arguments.
@pytest.mark.parametrize(
    "cls,count",
    [pytest.param(Discriminator_small, 12_741_633, id="small-cifar10"),
     pytest.param(Discriminator_large, 27_737_217, id="large-celebahq256")],
)
def test_official_recipe_parameter_count(cls, count):
    with torch.device("meta"):
        model = cls(nc=6, ngf=64, t_emb_dim=256)
    assert sum(p.numel() for p in model.parameters()) == count


def tiny_pair(batch, size, seed=12):
    gen = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, 1, size, size, generator=gen)
    x_tp1 = torch.randn(batch, 1, size, size, generator=gen)
    return x_t, torch.arange(batch) % 4, x_tp1


def test_fused_path_equals_reference_path():
    """Output, R1 gradient and its parameter gradients (double backward through the Triton upfirdn2d)."""
    model = randomize_parameters(Discriminator_small(nc=2, ngf=1, t_emb_dim=8), 11)
    inputs = tiny_pair(batch=4, size=8)
    fused = r1_terms(set_fused(model, True), *inputs)
    eager = r1_terms(set_fused(model, False), *inputs)
    assert fused[0].shape == (4, 1)
    assert_close(fused[0], eager[0], **NETWORK)
    assert_close(fused[1], eager[1], **NETWORK)
    for a, b in zip(fused[2], eager[2]):
        assert (a is None) == (b is None)
        if a is not None:
            assert_close(a, b, **NETWORK)


def test_large_runs_r1_on_64px():
    """Six /2 blocks take 64 px to 1 px; the R1 double backward reaches the weights through all of them."""
    model = set_fused(randomize_parameters(Discriminator_large(nc=2, ngf=1, t_emb_dim=8), 13), False)
    out, grad, second = r1_terms(model, *tiny_pair(batch=2, size=64))
    assert out.shape == (2, 1) and grad.shape == (2, 1, 64, 64)
    # Biases that only move LeakyReLU kinks get no second-order gradient; the weights on the input path do.
    reached = {name: g for (name, _), g in zip(model.named_parameters(), second) if g is not None}
    assert all(torch.isfinite(g).all() for g in reached.values())
    for name in ("start_conv.weight", "conv1.conv1.0.weight", "conv6.skip.0.weight", "t_embed.main.0.weight"):
        assert reached[name].abs().sum() > 0, name


@pytest.mark.parametrize("batch", [1, 2, 3, 4, 8, 12])
def test_minibatch_stddev_groups(batch):
    x = torch.randn(batch, 5, 2, 3)
    out = minibatch_stddev(x)
    group = min(batch, 4)
    assert out.shape == (batch, 6, 2, 3)
    assert torch.equal(out[:, :5], x)
    # sample i is grouped with samples i + k * (batch / group)
    members = x.reshape(group, -1, 5, 2, 3)
    expected = torch.sqrt(members.var(0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))
    assert_close(out[:, 5, 0, 0], expected.repeat(group))


@pytest.mark.parametrize("batch", [5, 6, 7])
def test_minibatch_stddev_rejects_indivisible_batch(batch):
    model = set_fused(Discriminator_small(nc=2, ngf=1, t_emb_dim=8), False)
    x = torch.randn(batch, 1, 8, 8)
    with pytest.raises(ValueError, match="divisible by its group size"):
        model(x, torch.zeros(batch, dtype=torch.int64), x)


@pytest.mark.parametrize(
    "x_t_shape,x_tp1_shape,t_len,match",
    [
        pytest.param((2, 1, 8, 8), (2, 1, 8, 4), 2, "one shape", id="pair-mismatch"),
        pytest.param((2, 2, 8, 8), (2, 2, 8, 8), 2, "nc=2", id="channels"),
        pytest.param((2, 1, 8, 8), (2, 1, 8, 8), 3, "t must be", id="t-length"),
    ],
)
def test_bad_inputs(x_t_shape, x_tp1_shape, t_len, match):
    model = set_fused(Discriminator_small(nc=2, ngf=1, t_emb_dim=8), False)
    with pytest.raises(ValueError, match=match):
        model(torch.randn(x_t_shape), torch.zeros(t_len, dtype=torch.int64), torch.randn(x_tp1_shape))
