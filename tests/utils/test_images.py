"""ddx.utils.images: the grid, the two uint8 NHWC conversions (each its official rounding), the scatter plot."""

import numpy as np
import pytest
import torch

from ddx.utils.images import images_to_uint8_grid, scatter_image, uint8_nhwc_rounded, uint8_nhwc_truncated

VALUES = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0]).view(1, 1, 1, 6).expand(1, 3, 1, 6)


def test_grid_default_is_square():
    assert images_to_uint8_grid(torch.zeros(5, 3, 4, 4)).shape == (2 + 2 * 6, 2 + 3 * 6, 3)


def test_grid_rounds_as_save_image_and_clamps():
    images = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    grid = images_to_uint8_grid(images, padding=0)
    assert grid.dtype == torch.uint8 and grid.shape == (2, 2, 3)
    assert grid[..., 0].tolist() == [[0, 128], [255, 255]]


@pytest.mark.parametrize("shape", [(3, 4, 4), (2, 2, 4, 4), (0, 3, 4, 4)], ids=["3d", "2ch", "empty"])
def test_grid_rejects_bad_images(shape):
    with pytest.raises(ValueError, match="images must"):
        images_to_uint8_grid(torch.zeros(shape))


def test_rounded_conversion_matches_save_image():
    # save_image: x01 * 255 + 0.5, cast; 0.0 -> 127.5 + 0.5 = 128, 0.999 -> 254.87 + 0.5 -> 255.
    pixels = uint8_nhwc_rounded(VALUES)
    assert pixels.dtype == np.uint8 and pixels.shape == (1, 1, 6, 3)
    assert pixels[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255, 255]


def test_truncated_conversion_matches_image_sample_py():
    # image_sample.py: ((x + 1) * 127.5).clamp(0, 255).to(uint8); 0.0 -> 127, 0.999 -> 254.
    pixels = uint8_nhwc_truncated(VALUES)
    assert pixels.dtype == np.uint8 and pixels.shape == (1, 1, 6, 3)
    assert pixels[0, 0, :, 0].tolist() == [0, 0, 127, 254, 255, 255]


@pytest.mark.parametrize("convert", [uint8_nhwc_rounded, uint8_nhwc_truncated], ids=["rounded", "truncated"])
def test_conversions_need_nchw(convert):
    with pytest.raises(ValueError, match=r"images must be a tensor \(N, C, H, W\), got \(3, 4, 4\)"):
        convert(torch.zeros(3, 4, 4))


def test_scatter_draws_means_and_points():
    canvas = scatter_image(torch.tensor([[0.0, 0.0]]), means=torch.tensor([[2.5, 2.5]]), extent=5.0, size=101)
    assert canvas.dtype == np.uint8 and canvas.shape == (101, 101, 3)
    assert canvas[50, 50].tolist() == [20, 40, 120]  # the point at the origin, the centre pixel
    assert canvas[25, 75].tolist() == [220, 0, 0]  # the mean (2.5, 2.5): right of centre and up
    assert canvas[0, 0].tolist() == [255, 255, 255]
