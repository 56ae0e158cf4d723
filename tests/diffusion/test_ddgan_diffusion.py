"""DDGAN's schedules, coefficients and posterior sampling against the official outputs (ddgan_coeffs.pt)."""

import pathlib

import pytest
import torch

from ddx.diffusion import ddgan
from tests.tolerances import DIFFUSION, FLOAT64_SCHEDULE, RANDN_ULPS, SCHEDULE_ULPS, assert_close_ulps

FIXTURE = torch.load(pathlib.Path(__file__).parents[1] / "fixtures" / "ddgan_coeffs.pt", weights_only=True)


def config_of(block):
    args = FIXTURE[block]["args"]
    return ddgan.DDGANDiffusionConfig(args["num_timesteps"], args["beta_min"], args["beta_max"], args["use_geometric"])


BLOCKS = [name for name in FIXTURE if "args" in FIXTURE[name]]


def official_gives_nan(block):
    return any(torch.isnan(v).any() for v in FIXTURE[block]["Diffusion_Coefficients"].values())


def assert_schedule_matches(sigma_schedule, expected):
    """(sigmas, a_s, betas) against the fixture's get_sigma_schedule: within SCHEDULE_ULPS."""
    for name, value in zip(("sigmas", "a_s", "betas"), sigma_schedule):
        assert_close_ulps(value, expected[name], SCHEDULE_ULPS, msg=name)


def assert_coefficients_match(coefficients, expected):
    """A DiffusionCoefficients or PosteriorCoefficients against the fixture's tables of the same names."""
    for name, value in expected.items():
        torch.testing.assert_close(getattr(coefficients, name), value, **DIFFUSION, msg=name)


@pytest.mark.parametrize("block", BLOCKS)
def test_schedules_and_coefficients_match_official(block):
    config, expected = config_of(block), FIXTURE[block]
    t = ddgan.get_time_schedule(config.num_timesteps)
    # arange / T * (1 - eps) + eps: IEEE operations on the same inputs, the same bits everywhere.
    torch.testing.assert_close(t, expected["get_time_schedule"], rtol=0, atol=0)
    torch.testing.assert_close(
        ddgan.var_func_vp(t, config.beta_min, config.beta_max), expected["var_func_vp_of_time_schedule"], **FLOAT64_SCHEDULE
    )
    torch.testing.assert_close(
        ddgan.var_func_geometric(t, config.beta_min, config.beta_max), expected["var_func_geometric_of_time_schedule"],
        **FLOAT64_SCHEDULE,
    )
    if official_gives_nan(block):
        # A geometric schedule with a variance >= 1 (geometric_requested with beta_max >= 1): the official
        # code returns NaN coefficients from negative alpha_bars; ddx refuses the config instead.
        with pytest.raises(ValueError, match="negative alpha_bars"):
            ddgan.get_sigma_schedule(config)
        return
    assert_schedule_matches(ddgan.get_sigma_schedule(config), expected["get_sigma_schedule"])
    assert_coefficients_match(ddgan.DiffusionCoefficients(config), expected["Diffusion_Coefficients"])
    assert_coefficients_match(ddgan.PosteriorCoefficients(config), expected["Posterior_Coefficients"])


def perturbed(tensor, index, relative=1e-4):
    """A copy of `tensor` with one entry moved by `relative` of itself (a real, small mismatch)."""
    out = tensor.clone()
    out[index] = out[index] * (1 + relative)
    return out


@pytest.mark.parametrize("name", ["sigmas", "a_s", "betas"])
def test_schedule_comparison_catches_a_1e_4_relative_error(name):
    """The ulp bound of the schedule tables is no blanket: one entry 1e-4 off (~840 ulps) fails it."""
    schedule = dict(zip(("sigmas", "a_s", "betas"), ddgan.get_sigma_schedule(config_of("vp"))))
    expected = FIXTURE["vp"]["get_sigma_schedule"]
    schedule[name] = perturbed(schedule[name], 2)
    with pytest.raises(AssertionError, match=name):
        assert_schedule_matches([schedule[key] for key in ("sigmas", "a_s", "betas")], expected)


@pytest.mark.parametrize(
    "table, name",
    [("Diffusion_Coefficients", "sigmas_cum"), ("Posterior_Coefficients", "posterior_mean_coef2"),
     ("Posterior_Coefficients", "sqrt_recipm1_alphas_cumprod")],
)
def test_coefficient_comparison_catches_a_1e_4_relative_error(table, name):
    config = config_of("geometric_valid")
    coefficients = (ddgan.DiffusionCoefficients if table == "Diffusion_Coefficients" else ddgan.PosteriorCoefficients)(config)
    assert_coefficients_match(coefficients, FIXTURE["geometric_valid"][table])
    setattr(coefficients, name, perturbed(getattr(coefficients, name), 1))
    with pytest.raises(AssertionError, match=name):
        assert_coefficients_match(coefficients, FIXTURE["geometric_valid"][table])


