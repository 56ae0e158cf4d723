"""torch.compile(fullgraph=True) of the CIFAR-10 networks traces whole, and the ddx custom ops stay whole (issue 13).

The networks are the ones train.py builds for the CIFAR-10 recipes, at full size: the NCSN++ generator and
Discriminator_small of DDGAN's `cifar10` preset (bench.e2e.models.ddgan_setup -> ddx.train.ddgan_setup's
builders) and the UNet of IDDPM's `cifar10` preset (iddpm_setup -> build_unet), batch 2 at 32 px.

Compile only, nothing runs: the backend records the graphs it is handed and raises, so neither Inductor's
codegen nor the graph itself (the Triton interpreter, on the CPU) ever executes; Dynamo and AOTAutograd trace
with fake tensors. With fullgraph=True a graph break raises before any backend is called, so reaching the
backend once is "no graph break, exactly one graph".

In this test process tests/conftest.py sets TRITON_INTERPRET=1 before kernels/ is imported, so on CPU tensors
the fused path (set_fused True) takes the Triton route (kernels._checks.use_triton), i.e. the
torch.library custom ops ddx::adagn_fwd / adagn_bwd / upfirdn2d_fwd inside their autograd.Functions, exactly
as on CUDA. The eager path (set_fused False) calls kernels/reference.py: aten ops only.

What is asserted, per network and path:
- Dynamo: one graph (the backend is reached once; fullgraph would raise on a break).
- fused: in AOTAutograd's forward graph (aten level, after decomposition) every ddx op is one call_function
  node whose target is the OpOverload torch.ops.ddx.<name>.default, with the counts below, and no
  aten.native_group_norm remains (nothing was decomposed into or left as aten group norm). In Dynamo's graph
  each ddx autograd.Function is one autograd_function_apply node whose backward body holds ddx ops.
- eager: no ddx node anywhere, and aten.native_group_norm appears exactly where the fused path has
  ddx.adagn_fwd (one for one).

Counts (measured; they follow from the architectures): NCSN++ 61 AdaGN (56 AdaptiveGroupNorm + 5 GroupNorm
modules) and 15 upfirdn2d calls (the FIR resamplers and the BigGAN up/down blocks' FIR); Discriminator_small
6 upfirdn2d calls (3 FIRDownsample2d modules, each applied on the main and the skip path); the UNet 76
GroupNorm32 -> adagn.

R1 (double backward) through a compiled discriminator: see the last three tests (AOTAutograd refuses it;
Dynamo alone is exact on the eager path and silently drops second-order gradients on the fused path).

Measured (2-core dev box, one torch thread, torch 2.14.1 CPU): the whole file 40 s in pytest
(46 s wall with start-up); the full-size traces are 1-10 s each (NCSN++ fused 9 s, UNet fused 10 s).
"""

from collections import Counter

import pytest
import torch
from torch._functorch.aot_autograd import aot_module_simplified

import kernels
from bench.e2e.models import ddgan_setup, iddpm_setup
from ddx.ops import set_fused
from ddx.train.ddgan_config import DiscriminatorKind
from ddx.train.ddgan_setup import discriminator_kind
from tests.tolerances import NETWORK

BATCH = 2
ADAGN_FWD = torch.ops.ddx.adagn_fwd.default
ADAGN_BWD = torch.ops.ddx.adagn_bwd.default
UPFIRDN2D_FWD = torch.ops.ddx.upfirdn2d_fwd.default
GROUP_NORM = torch.ops.aten.native_group_norm.default

# network -> {ddx op: call_function nodes in AOTAutograd's forward graph} on the fused path
FUSED_FORWARD_OPS = {
    "ncsnpp": {ADAGN_FWD: 61, UPFIRDN2D_FWD: 15},
    "discriminator_small": {UPFIRDN2D_FWD: 6},
    "unet": {ADAGN_FWD: 76},
}


class _Traced(Exception):
    """Raised by the recording backend once the graphs are recorded, so that nothing is compiled or run."""


def _is_ddx(target):
    return isinstance(target, torch._ops.OpOverload) and target.namespace == "ddx"


def _targets(gm, nested=False):
    """Counter of call_function targets in gm's graph (and in its submodules' graphs if nested)."""
    modules = gm.modules() if nested else [gm]
    return Counter(
        node.target for mod in modules if isinstance(mod, torch.fx.GraphModule)
        for node in mod.graph.nodes if node.op == "call_function"
    )


