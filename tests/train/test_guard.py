"""The NaN guard: a clear error naming term and step, raised before that step is checkpointed."""

import math

import pytest
import torch

from _train_toy import main
from ddx.train import CheckpointManager, NonFiniteLossError, RunDir, check_finite
from tests.checkpoint_files import load_latest


def test_finite_losses_come_back_as_floats():
    assert check_finite({"g_loss": torch.tensor(1.5), "d_loss": torch.tensor([2.0])}, 3) == {
        "g_loss": 1.5, "d_loss": 2.0}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_names_term_and_step(bad):
    # 17 steps completed before the bad one: it is step 18, the number metrics.jsonl would give it.
    with pytest.raises(NonFiniteLossError,
                       match=rf"loss 'd_loss' is {bad} in step 18 \(after 17 completed steps\)") as info:
        check_finite({"g_loss": torch.tensor(1.0), "d_loss": torch.tensor(bad)}, 17)
    assert info.value.term == "d_loss" and info.value.step == 18 and info.value.completed_steps == 17
    assert math.isnan(info.value.value) if math.isnan(bad) else info.value.value == bad


@pytest.mark.parametrize("losses, error, message", [
    ({}, TypeError, "non-empty dict of scalar tensors"),
    ({"a": 1.0}, TypeError, "loss 'a' must be a scalar tensor, got float"),
    ({"a": torch.zeros(2)}, ValueError, r"loss 'a' must be a scalar tensor, got shape \(2,\)"),
], ids=["empty", "float", "vector"])
def test_bad_loss_dicts(losses, error, message):
    with pytest.raises(error, match=message):
        check_finite(losses, 0)


def test_nan_stops_run_and_keeps_last_checkpoint(tmp_path, restore_threads):
    # --nan-at-step is the index passed to train_step: 17 steps complete, the 18th produces the nan.
    with pytest.raises(NonFiniteLossError, match=r"loss 'loss' is nan in step 18 \(after 17 completed steps\)"):
        main(["--run-dir", str(tmp_path), "--max-steps", "30", "--save-interval", "5", "--nan-at-step", "17"])
    manager = CheckpointManager(tmp_path / "checkpoints", keep_last=2)
    assert manager.steps() == [10, 15]
    state = load_latest(manager.directory)
    assert state["loop"]["step"] == 15
    assert all(torch.isfinite(p).all() for p in state["trainer"]["model"].values())
    records = RunDir(tmp_path).read_metrics()
    assert [r["step"] for r in records] == list(range(1, 18))  # the last logged step is finite, the next is not
    assert math.isfinite(records[-1]["loss"])


@pytest.mark.parametrize("value", [1e39, -3e300], ids=["above-fp32-max", "large-negative"])
def test_large_finite_fp64_loss_is_finite(value):
    assert check_finite({"nll": torch.tensor(value, dtype=torch.float64)}, 0) == {"nll": value}


@pytest.mark.parametrize("dtype, overflow", [(torch.float16, 7e4), (torch.bfloat16, 1e39)], ids=["fp16", "bf16"])
def test_half_precision_overflow_is_caught(dtype, overflow):
    loss = torch.tensor(overflow, dtype=torch.float64).to(dtype)  # beyond the dtype's range: inf
    with pytest.raises(NonFiniteLossError, match=r"loss 'l' is inf in step 1 \(after 0 completed steps\)"):
        check_finite({"l": loss}, 0)


def test_terms_of_mixed_dtypes_are_gathered():
    values = check_finite({"a": torch.tensor(1.0, dtype=torch.float64), "b": torch.tensor([2], dtype=torch.int64)}, 0)
    assert values == {"a": 1.0, "b": 2.0}
