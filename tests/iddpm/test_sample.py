"""generate_samples: shapes, dtype, determinism from a generator, labels, NVTX step ranges."""

import numpy as np
import pytest
import torch

from ddx import profiling
from ddx.sample.iddpm import generate_samples
from tests.iddpm._tiny import tiny_diffusion, tiny_unet
from tests.nvtx_recording import record_ranges


@pytest.mark.parametrize("use_ddim", [False, True], ids=["ancestral", "ddim"])
def test_samples_are_uint8_nhwc_and_follow_the_generator(use_ddim):
    model, diffusion = tiny_unet().eval(), tiny_diffusion(steps=3)
    runs = [generate_samples(diffusion, model, 3, 2, 8, use_ddim=use_ddim, generator=torch.Generator().manual_seed(5))
            for _ in range(2)]
    (images, labels), (again, _) = runs
    assert images.dtype == np.uint8 and images.shape == (3, 8, 8, 3) and labels is None
    assert np.array_equal(images, again)


def test_class_labels_and_step_ranges():
    from ddx.models.unet import UNetConfig, build_unet
    from ddx.ops import set_fused

    torch.manual_seed(0)
    model = set_fused(build_unet(UNetConfig(image_size=8, num_channels=32, num_res_blocks=1, learn_sigma=True,
                                            attention_resolutions=(4,), num_heads=2, channel_mult=(1, 2),
                                            class_cond=True, num_classes=10)), False).eval()
    profiling.enable(True)
    try:
        with record_ranges() as names:
            images, labels = generate_samples(tiny_diffusion(steps=3), model, 1, 1, 8, num_classes=10)
    finally:
        profiling.enable(False)
    assert names == ["sample/step_2", "sample/step_1", "sample/step_0"]
    assert labels.shape == (1,) and 0 <= labels[0] < 10 and images.shape == (1, 8, 8, 3)


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError, match="num_samples must be a positive int"):
        generate_samples(tiny_diffusion(steps=2), tiny_unet(), 0, 1, 8)


def _todays_generate_samples(diffusion, model, num_samples, batch_size, num_classes, use_ddim, seed):
    """generate_samples before it ran through FastIDDPMSampler: labels, then the official progressive loop."""
    generator = torch.Generator().manual_seed(seed)
    images, labels = [], []
    done = 0
    while done < num_samples:
        classes = torch.randint(0, num_classes, (batch_size,), generator=generator)
        labels.append(classes.numpy())
        loop = diffusion.ddim_sample_loop_progressive if use_ddim else diffusion.p_sample_loop_progressive
        for out in loop(model, (batch_size, 3, 8, 8), model_kwargs={"y": classes}, generator=generator):
            sample = out["sample"]
        images.append(((sample + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
        done += batch_size
    return np.concatenate(images)[:num_samples], np.concatenate(labels)[:num_samples]


@pytest.fixture(scope="module")
def class_cond_unet():
    from ddx.models.unet import UNetConfig, build_unet
    from ddx.ops import set_fused

    torch.manual_seed(0)
    return set_fused(build_unet(UNetConfig(image_size=8, num_channels=32, num_res_blocks=1, learn_sigma=True,
                                           attention_resolutions=(4,), num_heads=2, channel_mult=(1, 2),
                                           class_cond=True, num_classes=10)), False).eval()


@pytest.mark.parametrize("use_ddim", [False, True], ids=["ancestral", "ddim"])
def test_eager_gives_todays_samples_and_labels(class_cond_unet, use_ddim):
    diffusion = tiny_diffusion(steps=3)
    images, labels = generate_samples(diffusion, class_cond_unet, 3, 2, 8, num_classes=10, use_ddim=use_ddim,
                                      generator=torch.Generator().manual_seed(7))
    expected_images, expected_labels = _todays_generate_samples(diffusion, class_cond_unet, 3, 2, 10, use_ddim, 7)
    assert np.array_equal(labels, expected_labels)
    assert np.array_equal(images, expected_images)


def test_execution_routes_the_model_and_the_diffusion():
    from ddx.execution import ExecutionOptions

    from ddx.ops import FusedOp, set_fused

    model, diffusion = set_fused(tiny_unet().eval(), True), set_fused(tiny_diffusion(steps=2), True)
    generate_samples(diffusion, model, 1, 1, 8, execution=ExecutionOptions(fused=False, precision="bf16"))
    routed = [m.fused for m in model.modules() if isinstance(m, FusedOp)]
    assert diffusion.fused is False and routed and not any(routed)


class _ConvEps(torch.nn.Module):
    """A one-conv stand-in for the UNet ((N, 3, H, W), t -> (N, 6, H, W)), quick to compile with Inductor."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x, t):
        eps, v = (self.conv(x) + 1e-3 * t.float().view(-1, 1, 1, 1)).chunk(2, dim=1)
        return torch.cat([eps, torch.tanh(v)], dim=1)


def test_compiled_on_the_cpu_gives_the_eager_samples():
    from ddx.execution import ExecutionOptions

    torch.manual_seed(0)
    model, diffusion = _ConvEps().eval(), tiny_diffusion(steps=3)
    runs = [generate_samples(diffusion, model, 2, 2, 8, generator=torch.Generator().manual_seed(1),
                             execution=ExecutionOptions(fused=False, sampler=mode))[0] for mode in ("eager", "compiled")]
    # uint8 pixels: Inductor's float rounding may move a value across a pixel boundary, never further.
    assert np.abs(runs[0].astype(int) - runs[1].astype(int)).max() <= 1


def test_graphs_on_the_cpu_names_the_mode_flag():
    from ddx.execution import ExecutionOptions

    with pytest.raises(ValueError, match="GRAPHS needs a CUDA device.*use --mode compiled or --mode eager"):
        generate_samples(tiny_diffusion(steps=2), tiny_unet(), 1, 1, 8, execution=ExecutionOptions(sampler="graphs"))


def test_the_device_is_the_models():
    from ddx.execution import ExecutionOptions

    with pytest.raises(ValueError, match=r"runs on the device of the model \(cpu\), not meta"):
        generate_samples(tiny_diffusion(steps=2), tiny_unet(), 1, 1, 8, execution=ExecutionOptions(device="meta"))
