"""Image folder: recursive PNG/JPEG discovery, resize of the shorter side, center crop, random flip."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from ddx.data import DataConfig, ImageFolderDataset, make_dataset


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    _save(tmp_path / "b.png", rng.integers(0, 256, (12, 12, 3)))
    _save(tmp_path / "a.PNG", rng.integers(0, 256, (12, 12, 3)))
    _save(tmp_path / "sub" / "deeper" / "c.JPG", np.full((20, 30, 3), 200))
    _save(tmp_path / "sub" / "d.jpeg", np.full((9, 9), 60))  # grayscale
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_recursive_discovery_sorted_and_case_insensitive(folder):
    ds = ImageFolderDataset(folder, image_size=8)
    rel = [str(p.relative_to(folder)) for p in map(type(folder), ds.paths)]
    assert rel == ["a.PNG", "b.png", "sub/d.jpeg", "sub/deeper/c.JPG"]
    for i in range(len(ds)):
        x, label = ds[i]
        assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and label == 0
        assert x.min() >= -1 and x.max() <= 1
        assert torch.equal(x, torch.round((x + 1) * 127.5) / 127.5 - 1)


def test_png_values_exact_when_no_resize(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, (5, 5, 3))
    _save(tmp_path / "x.png", array)
    x, _ = ImageFolderDataset(tmp_path, image_size=5)[0]
    torch.testing.assert_close(x, torch.from_numpy(array).permute(2, 0, 1).float() / 127.5 - 1, rtol=0, atol=0)


def test_jpeg_grayscale_becomes_rgb(folder):
    ds = ImageFolderDataset(folder, image_size=9)
    x, _ = ds[2]  # sub/d.jpeg, constant 60
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert abs(((x + 1) * 127.5).mean().item() - 60) < 2  # JPEG is lossy


def test_resize_shorter_side_then_center_crop(tmp_path):
    # 60 wide x 20 high: white in columns 15..44, black outside. Resized to 30 x 10, the center crop keeps
    # resized columns 10..19 = original 20..39, all white with a margin of 5 pixels for the filter.
    array = np.zeros((20, 60, 3))
    array[:, 15:45] = 255
    _save(tmp_path / "wide.png", array)
    x, _ = ImageFolderDataset(tmp_path, image_size=10)[0]
    assert x.shape == (3, 10, 10)
    assert torch.equal(x, torch.ones_like(x))


def test_random_flip_gives_both_orientations(tmp_path):
    array = np.zeros((6, 6, 3))
    array[:, :2] = 255
    _save(tmp_path / "left.png", array)
    plain = ImageFolderDataset(tmp_path, image_size=6)[0][0]
    flipping = ImageFolderDataset(tmp_path, image_size=6, random_flip=True)
    torch.manual_seed(0)
    seen = [flipping[0][0] for _ in range(20)]
    assert any(torch.equal(s, plain) for s in seen)
    assert any(torch.equal(s, plain.flip(-1)) for s in seen)
    assert all(torch.equal(s, plain) or torch.equal(s, plain.flip(-1)) for s in seen)
    assert all(torch.equal(ImageFolderDataset(tmp_path, image_size=6)[0][0], plain) for _ in range(5))


def test_empty_folder_error(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no images.*png"):
        ImageFolderDataset(tmp_path, image_size=8)


def test_missing_path_and_file_path_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        make_dataset("image_folder", root=tmp_path / "nope", image_size=8)
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(ValueError, match="not a directory"):
        make_dataset("image_folder", root=tmp_path / "f.png", image_size=8)


def test_key_changes_when_images_are_added_or_rewritten(folder):
    def key():
        return DataConfig("image_folder", root=folder, image_size=8).key()

    first = key()
    assert first == key() and "images=4|" in first
    (folder / "notes.txt").write_text("still not an image")  # other files do not count
    assert key() == first
    _save(folder / "e.png", np.zeros((4, 4, 3)))
    added = key()
    assert added != first and "images=5|" in added
    newer = (folder / "e.png").stat().st_mtime_ns + 10**9
    os.utime(folder / "a.PNG", ns=(newer, newer))  # rewritten: same count, newer mtime
    assert key() != added
