"""IDDPM beta schedules, diffusion arrays and respacing against the official values (iddpm_schedules.pt)."""

import dataclasses

import numpy as np
import pytest
import torch

from ddx.diffusion import (
    ARRAY_NAMES,
    BetaSchedule,
    DiffusionConfig,
    GaussianDiffusion,
    LossType,
    ModelMeanType,
    ModelVarType,
    SpacedDiffusion,
    create_gaussian_diffusion,
    get_named_beta_schedule,
    space_timesteps,
)
from iddpm_cases import PATHS, FixedModel, assert_close, load
from tests.tolerances import DIFFUSION, FLOAT64_SCHEDULE

FIXTURE = load("iddpm_schedules")
HYBRID = dict(model_mean_type=ModelMeanType.EPSILON, model_var_type=ModelVarType.LEARNED_RANGE, loss_type=LossType.RESCALED_MSE)


def assert_arrays(diffusion, expected):
    for name in ARRAY_NAMES:
        actual = torch.from_numpy(getattr(diffusion, name))
        assert actual.dtype == torch.float64, name
        assert_close(actual, expected[name], FLOAT64_SCHEDULE)


@pytest.mark.parametrize("case", FIXTURE["named_beta_schedules"], ids=lambda c: f"{c['schedule']}-T{c['T']}")
def test_named_beta_schedule(case):
    betas = get_named_beta_schedule(case["schedule"], case["T"])
    assert betas.dtype == np.float64
    assert_close(torch.from_numpy(betas), case["betas"], FLOAT64_SCHEDULE)
    assert_close(torch.from_numpy(get_named_beta_schedule(BetaSchedule(case["schedule"]), case["T"])), case["betas"], FLOAT64_SCHEDULE)


def test_cosine_schedule_is_clipped_at_0999():
    betas = get_named_beta_schedule("cosine", 50)
    assert betas.max() == 0.999 and (betas > 0).all()


@pytest.mark.parametrize("case", FIXTURE["diffusion"], ids=lambda c: f"{c['schedule']}-T{c['T']}")
def test_gaussian_diffusion_arrays(case):
    diffusion = GaussianDiffusion(betas=get_named_beta_schedule(case["schedule"], case["T"]), rescale_timesteps=True, **HYBRID)
    assert diffusion.num_timesteps == case["num_timesteps"]
    assert_arrays(diffusion, case)


@pytest.mark.parametrize("name", ["betas", "alphas_cumprod", "posterior_mean_coef1", "log_one_minus_alphas_cumprod"])
@pytest.mark.parametrize("index", [0, 500, -1], ids=["first", "middle", "last"])
def test_array_comparison_catches_a_1e_4_relative_error(name, index):
    """FLOAT64_SCHEDULE is no blanket: one array entry 1e-4 off (relative) fails assert_arrays."""
    case = FIXTURE["diffusion"][0]
    diffusion = GaussianDiffusion(betas=get_named_beta_schedule(case["schedule"], case["T"]), rescale_timesteps=True, **HYBRID)
    assert_arrays(diffusion, case)
    getattr(diffusion, name)[index] *= 1 + 1e-4
    with pytest.raises(AssertionError):
        assert_arrays(diffusion, case)


@pytest.mark.parametrize("case", FIXTURE["diffusion"], ids=lambda c: f"{c['schedule']}-T{c['T']}")
def test_create_gaussian_diffusion_rederives_betas(case):
    diffusion = create_gaussian_diffusion(
        steps=case["T"], learn_sigma=True, noise_schedule=case["schedule"], rescale_timesteps=True, rescale_learned_sigmas=True
    )
    expected = case["via_create_gaussian_diffusion"]
    assert_arrays(diffusion, expected)
    assert diffusion.timestep_map == expected["timestep_map"]
    assert (diffusion.model_mean_type, diffusion.model_var_type, diffusion.loss_type) == tuple(HYBRID.values())


@pytest.mark.parametrize("case", FIXTURE["space_timesteps"], ids=lambda c: f"T{c['num_timesteps']}-{c['section_counts']}")
def test_space_timesteps(case):
    assert sorted(space_timesteps(case["num_timesteps"], case["section_counts"])) == case["use_timesteps"]


RESPACED = [
    pytest.param(case, schedule, id=f"T{case['num_timesteps']}-{case['section_counts']}-{schedule}")
    for case in FIXTURE["space_timesteps"]
    for schedule in sorted(case["respaced"])
]


@pytest.mark.parametrize("case, schedule", RESPACED)
def test_respaced_diffusion_arrays(case, schedule):
    expected = case["respaced"][schedule]
    diffusion = SpacedDiffusion(
        case["use_timesteps"], betas=get_named_beta_schedule(schedule, case["num_timesteps"]), rescale_timesteps=True, **HYBRID
    )
    assert_arrays(diffusion, expected)
    assert diffusion.timestep_map == expected["timestep_map"]
    assert diffusion.original_num_steps == expected["original_num_steps"]
    assert diffusion.num_timesteps == expected["num_timesteps"]


