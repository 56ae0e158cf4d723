"""The IDDPM sampling loops: chaining of the single steps, injected noise, determinism, respaced loops."""

import pytest
import torch

from ddx.diffusion import create_gaussian_diffusion
from iddpm_cases import PATHS, assert_close

SHAPE = (3, 2, 5, 1)  # odd and size-1 dims


class LinearModel:
    """A small deterministic stand-in model: eps = 0.5 x (+ variance channels in [-1, 1]), records timesteps."""

    def __init__(self, learn_sigma):
        self.learn_sigma = learn_sigma
        self.received_t = []

    def __call__(self, x, t, **kwargs):
        self.received_t.append(t)
        eps = 0.5 * x
        return torch.cat([eps, torch.tanh(x)], dim=1) if self.learn_sigma else eps


def make(path, learn_sigma=True, respacing=""):
    return create_gaussian_diffusion(
        steps=20, learn_sigma=learn_sigma, noise_schedule="cosine", rescale_timesteps=True,
        rescale_learned_sigmas=True, timestep_respacing=respacing, fused=path == "fused",
    )


@pytest.mark.parametrize("learn_sigma", [True, False], ids=["learned_range", "fixed_large"])
@pytest.mark.parametrize("path", PATHS)
def test_p_sample_loop_chains_p_sample(path, learn_sigma):
    diffusion = make(path, learn_sigma)
    gen = torch.Generator().manual_seed(1)
    x_T = torch.randn(SHAPE, generator=gen)
    step_noises = torch.randn((diffusion.num_timesteps, *SHAPE), generator=gen)
    outs = list(diffusion.p_sample_loop_progressive(LinearModel(learn_sigma), SHAPE, noise=x_T, step_noises=step_noises))
    assert len(outs) == diffusion.num_timesteps
    x = x_T
    for k, i in enumerate(reversed(range(diffusion.num_timesteps))):
        t = torch.full((SHAPE[0],), i, dtype=torch.int64)
        x = diffusion.p_sample(LinearModel(learn_sigma), x, t, noise=step_noises[k])["sample"]
        assert_close(outs[k]["sample"], x)
    final = diffusion.p_sample_loop(LinearModel(learn_sigma), SHAPE, noise=x_T, step_noises=step_noises)
    assert_close(final, x)
    assert torch.isfinite(final).all()


@pytest.mark.parametrize("path", PATHS)
def test_loops_with_a_generator_are_reproducible(path):
    diffusion = make(path)
    runs = [
        diffusion.p_sample_loop(LinearModel(True), SHAPE, generator=torch.Generator().manual_seed(5)) for _ in range(2)
    ]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    other = diffusion.p_sample_loop(LinearModel(True), SHAPE, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(runs[0], other)


@pytest.mark.parametrize("path", PATHS)
def test_ddim_loop_eta0_is_deterministic_and_chains_ddim_sample(path):
    diffusion = make(path)
    x_T = torch.randn(SHAPE)
    first = diffusion.ddim_sample_loop(LinearModel(True), SHAPE, noise=x_T, eta=0.0)
    second = diffusion.ddim_sample_loop(LinearModel(True), SHAPE, noise=x_T, eta=0.0, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    x = x_T
    for i in reversed(range(diffusion.num_timesteps)):
        x = diffusion.ddim_sample(LinearModel(True), x, torch.full((SHAPE[0],), i), eta=0.0)["sample"]
    assert_close(first, x)


@pytest.mark.parametrize("path", PATHS)
def test_ddim_reverse_then_forward_roughly_inverts(path):
    """The DDIM ODE run backwards then forwards returns near its start for a smooth eps model."""
    diffusion = make(path, respacing="ddim10")
    x0 = torch.rand(SHAPE) * 0.2 - 0.1
    x = x0
    for i in range(diffusion.num_timesteps - 1):
        x = diffusion.ddim_reverse_sample(LinearModel(True), x, torch.full((SHAPE[0],), i), clip_denoised=False)["sample"]
    for i in reversed(range(diffusion.num_timesteps - 1)):
        x = diffusion.ddim_sample(LinearModel(True), x, torch.full((SHAPE[0],), i + 1), clip_denoised=False)["sample"]
    assert (x - x0).abs().max() < 0.05


def test_respaced_loop_calls_the_model_with_original_timesteps():
    diffusion = make("eager", respacing="ddim5")
    model = LinearModel(True)
    diffusion.ddim_sample_loop(model, SHAPE, noise=torch.randn(SHAPE))
    expected = [float(i) * 1000.0 / 20 for i in (16, 12, 8, 4, 0)]
    assert [t[0].item() for t in model.received_t] == expected


def test_progress_reports_every_step(capfd):
    diffusion = make("eager")
    diffusion.p_sample_loop(LinearModel(True), SHAPE, noise=torch.randn(SHAPE), progress=True)
    err = capfd.readouterr().err
    assert "20/20" in err


def test_bad_loop_inputs_raise():
    diffusion = make("eager")
    with pytest.raises(TypeError, match="shape must be a tuple or list"):
        diffusion.p_sample_loop(LinearModel(True), torch.Size(SHAPE).numel())
    with pytest.raises(ValueError, match="step_noises must have shape"):
        diffusion.ddim_sample_loop(LinearModel(True), SHAPE, step_noises=torch.zeros(3, *SHAPE))
