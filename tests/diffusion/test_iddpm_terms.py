"""IDDPM's diffusion terms (q_*, p_mean_variance, losses, sampling steps, calc_bpd_loop) against the
official outputs (iddpm_terms.pt), with the fixed stand-in model and the recorded noise replayed."""

import pytest
import torch

from ddx.diffusion import GaussianDiffusion, LossType, ModelMeanType, ModelVarType, get_named_beta_schedule
from ddx.diffusion import discretized_gaussian_log_likelihood, approx_standard_normal_cdf, normal_kl
from iddpm_cases import PATHS, FixedModel, assert_close, load
from tests.tolerances import DDIM_LAST_STEP_OF_MAX, DIFFUSION, assert_close_of_max

FIXTURE = load("iddpm_terms")
INPUTS = FIXTURE["inputs"]
X_T = FIXTURE["q_sample"]["x_t"]
MEAN_VAR_KEYS = ("mean", "variance", "log_variance", "pred_xstart")


CONFIG = FIXTURE["config"]


def make_diffusion(path, mean=None, var=None, loss=None, schedule=None, steps=None):
    """The fixture's GaussianDiffusion (its stored config), with any of its options replaced."""
    return GaussianDiffusion(
        betas=get_named_beta_schedule(schedule or CONFIG["schedule"], steps or CONFIG["T"]),
        model_mean_type=ModelMeanType[mean or CONFIG["model_mean_type"]],
        model_var_type=ModelVarType[var or CONFIG["model_var_type"]],
        loss_type=LossType[loss or CONFIG["loss_type"]],
        rescale_timesteps=CONFIG["rescale_timesteps"],
        fused=path == "fused",
    )


def assert_dict(actual, expected, keys=None):
    for key in keys or expected:
        assert_close(actual[key], expected[key])


@pytest.mark.parametrize("path", PATHS)
def test_q_terms(path):
    diffusion = make_diffusion(path)
    x_start, t = INPUTS["x_start"], INPUTS["t"]
    mean, variance, log_variance = diffusion.q_mean_variance(x_start, t)
    assert_dict({"mean": mean, "variance": variance, "log_variance": log_variance}, FIXTURE["q_mean_variance"])
    assert_close(diffusion.q_sample(x_start, t, noise=INPUTS["noise"]), X_T)
    mean, variance, log_variance = diffusion.q_posterior_mean_variance(x_start, X_T, t)
    expected = FIXTURE["q_posterior_mean_variance"]
    assert_dict({"mean": mean, "variance": variance, "log_variance_clipped": log_variance}, expected)


@pytest.mark.parametrize("generic", [False, True], ids=["default", "generic-torch-path"])
@pytest.mark.parametrize("clip", [True, False], ids=["clip", "noclip"])
@pytest.mark.parametrize("path", PATHS)
def test_p_mean_variance(path, clip, generic):
    diffusion = make_diffusion(path)
    model = FixedModel(INPUTS["model_output"])
    # An identity denoised_fn takes the plain-torch code instead of the fused op: both must match.
    denoised_fn = (lambda x: x) if generic else None
    out = diffusion.p_mean_variance(model, X_T, INPUTS["t"], clip_denoised=clip, denoised_fn=denoised_fn)
    assert_dict(out, FIXTURE["p_mean_variance" if clip else "p_mean_variance_noclip"])
    torch.testing.assert_close(model.received_t[0], FIXTURE["model_received_t"], rtol=0, atol=0)


@pytest.mark.parametrize("clip", [True, False], ids=["clip_true", "clip_false"])
@pytest.mark.parametrize("path", PATHS)
def test_vb_terms_bpd(path, clip):
    diffusion = make_diffusion(path)
    out = diffusion.vb_terms_bpd(FixedModel(INPUTS["model_output"]), INPUTS["x_start"], X_T, INPUTS["t"], clip_denoised=clip)
    assert_dict(out, FIXTURE["vb_terms_bpd"]["clip_true" if clip else "clip_false"])


