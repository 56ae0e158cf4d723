"""make_dataset / DataConfig: names, defaults, and clear errors for arguments that do not apply."""

import dataclasses
import json

import pytest
import torch

from ddx.data import (
    DataConfig,
    DatasetName,
    DigitsDataset,
    Split,
    StackedDigitsDataset,
    Toy2DDataset,
    build_dataset,
    make_dataset,
)


@pytest.mark.parametrize(
    "name,cls,length,item_shape",
    [
        ("digits", DigitsDataset, 1437, (3, 16, 16)),
        ("stacked_digits", StackedDigitsDataset, 2874, (3, 16, 16)),
        ("toy25", Toy2DDataset, 100_000, (2,)),
        ("rings", Toy2DDataset, 100_000, (2,)),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_builtin_defaults(name, cls, length, item_shape):
    ds = make_dataset(name)
    assert isinstance(ds, cls) and len(ds) == length and ds[0][0].shape == item_shape


def test_enum_and_string_names_are_equivalent():
    a = make_dataset(DatasetName.STACKED_DIGITS, image_size=12, seed=4, length=10)
    b = make_dataset("STACKED_DIGITS", image_size=12, seed=4, length=10)
    assert torch.equal(a[9][0], b[9][0]) and a[0][0].shape == (3, 12, 12)


def test_rings_are_the_ring_mixture():
    assert make_dataset("rings", length=5).spec.num_modes == 8
    assert make_dataset("toy25", length=5).spec.num_modes == 25


def test_heldout_digits():
    assert len(make_dataset("digits", split="heldout")) == 360


def test_config_builds_the_same_dataset_and_serialises():
    cfg = DataConfig("toy25", length=32, seed=9)
    assert cfg.name is DatasetName.TOY25 and cfg.split is Split.TRAIN
    assert torch.equal(build_dataset(cfg).points, make_dataset("toy25", length=32, seed=9).points)
    json.dumps(dataclasses.asdict(cfg))  # str enums: the resolved config can be written as JSON
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


def test_config_key_tells_datasets_apart():
    keys = {
        DataConfig("digits").key(),
        DataConfig("digits", image_size=32).key(),
        DataConfig("digits", split="heldout").key(),
        DataConfig("stacked_digits").key(),
    }
    assert len(keys) == 4
    assert DataConfig("digits").key() == DataConfig(DatasetName.DIGITS, split=Split.TRAIN).key()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"name": "mnist"}, "unknown dataset name 'mnist'; expected one of 'digits'"),
        ({"name": "digits", "split": "test"}, "unknown split 'test'"),
        ({"name": "digits", "root": "/data"}, "built into ddx and takes no root"),
        ({"name": "cifar10"}, "cifar10 reads a user's files: pass root"),
        ({"name": "image_folder", "root": "/x"}, "needs image_size"),
        ({"name": "toy25", "image_size": 16}, "takes no image_size"),
        ({"name": "digits", "length": 10}, "takes no length"),
        ({"name": "digits", "random_flip": True}, "random_flip applies to file datasets"),
        ({"name": "rings", "split": "heldout"}, "no held-out split"),
        ({"name": "digits", "lmdb_layout": "lsun"}, "lmdb_layout applies to the lmdb dataset only"),
        ({"name": "lmdb", "root": "/x", "image_size": 8, "lmdb_layout": "ffhq"}, "unknown LMDB layout"),
        ({"name": "stacked_digits", "length": 0}, "length must be a positive int, got 0"),
    ],
    ids=["unknown-name", "unknown-split", "root-for-builtin", "no-root", "no-image-size", "size-for-toy",
         "length-for-digits", "flip-for-digits", "heldout-toy", "layout-for-digits", "unknown-layout", "zero-length"],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(**kwargs)


@pytest.mark.parametrize("name", ["image_folder", "cifar10", "lmdb"])
def test_missing_root_path(name, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        make_dataset(name, root=tmp_path / "missing", image_size=8)
