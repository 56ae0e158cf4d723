"""The comparison helpers of tests/tolerances.py count ulps and scale tolerances as documented."""

import pytest
import torch

from tests.tolerances import assert_close_of_max, assert_close_ulps, ulp_distance


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_ulp_distance_counts_neighbouring_floats(dtype):
    x = torch.tensor([1.0, -3.5, 1e-30, 0.0, 7.0], dtype=dtype)
    up = torch.nextafter(x, torch.full_like(x, float("inf")))
    two_down = torch.nextafter(torch.nextafter(x, -up.abs() - 1), -up.abs() - 1)
    assert ulp_distance(up, x).tolist() == [1] * 5
    assert ulp_distance(two_down, x).tolist() == [2] * 5
    # +0 and -0 are the same value; the smallest subnormals either side of zero are 2 apart.
    tiny = torch.nextafter(torch.zeros(1, dtype=dtype), torch.ones(1, dtype=dtype))
    assert ulp_distance(torch.tensor([-0.0], dtype=dtype), torch.tensor([0.0], dtype=dtype)).item() == 0
    assert ulp_distance(-tiny, tiny).item() == 2


def test_assert_close_ulps_bounds_and_reports():
    expected = torch.linspace(-2, 3, 7)
    two = torch.nextafter(torch.nextafter(expected, expected + 1), expected + 1)
    assert_close_ulps(two, expected, 2)
    with pytest.raises(AssertionError, match=r"sigmas: 7 of 7 elements more than 1 ulps apart; worst 2 ulps"):
        assert_close_ulps(two, expected, 1, msg="sigmas")
    with pytest.raises(AssertionError, match="more than 4 ulps"):
        assert_close_ulps(expected * (1 + 1e-4), expected, 4)
    with pytest.raises(AssertionError, match="dtype"):
        assert_close_ulps(expected.double(), expected, 4)
    nan = torch.tensor([float("nan"), 1.0])
    assert_close_ulps(nan.clone(), nan, 0)
    with pytest.raises(AssertionError, match="NaN"):
        assert_close_ulps(torch.tensor([1.0, 1.0]), nan, 4)


def test_assert_close_of_max_scales_with_the_largest_reference():
    expected = torch.tensor([3.0, 1e-3, -0.5])
    assert_close_of_max(expected + torch.tensor([0.0, 2.9e-5, -2.9e-5]), expected, 1e-5)
    with pytest.raises(AssertionError):
        assert_close_of_max(expected + torch.tensor([0.0, 3.1e-5, 0.0]), expected, 1e-5)