@pytest.mark.parametrize("path", PATHS)
def test_hybrid_training_losses_and_prior(path):
    diffusion = make_diffusion(path)
    terms = diffusion.training_losses(FixedModel(INPUTS["model_output"]), INPUTS["x_start"], INPUTS["t"], noise=INPUTS["noise"])
    assert list(terms) == ["vb", "mse", "loss"]
    assert_dict(terms, FIXTURE["training_losses"])
    assert_close(diffusion.prior_bpd(INPUTS["x_start"]), FIXTURE["prior_bpd"])


@pytest.mark.parametrize("path", PATHS)
def test_hybrid_loss_stops_the_gradient_of_vb_on_the_mean(path):
    """vb trains only the variance channels, mse only the mean channels (the stop-gradient of L_hybrid)."""
    diffusion = make_diffusion(path)
    output = INPUTS["model_output"].clone().requires_grad_(True)
    terms = diffusion.training_losses(FixedModel(output), INPUTS["x_start"], INPUTS["t"], noise=INPUTS["noise"])
    (grad_vb,) = torch.autograd.grad(terms["vb"].sum(), output, retain_graph=True)
    (grad_mse,) = torch.autograd.grad(terms["mse"].sum(), output)
    channels = INPUTS["x_start"].shape[1]
    assert grad_vb[:, :channels].abs().max() == 0 and grad_vb[:, channels:].abs().max() > 0
    assert grad_mse[:, channels:].abs().max() == 0 and grad_mse[:, :channels].abs().max() > 0


def test_normal_kl_and_discretized_likelihood():
    kl = FIXTURE["normal_kl"]
    assert_close(normal_kl(kl["mean1"], kl["logvar1"], kl["mean2"], kl["logvar2"]), kl["out"])
    assert_close(normal_kl(kl["mean1"], kl["logvar1"], 0.0, 0.0), kl["out_scalar_prior"])
    nll = FIXTURE["discretized_gaussian_log_likelihood"]
    assert_close(discretized_gaussian_log_likelihood(nll["x"], nll["means"], nll["log_scales"]), nll["out"])
    assert_close(approx_standard_normal_cdf(nll["approx_standard_normal_cdf_in"]), nll["approx_standard_normal_cdf_out"])
    with pytest.raises(TypeError, match="at least one torch.Tensor"):
        normal_kl(0.0, 0.0, 0.0, 0.0)


GRID = sorted(FIXTURE["grid"])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("combo", GRID)
def test_grid_p_mean_variance(combo, path):
    case = FIXTURE["grid"][combo]
    diffusion = make_diffusion(path, case["model_mean_type"], case["model_var_type"])
    model = FixedModel(INPUTS["model_output"][:, : case["model_output_channels"]])
    out = diffusion.p_mean_variance(model, X_T, INPUTS["t"], clip_denoised=True)
    assert_dict(out, case["p_mean_variance"])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("loss", ["RESCALED_MSE", "MSE", "KL", "RESCALED_KL"])
@pytest.mark.parametrize("combo", GRID)
def test_grid_training_losses(combo, loss, path):
    case = FIXTURE["grid"][combo]
    diffusion = make_diffusion(path, case["model_mean_type"], case["model_var_type"], loss)
    model = FixedModel(INPUTS["model_output"][:, : case["model_output_channels"]])
    terms = diffusion.training_losses(model, INPUTS["x_start"], INPUTS["t"], noise=INPUTS["noise"])
    expected = case["training_losses"][loss]
    assert sorted(terms) == sorted(expected)
    # RESCALED_KL multiplies a bound term in bits by T = 1000: the 1e-6 absolute floor of the bits scales
    # with it (near-zero KLs at t = T-1 differ by float32 summation order on the fused path).
    tol = dict(DIFFUSION, atol=DIFFUSION["atol"] * diffusion.num_timesteps) if loss == "RESCALED_KL" else DIFFUSION
    for key in expected:
        assert_close(terms[key], expected[key], tol)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("step", ["p_sample", "ddim_sample_eta0", "ddim_sample_eta1", "ddim_reverse_sample"])
