"""generate_samples: shapes, dtype, determinism from a generator, labels, NVTX step ranges."""

import numpy as np
import pytest
import torch

from ddx import profiling
from ddx.sample.iddpm import generate_samples
from tests.iddpm._tiny import tiny_diffusion, tiny_unet


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
    from ddx.nn.fused import set_fused

    torch.manual_seed(0)
    model = set_fused(build_unet(UNetConfig(image_size=8, num_channels=32, num_res_blocks=1, learn_sigma=True,
                                            attention_resolutions=(4,), num_heads=2, channel_mult=(1, 2),
                                            class_cond=True, num_classes=10)), False).eval()
    profiling.enable(True)
    try:
        with profiling.record_ranges() as names:
            images, labels = generate_samples(tiny_diffusion(steps=3), model, 1, 1, 8, num_classes=10)
    finally:
        profiling.enable(False)
    assert names == ["sample/step_2", "sample/step_1", "sample/step_0"]
    assert labels.shape == (1,) and 0 <= labels[0] < 10 and images.shape == (1, 8, 8, 3)


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError, match="num_samples must be a positive int"):
        generate_samples(tiny_diffusion(steps=2), tiny_unet(), 0, 1, 8)
