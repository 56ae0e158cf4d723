"""Test-session set-up: where the Triton kernels run, and a fixed seed.

`--device cpu` (the default): Triton's interpreter runs the kernels on CPU tensors. TRITON_INTERPRET
must be set before triton decorates any kernel, so before kernels/ is imported: pytest_configure runs
after the options are parsed and before any test module is collected.
`--device cuda`: TRITON_INTERPRET stays unset, so the kernels are compiled for the GPU; the kernel
tests create their tensors on the `device` fixture, and CPU tensors go to kernels/reference.py.
"""

import enum
import os
import sys

import pytest
import torch


class Device(enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        choices=[d.value for d in Device],
        default=Device.CPU.value,
        help="where the kernel tests create their tensors: cpu (Triton's interpreter) or cuda (compiled kernels)",
    )


def pytest_configure(config):
    device = Device(config.getoption("--device"))
    if "kernels" in sys.modules:
        raise pytest.UsageError("kernels/ was imported before tests/conftest.py chose the Triton mode")
    if device is Device.CPU:
        os.environ.setdefault("TRITON_INTERPRET", "1")
        return
    # Triton's own knob reads TRITON_INTERPRET as kernels/_checks.py does ("1", "true", "on", "yes", any case).
    # Imported only here: Triton's own @jit helpers (tl.interleave, tl.sigmoid, ...) take the mode at import,
    # so on the CPU path triton must not be imported before TRITON_INTERPRET is set.
    import triton

    if triton.knobs.runtime.interpret:
        raise pytest.UsageError("--device cuda runs the compiled kernels: unset TRITON_INTERPRET")
    if not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda needs a CUDA GPU; torch.cuda.is_available() is False")
    # The references and fixtures are IEEE fp32; cuDNN's default TF32 convolutions are not.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


@pytest.fixture(scope="session")
def device(request):
    """The torch.device the kernel tests create their tensors on (--device)."""
    return torch.device(request.config.getoption("--device"))


@pytest.fixture(autouse=True)
def _fixed_seed():
    torch.manual_seed(0)
    yield