def test_sampling_steps_with_recorded_noise(step, path):
    diffusion = make_diffusion(path)
    model = FixedModel(INPUTS["model_output"])
    expected = FIXTURE[step]
    args = (model, X_T, INPUTS["t"])
    if step == "p_sample":
        out = diffusion.p_sample(*args, clip_denoised=True, noise=expected["noise"])
    elif step == "ddim_reverse_sample":
        out = diffusion.ddim_reverse_sample(*args, clip_denoised=True, eta=0.0)
    else:
        eta = 0.0 if step.endswith("eta0") else 1.0
        out = diffusion.ddim_sample(*args, clip_denoised=True, eta=eta, noise=expected["noise"])
    assert_sampling_step(step, out, expected)


def assert_sampling_step(step, out, expected):
    """A sampling step's sample and pred_xstart against the fixture. With eta = 1 the batch's last step
    (t = T-1) takes sqrt(1 - alpha_bar_prev - sigma^2) of ~1e-3: its sample is compared relative to the
    largest reference value (tests/tolerances.py, DDIM_LAST_STEP_OF_MAX); the other entries as usual."""
    assert_close(out["pred_xstart"], expected["pred_xstart"])
    if step != "ddim_sample_eta1":
        assert_close(out["sample"], expected["sample"])
        return
    last = INPUTS["t"] == CONFIG["T"] - 1
    assert last.any()
    assert_close(out["sample"][~last], expected["sample"][~last])
    assert_close_of_max(out["sample"][last], expected["sample"][last], DDIM_LAST_STEP_OF_MAX)


def ddim_eta1_step(diffusion):
    expected = FIXTURE["ddim_sample_eta1"]
    model = FixedModel(INPUTS["model_output"])
    return diffusion.ddim_sample(model, X_T, INPUTS["t"], clip_denoised=True, eta=1.0, noise=expected["noise"])


@pytest.mark.parametrize("name", ["alphas_cumprod", "alphas_cumprod_prev"])
@pytest.mark.parametrize("row", [0, 1, 2])
def test_ddim_step_comparison_catches_a_1e_4_table_error(name, row):
    """One entry of a schedule table 1e-4 off (relative) fails the eta = 1 comparison at its step.

    Not at t = T-1: alpha_bar enters there only through the ill-conditioned root, and a 1e-4 error
    moves the sample by ~5e-6, below that step's rounding across CPUs (1.2e-5); the float64 arrays
    the tables are rounded from are checked to FLOAT64_SCHEDULE in test_iddpm_schedules.py."""
    diffusion = make_diffusion("eager")
    assert_sampling_step("ddim_sample_eta1", ddim_eta1_step(diffusion), FIXTURE["ddim_sample_eta1"])
    diffusion.table(name, "cpu")[INPUTS["t"][row]] *= 1 + 1e-4
    with pytest.raises(AssertionError):
        assert_sampling_step("ddim_sample_eta1", ddim_eta1_step(diffusion), FIXTURE["ddim_sample_eta1"])


def test_ddim_last_step_comparison_catches_a_1e_4_relative_error():
    """The last step's sample 1e-4 off (relative) at its largest element fails DDIM_LAST_STEP_OF_MAX."""
    out = ddim_eta1_step(make_diffusion("eager"))
    last = int((INPUTS["t"] == CONFIG["T"] - 1).nonzero()[0])
    flat = out["sample"][last].view(-1)
    flat[flat.abs().argmax()] *= 1 + 1e-4
    with pytest.raises(AssertionError):
        assert_sampling_step("ddim_sample_eta1", out, FIXTURE["ddim_sample_eta1"])


