"""CIFAR-10 batches are read by an unpickler that builds only what the batches hold, never code."""

import io
import os
import pickle

import numpy as np
import pytest

from ddx.data import load_cifar10_uint8
from ddx.data.cifar10 import CIFAR10_FILES, SafeBatchUnpickler
from ddx.data.common import Split
from ddx.utils.errors import DataError


class _Python2StrPickler(pickle._Pickler):
    """Writes bytes as Python 2 str (opcodes U / T), as the official batches, pickled by Python 2, hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _official_like_batch(data, labels):
    """Protocol 2, bytes keys and array bytes as Python 2 str, numpy named numpy.core (as Python 2's numpy did)."""
    entry = {b"batch_label": b"training batch 1 of 5", b"data": data, b"labels": labels,
             b"filenames": [b"x.png"] * len(labels)}
    buffer = io.BytesIO()
    _Python2StrPickler(buffer, protocol=2).dump(entry)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _write_root(tmp_path, payload_for):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in CIFAR10_FILES[Split.TRAIN] + CIFAR10_FILES[Split.HELDOUT]:
        (folder / name).write_bytes(payload_for(name))
    return tmp_path


def test_official_python2_protocol2_batches_are_read(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    labels = [7, 0, 9]
    payload = _official_like_batch(data, labels)
    assert b"cnumpy.core.multiarray\n_reconstruct" in payload and b"_codecs" not in payload
    root = _write_root(tmp_path, lambda name: payload)
    images, read_labels = load_cifar10_uint8(root, Split.HELDOUT)
    np.testing.assert_array_equal(images.reshape(-1, 3072).numpy(), data)
    assert read_labels.tolist() == labels


@pytest.mark.parametrize("protocol", [2, 4])
def test_python3_pickles_of_a_batch_are_read(tmp_path, protocol):
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    payload = pickle.dumps({"data": data, "labels": [1, 2], "filenames": ["a.png", "b.png"]}, protocol=protocol)
    root = _write_root(tmp_path, lambda name: payload)
    images, labels = load_cifar10_uint8(root, Split.TRAIN)
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == [1, 2] * 5


class _RunsCode:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("func_name", ["os.system", "builtins.eval", "builtins.exec"])
def test_a_batch_that_would_run_code_is_refused_before_it_runs(tmp_path, func_name):
    marker = tmp_path / "pwned"
    command = {
        "os.system": (os.system, f"touch {marker}"),
        "builtins.eval": (eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": (exec, f"open({str(marker)!r}, 'w').close()"),
    }[func_name]
    evil = pickle.dumps({"data": _RunsCode(*command), "labels": [0]}, protocol=2)
    root = _write_root(tmp_path, lambda name: evil)
    with pytest.raises(DataError) as info:
        load_cifar10_uint8(root, Split.TRAIN)
    message = str(info.value)
    assert "data_batch_1" in message and "refused" in message
    # the global as the file names it (posix.system; __builtin__.eval in a protocol-2 pickle)
    assert f".{func_name.split('.')[1]}," in message
    assert not marker.exists()


def test_refused_globals_include_numpy_functions_other_than_the_array_constructors():
    evil = pickle.dumps(_RunsCode(np.load, "x.npy"), protocol=2)
    with pytest.raises(DataError, match="numpy.*load"):
        SafeBatchUnpickler(io.BytesIO(evil), "fake").load()


def test_a_truncated_batch_is_a_data_error_naming_the_file(tmp_path):
    payload = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, protocol=2)
    root = _write_root(tmp_path, lambda name: payload[: len(payload) // 2])
    with pytest.raises(DataError, match="test_batch.*not a readable CIFAR-10 python batch"):
        load_cifar10_uint8(root, Split.HELDOUT)


def test_a_folder_without_batches_names_the_files_and_where_to_get_them(tmp_path):
    with pytest.raises(DataError) as info:
        load_cifar10_uint8(tmp_path, Split.TRAIN)
    message = str(info.value)
    for fragment in ("cifar-10-batches-py", "data_batch_1", "test_batch", "cifar-10-python.tar.gz", "never downloads"):
        assert fragment in message
