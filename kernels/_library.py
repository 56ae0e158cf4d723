"""The Triton launchers as `torch.library` custom ops (namespace "ddx"), so torch.compile sees them whole.

Dynamo cannot trace a launcher (grid arithmetic in Python, Triton's JIT and, on the CPU, its
interpreter); as a custom op the launcher is one opaque node of the graph whose fake implementation
gives the output shapes and dtypes, and Inductor calls it as an extern kernel. Autograd stays in each
op file's torch.autograd.Function, which calls these ops: Dynamo traces the Function's forward and
backward around the opaque nodes, so a model compiles with `fullgraph=True`, and eager autograd is
unchanged (upfirdn2d's backward applies its Function again, so R1's double backward still works).

The ops are registered for every device: CUDA tensors run the compiled kernels, CPU tensors reach them
only under TRITON_INTERPRET=1 (the public functions send other CPU tensors to kernels/reference.py).
"""

import functools

import torch

NAMESPACE = "ddx"


def _contiguous(value):
    if isinstance(value, torch.Tensor):
        return value.contiguous()
    if isinstance(value, (list, tuple)):
        return type(value)(_contiguous(v) for v in value)
    return value


def _with_contiguous_inputs(launcher):
    """The launcher with every tensor argument made contiguous first.

    The launchers index raw pointers and assume contiguous inputs (the public functions make them so);
    a compiled graph may hand a custom op another layout of the same values, so the op checks here
    (a no-op for inputs that are already contiguous).
    """

    @functools.wraps(launcher)
    def run(*args):
        return launcher(*(_contiguous(a) for a in args))

    return run


def launcher_op(name, schema, fake, contiguous_inputs=True):
    """Decorator: register `launcher` as the custom op ddx::<name> with this schema and fake implementation.

    schema: the op's signature in TorchScript schema syntax, e.g.
        "(Tensor x, Tensor t, bool clip) -> (Tensor, Tensor?)"
    (written out because launchers return None for gradients nobody asked for, which schema inference
    from annotations cannot express); fake(*args) returns empty tensors of the outputs' shapes and dtypes.
    contiguous_inputs=False leaves the layouts to a launcher that handles strided inputs itself (AdaGN's
    gamma and beta are strided (N, C) views: copying them would add two launches per call).
    Returns the op, callable like the launcher with positional arguments (`torch.ops.ddx.<name>` is the same op).
    """

    def register(launcher):
        impl = _with_contiguous_inputs(launcher) if contiguous_inputs else launcher
        op = torch.library.custom_op(f"{NAMESPACE}::{name}", impl, mutates_args=(), schema=schema)
        op.register_fake(fake)
        return op

    return register
