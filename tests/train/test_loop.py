"""The loop's structure: epochs vs steps, hooks, cadence, resume modes, clear errors."""

import pytest
import torch

from ddx.train import CheckpointError, CheckpointManager, EpochBatches, LoopConfig, Resume, RunDir, Trainer, run
from ddx.checkpoints.io import atomic_save


class Recorder(Trainer):
    """Records what the loop calls; its only state is a tensor counter."""

    def __init__(self):
        self.count = torch.zeros(())
        self.calls: list[tuple] = []

    def train_step(self, batch, step):
        self.count += 1
        self.calls.append(("step", step, batch.tolist()))
        return {"loss": batch.float().mean()}

    def on_epoch_end(self, epoch):
        self.calls.append(("epoch_end", epoch))

    def on_save(self, step):
        self.calls.append(("save", step))

    def extra_metrics(self):
        return {"lr": 0.5}

    def state_dict(self):
        return {"count": self.count.clone()}

    def load_state_dict(self, state):
        self.count = state["count"].clone()


def _batches(n: int = 10, batch: int = 3) -> EpochBatches:
    return EpochBatches(torch.arange(n), batch, seed=0)  # 3 batches per epoch


def _quiet(**kwargs) -> LoopConfig:
    return LoopConfig(progress=False, **kwargs)


def test_epoch_structure_hooks_and_epoch_checkpoints(tmp_path):
    trainer = Recorder()
    state = run(trainer, _batches(), RunDir(tmp_path), _quiet(max_epochs=3, save_every_epochs=1, log_interval=2,
                                                               keep_last=5))
    kinds = [c[0] if c[0] != "step" else "step" for c in trainer.calls]
    assert kinds == ["step"] * 3 + ["epoch_end", "save"] + ["step"] * 3 + ["epoch_end", "save"] \
        + ["step"] * 3 + ["epoch_end", "save"]
    assert [c[1] for c in trainer.calls if c[0] == "step"] == list(range(9))
    assert (state.step, state.epoch, state.batch_index) == (9, 3, 0)
    assert CheckpointManager(tmp_path / "checkpoints", 5).steps() == [3, 6, 9]  # no duplicate final save
    records = RunDir(tmp_path).read_metrics()
    assert [(r["step"], r["epoch"], r["lr"]) for r in records] == [(2, 0, 0.5), (4, 1, 0.5), (6, 1, 0.5), (8, 2, 0.5)]


def test_step_structure_saves_on_interval_and_at_the_end(tmp_path):
    trainer = Recorder()
    state = run(trainer, _batches(), RunDir(tmp_path), _quiet(max_steps=7, save_interval=3, keep_last=5))
    assert (state.step, state.epoch, state.batch_index) == (7, 2, 1)
    # A step checkpoint that falls on an epoch's last batch is written before that epoch's hook runs
    # (its position records the hook as pending, so a resume from it runs the hook first).
    assert [c for c in trainer.calls if c[0] != "step"] == [
        ("save", 3), ("epoch_end", 0), ("save", 6), ("epoch_end", 1), ("save", 7)]
    assert CheckpointManager(tmp_path / "checkpoints", 5).steps() == [3, 6, 7]


def test_continuing_with_a_larger_budget_runs_only_new_epochs(tmp_path):
    run(Recorder(), _batches(), RunDir(tmp_path), _quiet(max_epochs=2))
    trainer = Recorder()
    state = run(trainer, _batches(), RunDir(tmp_path), _quiet(max_epochs=3))
    assert [c[1] for c in trainer.calls if c[0] == "epoch_end"] == [2]
    assert [c[1] for c in trainer.calls if c[0] == "step"] == [6, 7, 8]
    assert trainer.count.item() == 9 and state.epoch == 3


def test_resume_modes(tmp_path):
    with pytest.raises(CheckpointError, match="resume required but there is no checkpoint in"):
        run(Recorder(), _batches(), RunDir(tmp_path), _quiet(max_steps=2), resume=Resume.REQUIRE)
    run(Recorder(), _batches(), RunDir(tmp_path), _quiet(max_steps=2))
    with pytest.raises(ValueError, match="already holds checkpoints .*ckpt_000000002.pt"):
        run(Recorder(), _batches(), RunDir(tmp_path), _quiet(max_steps=4), resume=Resume.NEVER)
    with pytest.raises(ValueError, match=r"written with --batch_size 3 \(per rank\) but this run has --batch_size 4"):
        run(Recorder(), _batches(batch=4), RunDir(tmp_path), _quiet(max_steps=4))
    with pytest.raises(ValueError, match="written with 3 batches per epoch but the data now gives 2"):
        run(Recorder(), _batches(n=6), RunDir(tmp_path), _quiet(max_steps=4))


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    atomic_save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="other.pt is not a ddx.train/1 checkpoint"):
        run(Recorder(), _batches(), RunDir(tmp_path / "run"), _quiet(max_steps=2), resume=path)


@pytest.mark.parametrize("kwargs, error, message", [
    ({}, ValueError, "needs max_steps or max_epochs"),
    ({"max_steps": 0}, ValueError, "max_steps must be a positive int or None, got 0"),
    ({"max_steps": 5, "log_interval": None}, TypeError, "log_interval must be a positive int, got None"),
    ({"max_epochs": 2, "save_interval": 1.5}, TypeError, "save_interval must be a positive int or None, got 1.5"),
    ({"max_epochs": 2, "keep_last": 0}, ValueError, "keep_last must be a positive int, got 0"),
], ids=["no-budget", "zero-steps", "no-log-interval", "float-interval", "keep-zero"])
def test_loop_config_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        LoopConfig(**kwargs)


def test_trainer_must_subclass(tmp_path):
    with pytest.raises(TypeError, match="trainer must subclass ddx.train.Trainer, got object"):
        run(object(), _batches(), RunDir(tmp_path), _quiet(max_steps=1))


def test_progress_lines_follow_the_log_interval(tmp_path, capsys):
    run(Recorder(), _batches(), RunDir(tmp_path), LoopConfig(max_steps=5, log_interval=2))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" | ")[0] for line in lines] == ["step 2/5", "step 4/5", "step 5/5"]
    assert lines[0].split(" | ")[1] == "epoch 0" and lines[-1].split(" | ")[-1].startswith("loss ")