def _trace(model, inputs, aot):
    """Compile `model` with fullgraph=True into a backend that records Dynamo's graph (and, if aot,
    AOTAutograd's forward graph), then stops; returns the list of Dynamo graphs and the forward graphs."""
    dynamo_graphs, forward_graphs = [], []

    def record(gm, example_inputs):
        dynamo_graphs.append(gm)
        if aot:
            def forward_compiler(fw_gm, _):
                forward_graphs.append(fw_gm)
                return fw_gm

            aot_module_simplified(gm, example_inputs, fw_compiler=forward_compiler, bw_compiler=lambda g, _: g)
        raise _Traced

    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=record)
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed) as failed:
        compiled(*inputs)
    assert isinstance(failed.value.inner_exception, _Traced), failed.value
    torch._dynamo.reset()
    return dynamo_graphs, forward_graphs


def _ncsnpp():
    setup = ddgan_setup("cifar10")
    model = setup.build_generator("cpu")
    inputs = (torch.randn(BATCH, *setup.sample_shape), torch.randint(0, setup.diffusion.num_timesteps, (BATCH,)),
              torch.randn(BATCH, setup.generator.nz))
    return model, inputs


def _discriminator_small():
    setup = ddgan_setup("cifar10")
    assert discriminator_kind(setup.config) is DiscriminatorKind.SMALL  # the cifar10 recipe's choice
    model = setup.build_discriminator("cpu")
    x = torch.randn(BATCH, *setup.sample_shape)
    return model, (x, torch.randint(0, setup.diffusion.num_timesteps, (BATCH,)), torch.randn_like(x))


def _unet():
    setup = iddpm_setup()
    model = setup.build_model("cpu")
    return model, (torch.randn(BATCH, *setup.sample_shape),
                   torch.randint(0, setup.diffusion.steps, (BATCH,)))


NETWORKS = {"ncsnpp": _ncsnpp, "discriminator_small": _discriminator_small, "unet": _unet}


@pytest.fixture(scope="module", params=list(NETWORKS))
def network(request):
    model, inputs = NETWORKS[request.param]()
    return request.param, model, inputs


def test_fused_path_is_the_triton_route_here():
    # The premise of the fused assertions: on these CPU tensors the kernels (custom ops) are chosen.
    assert kernels.INTERPRET, "tests/conftest.py should have set TRITON_INTERPRET=1"


def test_fused_traces_whole_with_custom_ops_as_single_nodes(network):
    name, model, inputs = network
    set_fused(model, True)
    dynamo_graphs, forward_graphs = _trace(model, inputs, aot=True)
    assert len(dynamo_graphs) == 1 and len(forward_graphs) == 1

    forward = _targets(forward_graphs[0])
    ddx_forward = {t: n for t, n in forward.items() if _is_ddx(t)}
    assert ddx_forward == FUSED_FORWARD_OPS[name]
    assert forward[GROUP_NORM] == 0, "a group norm was left to aten on the fused path"

    # Dynamo: each ddx autograd.Function is one autograd_function_apply; its forward and backward bodies
    # hold the ddx ops (AdaGN's backward is ddx.adagn_bwd; upfirdn2d's backward applies its Function again).
    top = _targets(dynamo_graphs[0])
    applies = top[torch.ops.higher_order.autograd_function_apply]
    direct = sum(n for t, n in top.items() if _is_ddx(t))  # ddx ops called outside a Function (no grad path)
    assert applies + direct == sum(FUSED_FORWARD_OPS[name].values())
    nested = _targets(dynamo_graphs[0], nested=True)
    assert nested[ADAGN_BWD] == FUSED_FORWARD_OPS[name].get(ADAGN_FWD, 0)
    assert nested[GROUP_NORM] == 0 and top[torch.nn.functional.group_norm] == 0


def test_eager_traces_whole_with_no_custom_ops(network):
    name, model, inputs = network
    set_fused(model, False)
    try:
        dynamo_graphs, _ = _trace(model, inputs, aot=False)
    finally:
        set_fused(model, True)
    assert len(dynamo_graphs) == 1
    nested = _targets(dynamo_graphs[0], nested=True)
    assert not [t for t in nested if _is_ddx(t)]
    assert nested[torch.ops.higher_order.autograd_function_apply] == 0
    # Dynamo records torch.native_group_norm (the reference's call) rather than the aten OpOverload.
    group_norms = sum(n for t, n in nested.items() if getattr(t, "__name__", "") == "native_group_norm")
    assert group_norms == FUSED_FORWARD_OPS[name].get(ADAGN_FWD, 0)


def _tiny_discriminator_r1_case(fused):
    setup = ddgan_setup("cifar10", tiny=True)
    model = set_fused(setup.build_discriminator("cpu"), fused)
    x_t = torch.randn(2, *setup.sample_shape)
    t = torch.randint(0, setup.diffusion.num_timesteps, (2,))
    return model, (x_t, t, torch.randn_like(x_t))


