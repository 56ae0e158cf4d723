"""kernels.vb_terms_bpd against kernels/reference.py on random inputs and against the official IDDPM fixtures."""

import math

import pytest
import torch

import kernels
from kernels import reference
from tests.kernels.diffusion_op_cases import (  # iddpm: a module-scoped pytest fixture
    NUM_STEPS,
    _x,
    check_against_reference,
    dtypes,
    iddpm,
    iddpm_learned_range_tables,
    shapes,
    vb_inputs,
    vb_tables,
    vb_terms_bpd_case,
)
from tests.tolerances import assert_close


@shapes
@dtypes
def test_vb_terms_bpd(device, shape, dtype):
    check_against_reference(*vb_terms_bpd_case(shape, dtype, device), dtype)


def test_vb_terms_bpd_branches_and_clamps(device):
    """One batch with decoder (t == 0) and KL (t > 0) samples; the decoder's clamp at 1e-12 holds for
    some elements (their gradient must be exactly zero, as in the reference)."""
    shape = (4, 3, 6, 5)
    x_start, x_t, mean, log_variance = inputs = vb_inputs(shape, torch.float32, device)
    t = torch.tensor([0, 1, 0, NUM_STEPS - 1], device=device)
    args = (x_start, x_t, t, mean, log_variance, *vb_tables(device))
    check_against_reference(
        lambda: kernels.vb_terms_bpd(*args), lambda: reference.vb_terms_bpd(*args), inputs, torch.float32
    )
    (grad_mean,) = torch.autograd.grad(kernels.vb_terms_bpd(*args).sum(), [mean])
    with torch.no_grad():
        u = (x_start - mean) * torch.exp(-0.5 * log_variance)
    clamped = (t == 0).view(-1, 1, 1, 1) & (u.abs() > 100)
    assert clamped.any() and not grad_mean[clamped].any()


@pytest.mark.parametrize("clip", ["clip_false", "clip_true"])
def test_fixture_iddpm_vb_terms_bpd(iddpm, clip):
    """`_vb_terms_bpd(model, x_start, x_t, t, clip_denoised)`: the fused p_mean_variance feeds the fused vb term."""
    terms, schedule = iddpm
    inputs = terms["inputs"]
    x_t = terms["q_sample"]["x_t"]
    tables = iddpm_learned_range_tables(schedule)
    mean, _, log_variance, pred_xstart = kernels.p_mean_variance_learned_range(
        inputs["model_output"], x_t, inputs["t"], *tables, clip_denoised=clip == "clip_true"
    )
    assert_close(pred_xstart, terms["vb_terms_bpd"][clip]["pred_xstart"])
    out = kernels.vb_terms_bpd(
        inputs["x_start"], x_t, inputs["t"], mean, log_variance,
        schedule["posterior_mean_coef1"], schedule["posterior_mean_coef2"], schedule["posterior_log_variance_clipped"],
    )
    assert_close(out, terms["vb_terms_bpd"][clip]["output"])
    if clip == "clip_false":
        key, expected = training_loss_vb(terms["config"], out)
        assert_close(expected, terms["training_losses"][key])


def training_loss_vb(config, vb):
    """(training_losses key, value) that `training_losses` derives from the unclipped vb term under the config's
    loss type: MSE losses add it as `vb` (RESCALED_MSE times T / 1000), KL losses return it as `loss`
    (RESCALED_KL times T). Scaled in float32, as the official code scales the float32 tensor."""
    scale = {"MSE": 1.0, "RESCALED_MSE": config["T"] / 1000.0, "KL": 1.0, "RESCALED_KL": float(config["T"])}
    key = "vb" if config["loss_type"].endswith("MSE") else "loss"
    return key, vb * scale[config["loss_type"]]


def test_fixture_iddpm_discretized_gaussian_log_likelihood(iddpm, device):
    """The decoder branch (t == 0) against the official elementwise log-likelihood, averaged per sample."""
    case = iddpm[0]["discretized_gaussian_log_likelihood"]
    x, log_scales = case["x"], case["log_scales"]
    batch = x.shape[0]
    out = kernels.vb_terms_bpd(
        x, x, torch.zeros(batch, dtype=torch.int64, device=device), case["means"], 2.0 * log_scales, *vb_tables(device)
    )
    expected = -case["out"].reshape(batch, -1).mean(dim=1) / math.log(2.0)
    assert_close(out, expected)


def test_vb_terms_bpd_bad_input():
    x = _x(2, 3)
    with pytest.raises(ValueError, match="shapes must match"):
        kernels.vb_terms_bpd(x, x, torch.zeros(2, dtype=torch.int64), _x(2, 4), x, *vb_tables("cpu"))
    with pytest.raises(TypeError, match="model_log_variance"):
        kernels.vb_terms_bpd(x, x, torch.zeros(2, dtype=torch.int64), x, x.to(torch.int32), *vb_tables("cpu"))
    with pytest.raises(ValueError, match="must lie in .* posterior_mean_coef1"):
        kernels.vb_terms_bpd(x, x, torch.tensor([0, NUM_STEPS]), x, x, *vb_tables("cpu"))
