"""NVTX ranges: off by default, emitted in order when switched on."""

from ddx import profiling
from tests.nvtx_recording import record_ranges


def test_ranges_are_silent_unless_enabled():
    with record_ranges() as names:
        with profiling.nvtx_range("sample/step_0"):
            pass
    assert names == []


def test_ranges_are_emitted_in_order_when_enabled():
    profiling.enable(True)
    try:
        with record_ranges() as names:
            for step in (1, 0):
                with profiling.nvtx_range(f"sample/step_{step}"):
                    with profiling.nvtx_range("sample/generator"):
                        pass
    finally:
        profiling.enable(False)
    assert names == ["sample/step_1", "sample/generator", "sample/step_0", "sample/generator"]


def test_steady_state_window_is_a_no_op_without_cuda(monkeypatch):
    monkeypatch.setattr(profiling.torch.cuda, "is_available", lambda: False)
    window = profiling.SteadyStateWindow(start=2, count=3)
    for i in range(6):
        window.step(i)
        assert not window.active, f"the window opened at step {i} without CUDA"


def test_steady_state_window_profiles_exactly_its_steps(monkeypatch):
    """With a (stand-in) CUDA device the profiler runs over steps start .. start + count - 1."""
    calls = []
    cuda = profiling.torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "synchronize", lambda: None)
    monkeypatch.setattr(cuda.profiler, "start", lambda: calls.append("start"))
    monkeypatch.setattr(cuda.profiler, "stop", lambda: calls.append("stop"))
    window = profiling.SteadyStateWindow(start=2, count=3)
    active = []
    for i in range(7):
        window.step(i)
        active.append(window.active)
    assert active == [False, False, True, True, True, False, False]
    assert calls == ["start", "stop"]