def _r1(model, forward, x_t, t, x_tp1):
    """R1 through `forward`: grad of D w.r.t. x_t with create_graph, then backward of its mean squared norm.
    Returns the first-order grad and {parameter name: grad} for the parameters that received one."""
    model.zero_grad(set_to_none=True)
    x = x_t.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(forward(x, t, x_tp1).sum(), x, create_graph=True)
    grad.pow(2).flatten(1).sum(1).mean().backward()
    return grad.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_aot_compiled_discriminator_refuses_double_backward(fused):
    """R1 through a torch.compile'd discriminator (tiny Discriminator_small of the cifar10 recipe, 8 px).

    Finding (torch 2.14.1): with any AOTAutograd backend the first grad with create_graph=True succeeds (its
    grad_fn is CompiledFunctionBackwardBackward, its value right), and the backward of the penalty raises
    RuntimeError "torch.compile with aot_autograd does not currently support double backward", on the fused
    and the eager path alike (so not because of the custom ops). Checked with backend="aot_eager", the
    AOTAutograd layer Inductor uses; Inductor on the CPU was measured to raise the same (~50 s to compile,
    so not run here). An R1 step under --compile must run the discriminator eager.
    """
    model, (x_t, t, x_tp1) = _tiny_discriminator_r1_case(fused)
    expected_grad, _ = _r1(model, model, x_t, t, x_tp1)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = x_t.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(compiled(x, t, x_tp1).sum(), x, create_graph=True)
    assert type(grad.grad_fn).__name__ == "CompiledFunctionBackwardBackward"
    torch.testing.assert_close(grad.detach(), expected_grad, **NETWORK)
    with pytest.raises(RuntimeError, match="does not currently support double backward"):
        grad.pow(2).flatten(1).sum(1).mean().backward()
    torch._dynamo.reset()


def test_dynamo_only_double_backward_is_exact_on_the_eager_path():
    """Dynamo alone (backend="eager", no AOTAutograd) of the eager-path discriminator: R1 equals uncompiled."""
    model, inputs = _tiny_discriminator_r1_case(fused=False)
    expected_grad, expected = _r1(model, model, *inputs)
    torch._dynamo.reset()
    actual_grad, actual = _r1(model, torch.compile(model, fullgraph=True, backend="eager"), *inputs)
    torch._dynamo.reset()
    torch.testing.assert_close(actual_grad, expected_grad, **NETWORK)
    # every parameter but end_linear.bias (R1 does not depend on the last bias) has a second-order gradient
    names = sorted(n for n, _ in model.named_parameters() if n != "end_linear.bias")
    assert sorted(actual) == sorted(expected) == names
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], **NETWORK, msg=name)


def test_dynamo_only_double_backward_loses_the_second_order_through_upfirdn2d():
    """Finding (torch 2.14.1): under Dynamo, even backend="eager", the fused upfirdn2d autograd.Function is
    traced as autograd_function_apply, and the gradient its traced backward returns has no grad_fn: it is
    not differentiable again (uncompiled, the backward applies the Function again and is). No error and no
    warning: in the discriminator the R1 penalty still has a graph through the other paths, so its
    backward runs and silently leaves parameters without their second-order gradient (20 of the tiny
    Discriminator_small's 37 that uncompiled R1 reaches, among them final_conv.weight, the largest). So compiling D for the R1 step
    is wrong on the fused path even without AOTAutograd: R1 must run the discriminator uncompiled.
    """
    fir = torch.outer(torch.tensor([1.0, 3.0, 3.0, 1.0]), torch.tensor([1.0, 3.0, 3.0, 1.0]))
    fir = fir / fir.sum()

    def down(x):
        return kernels.upfirdn2d(x, fir, down=2, pad=(1, 1))

    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    weight = torch.randn(1, 2, 4, 4, requires_grad=True)  # the first-order grad depends on it
    (eager_grad,) = torch.autograd.grad((down(x) * weight).sum(), x, create_graph=True)
    assert eager_grad.requires_grad
    torch._dynamo.reset()
    (traced_grad,) = torch.autograd.grad(
        (torch.compile(down, fullgraph=True, backend="eager")(x) * weight).sum(), x, create_graph=True
    )
    assert not traced_grad.requires_grad and traced_grad.grad_fn is None
    torch.testing.assert_close(traced_grad, eager_grad.detach(), **NETWORK)

    model, inputs = _tiny_discriminator_r1_case(fused=True)
    expected_grad, expected = _r1(model, model, *inputs)
    torch._dynamo.reset()
    actual_grad, actual = _r1(model, torch.compile(model, fullgraph=True, backend="eager"), *inputs)
    torch._dynamo.reset()
    torch.testing.assert_close(actual_grad, expected_grad, **NETWORK)  # the first order is right
    assert len(expected) == len(list(model.parameters())) - 1  # all but end_linear.bias (not in R1)
    missing = sorted(set(expected) - set(actual))
    assert "final_conv.weight" in missing and expected["final_conv.weight"].abs().max() > 0
    assert len(missing) == 20, missing