@pytest.mark.parametrize("bad", [dict(num_timesteps=0), dict(beta_min=0.0), dict(beta_min=2.0, beta_max=1.0)], ids=str)
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        ddgan.DDGANDiffusionConfig(**bad)


@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
def test_q_sample_and_pairs_match_official(fused):
    coeff = ddgan.DiffusionCoefficients(config_of("vp"), fused=fused)
    case = FIXTURE["q_sample"]
    out = ddgan.q_sample(coeff, case["x_start"], case["t"], noise=case["noise"])
    torch.testing.assert_close(out, case["out"], **DIFFUSION)
    pairs = FIXTURE["q_sample_pairs"]
    x_t, x_tp1 = ddgan.q_sample_pairs(
        coeff, pairs["x_start"], pairs["t"], noise=pairs["noise_second_draw_used_for_x_t"],
        noise_next=pairs["noise_first_draw_used_for_x_tp1"],
    )
    torch.testing.assert_close(x_t, pairs["x_t"], **DIFFUSION)
    torch.testing.assert_close(x_tp1, pairs["x_tp1"], **DIFFUSION)


def test_q_sample_pairs_draws_noise_in_the_official_order():
    coeff = ddgan.DiffusionCoefficients(config_of("vp"), fused=False)
    pairs = FIXTURE["q_sample_pairs"]
    torch.manual_seed(pairs["torch_manual_seed"])
    x_t, x_tp1 = ddgan.q_sample_pairs(coeff, pairs["x_start"], pairs["t"])
    torch.testing.assert_close(x_t, pairs["x_t"], **DIFFUSION)
    torch.testing.assert_close(x_tp1, pairs["x_tp1"], **DIFFUSION)


@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
def test_sample_posterior_matches_official(fused):
    coeff = ddgan.PosteriorCoefficients(config_of("vp"), fused=fused)
    case = FIXTURE["sample_posterior"]
    out = ddgan.sample_posterior(coeff, case["x_0"], case["x_t"], case["t"], noise=case["noise"])
    torch.testing.assert_close(out, case["out"], **DIFFUSION)


class StandInGenerator(torch.nn.Module):
    """The fixture harness's deterministic generator (its formula is stored with the fixture)."""

    def __init__(self, spec):
        super().__init__()
        self.A, self.Wz, self.c = spec["A"], spec["Wz"], spec["c"]

    def forward(self, x_t, t, z):
        mixed = torch.einsum("oc,bchw->bohw", self.A, x_t)
        return torch.tanh(mixed + (z @ self.Wz)[:, :, None, None] + self.c * t.float()[:, None, None, None])


# Seeded draws reproduce the official ones only on the eager path: torch.randn_like follows the
# strides of x, and the official loop's x inherits the stand-in generator's einsum layout, which the
# fused kernel (contiguous output) does not. The fused path is checked with the stored draws replayed.
@pytest.mark.parametrize(
    "fused, replay", [(False, False), (False, True), (True, True)], ids=["reference-seeded", "reference-replayed", "fused-replayed"]
)
def test_sample_from_model_matches_official(fused, replay):
    case = FIXTURE["sample_from_model"]
    coeff = ddgan.PosteriorCoefficients(config_of("vp"), fused=fused)
    seen = []
    stand_in = StandInGenerator(case["generator"])

    def generator(x, t, z):
        seen.append((x.clone(), z.clone(), int(t[0])))
        return stand_in(x, t, z)

    torch.manual_seed(case["torch_manual_seed"])
    draws = dict(latents=case["latents"], noises=case["noises"]) if replay else {}
    out = ddgan.sample_from_model(coeff, generator, case["n_time"], case["x_init"], case["nz"], **draws)
    assert [step for _, _, step in seen] == list(case["step_t"])
    for i, (x, z, _) in enumerate(seen):
        if replay:
            torch.testing.assert_close(z, case["latents"][i], rtol=0, atol=0)  # a copy of the stored draw
        else:
            assert_close_ulps(z, case["latents"][i], RANDN_ULPS, msg=f"latent {i}")
        torch.testing.assert_close(x, case["per_step_x_t"][i], **DIFFUSION)
    torch.testing.assert_close(out, case["out"], **DIFFUSION)
