"""Data a user points ddx at that cannot train: each is a DataError naming the file or folder and the fix.

Library-level cases first, then the same cases through train.py (exit code 1, one message, no traceback).
"""

import numpy as np
import pytest
from PIL import Image

from ddx.data import make_dataset
from ddx.data.image_folder import check_image_file
from ddx.train.data import EpochBatches
from ddx.utils.errors import DataError
from tests.cli_errors import expect_user_error


def _png(path, seed=0, size=8):
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def folders(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    for i in range(3):
        _png(good / f"{i}.png", seed=i)
    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = tmp_path / "no_images"
    (no_images / "sub").mkdir(parents=True)
    (no_images / "sub" / "notes.txt").write_text("not an image")
    (no_images / "photo.gif").write_bytes(b"GIF89a")
    random_bytes = tmp_path / "random_bytes"
    random_bytes.mkdir()
    _png(random_bytes / "a.png")
    (random_bytes / "b.png").write_bytes(np.random.default_rng(1).bytes(300))
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    data = _png(tmp_path / "whole.png", size=32).read_bytes()
    (truncated / "cut.png").write_bytes(data[: len(data) * 2 // 3])
    return dict(good=good, empty=empty, no_images=no_images, random_bytes=random_bytes, truncated=truncated,
                missing=tmp_path / "missing")


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["missing", "does not exist"]),
    ("empty", ["empty", "holds no images", ".png, .jpg, .jpeg", "subfolders"]),
    ("no_images", ["no_images", "holds no images", ".png, .jpg, .jpeg"]),
    ("random_bytes", ["b.png", "neither a PNG nor a JPEG", "re-save or remove it"]),
    ("truncated", ["cut.png", "truncated PNG", "re-save or remove it"]),
])
def test_image_folder_problems_are_found_when_the_dataset_is_built(folders, case, fragments):
    with pytest.raises(DataError) as info:
        make_dataset("image_folder", root=folders[case], image_size=8)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_png_damaged_inside_is_named_when_it_is_read(tmp_path):
    path = _png(tmp_path / "inside.png", size=32)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start:start + 40] = bytes(40)  # the compressed pixels, not the signature or the IEND chunk
    path.write_bytes(bytes(data))
    check_image_file(str(path))  # the cheap check cannot see inside the file
    dataset = make_dataset("image_folder", root=tmp_path, image_size=8)
    with pytest.raises(DataError, match=r"cannot decode .*inside\.png.*re-save or remove it"):
        dataset[0]


def test_a_png_with_data_after_its_end_and_a_jpeg_pass_the_check(tmp_path):
    path = _png(tmp_path / "appended.png")
    path.write_bytes(path.read_bytes() + b"trailing metadata")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "b.jpg")
    dataset = make_dataset("image_folder", root=tmp_path, image_size=8)
    assert len(dataset) == 2 and dataset[0][0].shape == (3, 8, 8) and dataset[1][0].shape == (3, 8, 8)


def test_a_batch_larger_than_the_dataset_says_both_sizes(folders):
    dataset = make_dataset("image_folder", root=folders["good"], image_size=8)
    with pytest.raises(DataError, match=r"dataset of 3 samples holds no full batch of 4 .*at most 3"):
        EpochBatches(dataset, 4)
    assert len(EpochBatches(dataset, 3)) == 1


IDDPM = ["--image_size", 16, "--num_channels", 32, "--num_res_blocks", 1, "--max_steps", 1]
DDGAN = ["--ch_mult", 1, 2, 2, 2, "--num_channels_dae", 8, "--attn_resolutions", 16, "--ngf", 2, "--nz", 4,
         "--z_emb_dim", 8, "--t_emb_dim", 8, "--num_res_blocks", 1, "--num_epoch", 1, "--max_steps", 1]


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["error: image folder", "missing", "does not exist"]),
    ("empty", ["error: image folder", "empty", "holds no images", ".png, .jpg, .jpeg"]),
    ("no_images", ["holds no images", ".png, .jpg, .jpeg"]),
    ("random_bytes", ["b.png", "neither a PNG nor a JPEG"]),
    ("truncated", ["cut.png", "truncated PNG"]),
])
def test_train_iddpm_refuses_an_image_folder_it_cannot_train_on(capsys, tmp_path, folders, case, fragments):
    argv = [*IDDPM, "--data_dir", folders[case], "--outdir", tmp_path / "run"]
    expect_user_error(capsys, "train", ["iddpm", *argv], 1, *fragments)


def test_train_iddpm_batch_larger_than_the_image_folder(capsys, tmp_path, folders):
    argv = [*IDDPM, "--data_dir", folders["good"], "--batch_size", 8, "--outdir", tmp_path / "run"]
    expect_user_error(capsys, "train", ["iddpm", *argv], 1, "dataset of 3 samples", "batch of 8", "--batch_size")


def test_train_ddgan_image_folder_with_a_corrupt_png(capsys, tmp_path, folders):
    argv = ["--dataset", "image_folder", "--data_root", folders["random_bytes"], "--image_size", 64,
            "--ch_mult", 1, 2, 2, 2, *DDGAN[5:], "--outdir", tmp_path / "run"]
    expect_user_error(capsys, "train", ["ddgan", *argv], 1, "b.png", "neither a PNG nor a JPEG")


@pytest.mark.parametrize("kind, argv", [
    ("ddgan", ["--dataset", "cifar10", "--data_root", "{root}", "--image_size", 32, *DDGAN]),
    ("iddpm", ["--dataset", "cifar10", "--data_dir", "{root}", "--image_size", 32, "--num_channels", 32,
               "--num_res_blocks", 1, "--max_steps", 1]),
])
def test_cifar10_without_batches_names_the_files_and_where_to_get_them(capsys, tmp_path, folders, kind, argv):
    argv = [folders["empty"] if a == "{root}" else a for a in argv] + ["--outdir", tmp_path / "run"]
    expect_user_error(capsys, "train", [kind, *argv], 1, "cifar-10-batches-py", "data_batch_1", "test_batch",
                      "cifar-10-python.tar.gz")


@pytest.mark.parametrize("kind, argv", [
    ("ddgan", ["--dataset", "digits", "--image_size", 16, "--batch_size", 2000, "--ch_mult", 1, 2, *DDGAN[5:]]),
    ("iddpm", ["--dataset", "digits", "--batch_size", 2000, *IDDPM]),
])
def test_batch_larger_than_the_digits_training_set(capsys, tmp_path, kind, argv):
    expect_user_error(capsys, "train", [kind, *argv, "--outdir", tmp_path / "run"], 1,
                      "dataset of 1437 samples", "batch of 2000", "lower --batch_size to at most 1437")


def test_a_damaged_lmdb_entry_names_its_key_and_environment(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    whole = _png(tmp_path / "whole.png", size=16).read_bytes()
    env = lmdb.open(str(tmp_path / "train.lmdb"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"0", whole)
        txn.put(b"1", whole[: len(whole) // 2])  # a truncated PNG, and not raw square RGB bytes either
    env.close()
    dataset = make_dataset("lmdb", root=tmp_path, image_size=8)
    assert dataset[0][0].shape == (3, 8, 8)
    with pytest.raises(DataError, match=r"entry b'1' of .*train\.lmdb.* cannot be decoded"):
        dataset[1]