@pytest.mark.parametrize("path", PATHS)
def test_spaced_model_call(path):
    case = FIXTURE["spaced_model_call"]
    diffusion = create_gaussian_diffusion(
        steps=case["T"], learn_sigma=True, noise_schedule=case["schedule"], rescale_timesteps=True,
        rescale_learned_sigmas=True, timestep_respacing=case["spacing"], fused=path == "fused",
    )
    model = FixedModel(case["model_output"])
    out = diffusion.p_mean_variance(model, case["x"], case["t"], clip_denoised=True)
    (received,) = model.received_t
    assert received.dtype == torch.float32
    torch.testing.assert_close(received, case["model_received_t"], rtol=0, atol=0)
    for key, value in case["p_mean_variance"].items():
        assert_close(out[key], value, DIFFUSION)


def test_spaced_model_without_rescale_gets_original_indices():
    diffusion = create_gaussian_diffusion(steps=100, timestep_respacing="ddim10")
    model = FixedModel(torch.zeros(2, 3, 2, 2))
    diffusion.p_mean_variance(model, torch.zeros(2, 3, 2, 2), torch.tensor([0, 9]))
    assert model.received_t[0].tolist() == [0, 90] and model.received_t[0].dtype == torch.int64


def test_diffusion_config_builds_the_official_factory_choices():
    config = DiffusionConfig(steps=100, sigma_small=True, noise_schedule="cosine", use_kl=True, predict_xstart=True)
    assert config.noise_schedule is BetaSchedule.COSINE
    diffusion = config.build(fused=False)
    assert (diffusion.model_mean_type, diffusion.model_var_type, diffusion.loss_type) == (
        ModelMeanType.START_X, ModelVarType.FIXED_SMALL, LossType.RESCALED_KL,
    )
    assert not diffusion.fused
    assert DiffusionConfig(steps=100).build().model_var_type is ModelVarType.FIXED_LARGE
    assert DiffusionConfig(steps=300, timestep_respacing=[10, 15, 20]).build().num_timesteps == 45
    assert DiffusionConfig(steps=100).loss_type is LossType.MSE
    assert DiffusionConfig(steps=100, learn_sigma=True, rescale_learned_sigmas=True).loss_type is LossType.RESCALED_MSE
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 10
    with pytest.raises(ValueError, match="unknown noise_schedule"):
        DiffusionConfig(noise_schedule="sigmoid")


def test_float32_tables_are_cached_per_device():
    diffusion = create_gaussian_diffusion(steps=100)
    table = diffusion.table("sqrt_alphas_cumprod", "cpu")
    assert table.dtype == torch.float32 and table.shape == (100,)
    assert diffusion.table("sqrt_alphas_cumprod", torch.device("cpu")) is table
    # Rounded once from float64, as the official _extract_into_tensor rounds each indexed value.
    torch.testing.assert_close(table, torch.from_numpy(diffusion.sqrt_alphas_cumprod).float(), rtol=0, atol=0)


@pytest.mark.parametrize(
    "name, steps, error, match",
    [
        ("sigmoid", 10, ValueError, "unknown beta schedule"),
        ("cosine", 0, ValueError, "positive int"),
        ("linear", 10, ValueError, r"betas must lie in \(0, 1\]"),
    ],
    ids=["unknown-name", "zero-steps", "linear-too-few-steps"],
)
def test_bad_schedules_raise(name, steps, error, match):
    with pytest.raises(error, match=match):
        GaussianDiffusion(betas=get_named_beta_schedule(name, steps), **HYBRID)


@pytest.mark.parametrize(
    "num_timesteps, counts, match",
    [
        (1000, "ddim600", "cannot create exactly 600 steps with an integer stride"),
        (10, "ddim11", "cannot create exactly 11 steps"),
        (300, "10,150,20", "cannot divide section of 100 steps into 150"),
        (100, "ddimx", "integer N"),
        (100, "10,a", "comma-separated integers"),
        (100, [5, -1], "non-negative"),
    ],
    ids=["ddim-no-stride", "ddim-too-many", "section-too-small", "ddim-not-int", "not-int", "negative"],
)
def test_impossible_respacing_raises(num_timesteps, counts, match):
    with pytest.raises(ValueError, match=match):
        space_timesteps(num_timesteps, counts)


def test_bad_options_raise():
    betas = get_named_beta_schedule("cosine", 10)
    with pytest.raises(ValueError, match="unknown model_mean_type"):
        GaussianDiffusion(betas=betas, model_mean_type="noise", model_var_type="learned_range", loss_type="mse")
    with pytest.raises(ValueError, match="use_timesteps must lie in"):
        SpacedDiffusion([0, 10], betas=betas, **HYBRID)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        GaussianDiffusion(betas=np.zeros((2, 2)), **HYBRID)
