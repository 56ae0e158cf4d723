"""LMDB reader on tiny environments in the official DDGAN layouts (CelebA-HQ lmdb_datasets.py, LSUN lsun.py)."""

import io
import sys

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

from ddx.data import LmdbImageDataset, LmdbLayout, Split, make_dataset


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _write_env(path, items):
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in items:
            txn.put(key, value)
    env.close()


def _as_input(array):
    return torch.from_numpy(array).permute(2, 0, 1).float() / 127.5 - 1


@pytest.fixture
def celeba_root(tmp_path):
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(12)]
    val = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    # Training values as raw RGB bytes (is_encoded=False), validation values PNG-encoded (is_encoded=True).
    _write_env(tmp_path / "train.lmdb", [(str(i).encode(), a.tobytes()) for i, a in enumerate(train)])
    _write_env(tmp_path / "validation.lmdb", [(str(i).encode(), _png(a)) for i, a in enumerate(val)])
    return tmp_path, train, val


def test_celeba_layout_raw_and_encoded(celeba_root):
    root, train, val = celeba_root
    ds = make_dataset("lmdb", root=root, image_size=8)
    assert isinstance(ds, LmdbImageDataset) and ds.layout is LmdbLayout.CELEBA_HQ and len(ds) == 12
    # Keys are str(i): item 10 must be key b"10", not the 10th key in byte order ("2" sorts after "10").
    for i in (0, 2, 10, 11):
        x, label = ds[i]
        assert torch.equal(x, _as_input(train[i])) and label == 0
    held = make_dataset("lmdb", root=root, image_size=8, split=Split.HELDOUT, lmdb_layout="celeba_hq")
    assert len(held) == 3 and torch.equal(held[1][0], _as_input(val[1]))


def test_lsun_layout_keys_in_cursor_order(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {f"{h:040x}".encode(): rng.integers(0, 256, (10, 14, 3), dtype=np.uint8) for h in (7, 3, 99, 1)}
    env_dir = tmp_path / "church_outdoor_train_lmdb"
    _write_env(env_dir, [(k, _png(a)) for k, a in arrays.items()])
    ds = make_dataset("lmdb", root=env_dir, image_size=6)
    assert ds.layout is LmdbLayout.LSUN and len(ds) == 4
    assert ds.keys == sorted(arrays)
    x, _ = ds[0]
    assert x.shape == (3, 6, 6) and x.min() >= -1 and x.max() <= 1
    expected = make_dataset("image_folder", root=_png_folder(tmp_path, arrays[sorted(arrays)[0]]), image_size=6)[0][0]
    assert torch.equal(x, expected), "same resize + center crop as the image folder pipeline"


def _png_folder(tmp_path, array):
    folder = tmp_path / "png"
    folder.mkdir()
    Image.fromarray(array).save(folder / "x.png")
    return folder


def test_lsun_layout_refuses_heldout_split(tmp_path):
    _write_env(tmp_path / "env", [(b"k", _png(np.zeros((4, 4, 3))))])
    with pytest.raises(ValueError, match="directory is the split"):
        LmdbImageDataset(tmp_path / "env", image_size=4, split=Split.HELDOUT)


def test_wrong_layout_says_what_was_expected(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(ValueError, match="train.lmdb.*validation.lmdb.*data.mdb"):
        make_dataset("lmdb", root=tmp_path, image_size=8)


def test_celeba_missing_split_env(celeba_root):
    root, _, _ = celeba_root
    for f in (root / "validation.lmdb").iterdir():
        f.unlink()
    (root / "validation.lmdb").rmdir()
    with pytest.raises(ValueError, match="validation.lmdb.*not an LMDB environment"):
        LmdbImageDataset(root, image_size=8, split=Split.HELDOUT)


def test_bad_raw_value(tmp_path):
    _write_env(tmp_path / "train.lmdb", [(b"0", b"\x00" * 10)])
    ds = LmdbImageDataset(tmp_path, image_size=8)
    with pytest.raises(ValueError, match="neither an encoded image .* nor raw square RGB"):
        ds[0]


def test_missing_lmdb_package_gives_install_hint(celeba_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(ImportError, match="pip install lmdb"):
        make_dataset("lmdb", root=celeba_root[0], image_size=8)


def test_dataloader_workers_reopen_the_environment(celeba_root):
    root, train, _ = celeba_root
    ds = LmdbImageDataset(root, image_size=8)
    ds[0]  # opens the environment in this process
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1)
    batch, _ = next(iter(loader))
    assert torch.equal(batch[3], _as_input(train[3]))


def test_two_datasets_on_one_environment(celeba_root):
    root, train, _ = celeba_root
    a, b = LmdbImageDataset(root, image_size=8), LmdbImageDataset(root, image_size=8, random_flip=True)
    assert torch.equal(a[4][0], _as_input(train[4])) and len(b) == len(a)


def test_raw_pixels_that_begin_like_a_jpeg_are_read_as_raw(tmp_path):
    array = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    array[0, 0, :2] = (0xFF, 0xD8)
    _write_env(tmp_path / "train.lmdb", [(b"0", array.tobytes())])
    assert torch.equal(LmdbImageDataset(tmp_path, image_size=8)[0][0], _as_input(array))


def test_webp_values_as_in_lsun(tmp_path):
    array = np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="WEBP", lossless=True)
    _write_env(tmp_path / "bedroom_train_lmdb", [(b"a", buf.getvalue())])
    x, _ = LmdbImageDataset(tmp_path / "bedroom_train_lmdb", image_size=8, layout=LmdbLayout.LSUN)[0]
    assert torch.equal(x, _as_input(array))
