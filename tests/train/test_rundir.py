"""Run directory: config JSON from frozen dataclasses, metrics JSONL, sample PNGs, rank-0-only writes."""

import dataclasses
import enum
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddx.train import RunDir


class Schedule(enum.Enum):
    LINEAR = "linear"
    COSINE = "cosine"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    channel_mult: tuple[int, ...] = (1, 2, 2)
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = ModelConfig()
    schedule: Schedule = Schedule.COSINE
    data_dir: Path = Path("/data/x")
    resume: str | None = None


def test_config_json_is_resolved_and_readable(tmp_path):
    RunDir(tmp_path).write_config(RunConfig())
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "model": {"channel_mult": [1, 2, 2], "dropout": 0.0}, "schedule": "COSINE",
        "data_dir": "/data/x", "resume": None}


def test_config_rejects_unserialisable(tmp_path):
    with pytest.raises(TypeError, match="cannot write a object to JSON"):
        RunDir(tmp_path).write_config({"x": object()})


def test_metrics_append_truncate_and_skip_partial_line(tmp_path):
    run_dir = RunDir(tmp_path)
    for step in (1, 2, 3, 4):
        run_dir.log_metrics({"step": step, "loss": torch.tensor(step / 2), "lr": 1e-4})
    with open(run_dir.metrics_path, "a") as f:
        f.write('{"step": 5, "lo')  # a crash mid-write
    assert [r["step"] for r in run_dir.read_metrics()] == [1, 2, 3, 4]
    assert run_dir.read_metrics()[2] == {"step": 3, "loss": 1.5, "lr": 1e-4}
    run_dir.truncate_metrics(after_step=2)
    assert [r["step"] for r in run_dir.read_metrics()] == [1, 2]
    assert run_dir.metrics_path.read_text().count("\n") == 2


@pytest.mark.parametrize("channels", [1, 3], ids=["gray", "rgb"])
def test_sample_grid_png_maps_minus_one_to_one_onto_uint8(tmp_path, channels):
    images = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2).repeat(3, channels, 1, 1)
    path = RunDir(tmp_path).save_images("epoch_3", images, nrow=3)
    assert path == tmp_path / "samples" / "epoch_3.png"
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (2 + 2 * 2, 3 * 2 + 4 * 2, 3)  # padding 2 around and between images
    assert pixels[2:4, 2:4, 0].tolist() == [[0, 128], [255, 255]]  # 2.0 is clamped to 1


@pytest.mark.parametrize("shape", [(3, 4, 4), (2, 2, 4, 4), (0, 3, 4, 4)], ids=["3d", "2ch", "empty"])
def test_bad_images_are_rejected(tmp_path, shape):
    with pytest.raises(ValueError, match="images must"):
        RunDir(tmp_path).save_images("x", torch.zeros(shape))


def test_files_are_replaced_whole_without_leftovers(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.write_config({"a": 1})
    run_dir.write_config({"a": 2})
    run_dir.log_metrics({"step": 1})
    run_dir.truncate_metrics(after_step=0)
    run_dir.save_images("grid", torch.zeros(2, 3, 4, 4))
    assert json.loads(run_dir.config_path.read_text()) == {"a": 2}
    assert run_dir.metrics_path.read_text() == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "checkpoints", "config.json", "grid.png", "metrics.jsonl", "samples"]


def test_non_main_rank_writes_nothing(tmp_path):
    run_dir = RunDir(tmp_path / "run", is_main=False)
    run_dir.write_config(RunConfig())
    run_dir.log_metrics({"step": 1})
    run_dir.save_images("s", torch.zeros(1, 3, 2, 2))
    assert not (tmp_path / "run").exists()
