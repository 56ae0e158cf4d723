"""Every fused diffusion op (OPS): non-contiguous inputs still match kernels/reference.py, and its Triton kernels run."""

import importlib

import torch

from tests.kernels.diffusion_op_cases import check_against_reference, non_contiguous, ops


@ops
def test_non_contiguous_inputs(device, op):
    """Every tensor input strided (every other element of a wider buffer): outputs and gradients still match."""
    fused, ref, inputs = op.case((3, 3, 5, 7), torch.float32, device, non_contiguous)
    assert not any(tensor.is_contiguous() for tensor in inputs)
    check_against_reference(fused, ref, inputs, torch.float32)


class LaunchSpy:
    """Stands in for a @triton.jit kernel: records each launch (kernel[grid](...)) and runs the real kernel."""

    def __init__(self, kernel, name, launches):
        self.kernel, self.name, self.launches = kernel, name, launches

    def __getitem__(self, grid):
        self.launches.append(self.name)
        return self.kernel[grid]


@ops
def test_triton_kernels_run(monkeypatch, device, op):
    """The forward and backward Triton kernels of each op are what runs: through Triton's interpreter on
    the CPU (not the reference's fallback), compiled on CUDA."""
    module = importlib.import_module(op.module)
    launches = []
    for direction in ("fwd", "bwd"):
        name = f"_{op.kernel}_{direction}_kernel"
        kernel = getattr(module, name)
        if device.type == "cpu":
            assert type(kernel).__name__ == "InterpretedFunction", f"{name} is not run by Triton's interpreter"
        monkeypatch.setattr(module, name, LaunchSpy(kernel, direction, launches))
    check_against_reference(*op.case((2, 3, 4), torch.float32, device), torch.float32)
    assert launches == ["fwd", "bwd"]
