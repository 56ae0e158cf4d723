"""ddx.train.ema.EMA: where the average starts, the update arithmetic, swap / copy_to, state round trip."""

import copy

import pytest
import torch
from torch import nn

from ddx.train.ema import EMA, EMAStart
from ddgan_helpers import OfficialEMA


def _net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 5), nn.SiLU(), nn.Linear(5, 2))


def _sgd_steps(net, opt, n, seed=2):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        net(torch.randn(4, 3, generator=g)).pow(2).sum().backward()
        yield opt.step()


def test_first_step_start_matches_official_ema_wrapper():
    net, ref = _net(), _net()
    ema = EMA(net, 0.9, EMAStart.FIRST_STEP)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    ref_opt = OfficialEMA(torch.optim.Adam(ref.parameters(), lr=0.1), ema_decay=0.9)
    for _ in zip(_sgd_steps(net, opt, 3), _sgd_steps(ref, ref_opt, 3)):
        ema.update()
    for (name, _), p_ref in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(ema.shadow[name], ref_opt.state[p_ref]["ema"], rtol=0, atol=0)


def test_initial_start_averages_from_the_initial_weights():
    net = _net()
    initial = copy.deepcopy(net)
    ema = EMA(net, 0.5, EMAStart.INITIAL)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in _sgd_steps(net, opt, 1):
        ema.update()
    for (name, p), p0 in zip(net.named_parameters(), initial.parameters()):
        torch.testing.assert_close(ema.shadow[name], 0.5 * p0 + 0.5 * p.detach())


def test_swap_twice_restores_and_copy_to_and_state_round_trip():
    net = _net()
    ema = EMA(net, 0.9, EMAStart.INITIAL)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in _sgd_steps(net, opt, 2):
        ema.update()
    trained = copy.deepcopy(net.state_dict())
    average = {name: value.clone() for name, value in ema.shadow.items()}
    with ema.averaged() as averaged:
        for name, p in averaged.named_parameters():
            torch.testing.assert_close(p.detach(), average[name], rtol=0, atol=0)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, trained[name], rtol=0, atol=0)
    target = ema.copy_to(_net())
    for name, p in target.named_parameters():
        torch.testing.assert_close(p.detach(), ema.shadow[name])
    other = EMA(_net(), 0.1, EMAStart.FIRST_STEP)
    other.load_state_dict(ema.state_dict())
    assert (other.decay, other.start, other.initialized, other.num_updates) == (0.9, EMAStart.INITIAL, True, 2)
    for name, value in ema.shadow.items():
        torch.testing.assert_close(other.shadow[name], value, rtol=0, atol=0)


@pytest.mark.parametrize("decay", [-0.1, 1.0, True], ids=["negative", "one", "bool"])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        EMA(_net(), decay)


def test_mismatched_state_is_refused():
    ema = EMA(_net(), 0.9)
    state = ema.state_dict()
    state["shadow"].pop("0.weight")
    with pytest.raises(ValueError, match="0.weight"):
        EMA(_net(), 0.9).load_state_dict(state)


def test_state_layout_built_and_read_without_a_module():
    net = _net()
    ema = EMA(net, 0.9, EMAStart.FIRST_STEP)
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    assert EMA.shadow_of(ema.state_dict()) is None and EMA.shadow_of(None) is None
    assert EMA.averaged_weights(ema.state_dict(), weights).keys() == weights.keys()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in _sgd_steps(net, opt, 2):
        ema.update()
    state = ema.state_dict()
    rebuilt = EMA.state_from_shadow(EMA.shadow_of(state), 0.9, EMAStart.FIRST_STEP, True, 2)
    assert rebuilt.keys() == state.keys() and rebuilt["start"] == state["start"] == "first_step"
    other = EMA(_net(), 0.5)
    other.load_state_dict(rebuilt)
    averaged = EMA.averaged_weights(state, weights)
    for name, value in ema.shadow.items():
        assert torch.equal(other.shadow[name], value) and torch.equal(averaged[name], value)