@pytest.mark.parametrize("path", PATHS)
def test_sampling_step_draws_like_randn_like(path):
    """Without injected noise, p_sample draws one torch.randn_like(x) (the official global-RNG order)."""
    diffusion = make_diffusion(path)
    expected = FIXTURE["p_sample"]
    torch.manual_seed(expected["torch_manual_seed"])
    out = diffusion.p_sample(FixedModel(INPUTS["model_output"]), X_T, INPUTS["t"])
    assert_close(out["sample"], expected["sample"])
    generator = torch.Generator().manual_seed(expected["torch_manual_seed"])
    out = diffusion.p_sample(FixedModel(INPUTS["model_output"]), X_T, INPUTS["t"], generator=generator)
    assert_close(out["sample"], expected["sample"])


@pytest.mark.parametrize("path", PATHS)
def test_calc_bpd_loop_with_recorded_noise(path):
    case = FIXTURE["calc_bpd_loop"]
    options = (case["model_mean_type"], case["model_var_type"], case["loss_type"], case["schedule"], case["T"])
    diffusion = make_diffusion(path, *options)
    assert case["noise_t_order"] == list(range(case["T"]))[::-1]
    model = FixedModel(case["model_output"])
    out = diffusion.calc_bpd_loop(model, case["x_start"], clip_denoised=case["clip_denoised"], noise=case["noises"])
    assert_dict(out, case["out"])
    torch.testing.assert_close(torch.stack(model.received_t), case["model_received_t"], rtol=0, atol=0)


def test_bad_inputs_raise():
    diffusion = make_diffusion("eager")
    model = FixedModel(INPUTS["model_output"])
    x_start, t = INPUTS["x_start"], INPUTS["t"]
    batch, steps = x_start.shape[0], diffusion.num_timesteps
    with pytest.raises(TypeError, match="int64"):
        diffusion.q_sample(x_start, t.float())
    with pytest.raises(ValueError, match=rf"shape \({batch},\)"):
        diffusion.q_sample(x_start, t[:-1])
    with pytest.raises(ValueError, match=rf"\[0, {steps}\)"):
        diffusion.q_sample(x_start, torch.full_like(t, steps))
    with pytest.raises(ValueError, match="noise has shape"):
        diffusion.q_sample(x_start, t, noise=INPUTS["noise"][:, :-1])
    expected_output = (batch, 2 * x_start.shape[1], *x_start.shape[2:])
    with pytest.raises(ValueError, match=rf"model output must have shape \({', '.join(map(str, expected_output))}\)"):
        diffusion.p_mean_variance(FixedModel(INPUTS["model_output"][:, :-1]), X_T, t)
    with pytest.raises(ValueError, match="eta must be 0.0"):
        diffusion.ddim_reverse_sample(model, X_T, t, eta=0.5)
    with pytest.raises(ValueError, match="noise must have shape"):
        diffusion.calc_bpd_loop(model, x_start, noise=INPUTS["noise"])
    with pytest.raises(TypeError, match="floating-point"):
        diffusion.training_losses(model, x_start.long(), t)


def repeated_timesteps(batch, steps):
    """[3, 0, 0, ..., T-2]: repeated and extreme steps in one batch (a batch of 4 is [3, 0, 0, T-2])."""
    t = torch.zeros(batch, dtype=torch.int64)
    t[0], t[-1] = min(3, steps - 1), steps - 2
    return t


@pytest.mark.parametrize("which", ["fixture-t", "repeated-t"])
def test_fused_and_eager_hybrid_loss_gradients_agree(which):
    """The training step on the Triton kernels (forward and backward) against the eager references."""
    t = INPUTS["t"] if which == "fixture-t" else repeated_timesteps(INPUTS["t"].shape[0], CONFIG["T"])
    grads, losses = [], []
    for path in ("eager", "fused"):
        output = INPUTS["model_output"].clone().requires_grad_(True)
        terms = make_diffusion(path).training_losses(FixedModel(output), INPUTS["x_start"], t, noise=INPUTS["noise"])
        (grad,) = torch.autograd.grad(terms["loss"].sum(), output)
        grads.append(grad)
        losses.append(terms["loss"].detach())
    assert_close(losses[1], losses[0])
    assert_close(grads[1], grads[0])
