"""pytorch-fid's InceptionV3, built without ever downloading.

pytorch_fid.inception.fid_inception_v3() fetches its weights from GitHub on first use. Here the same
architecture (torchvision's inception_v3 with 1008 classes and pytorch-fid's FID blocks) is assembled with no
weights, then loaded from a local file: a given path, else the torch hub cache where pytorch-fid itself would
have put it. pytorch_fid's InceptionV3 wrapper (resize to 299, blocks, output taps) is used unchanged.
"""

from __future__ import annotations

import os
from unittest import mock

import pytorch_fid.inception as pfi
import torch
import torchvision
from pytorch_fid.inception import InceptionV3

INCEPTION_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_DIMS = tuple(sorted(InceptionV3.BLOCK_INDEX_BY_DIM))


class InceptionWeightsNotFoundError(FileNotFoundError):
    """The FID Inception weights file is not on this machine."""


def default_inception_weights_path() -> str:
    """Where pytorch-fid's downloader would cache the weights: torch.hub.get_dir()/checkpoints/<file>."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", INCEPTION_WEIGHTS_FILENAME)


def resolve_inception_weights(weights_path: str | os.PathLike | None = None) -> str:
    """The weights file to load: `weights_path` if given, else the hub cache; a clear error if it is absent."""
    path = default_inception_weights_path() if weights_path is None else os.fspath(weights_path)
    if not os.path.isfile(path):
        source = "the given weights_path" if weights_path is not None else "the torch hub cache"
        raise InceptionWeightsNotFoundError(
            f"FID Inception weights not found at {path!r} ({source}); ddx never downloads. Get "
            f"{INCEPTION_WEIGHTS_FILENAME} from {pfi.FID_WEIGHTS_URL} on a machine with internet access and either "
            f"put it at {default_inception_weights_path()!r} or pass its path as weights_path"
        )
    return path


def _fid_backbone() -> torch.nn.Module:
    """The architecture of pytorch_fid.inception.fid_inception_v3(), with PyTorch's default initialisation."""
    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def _wrap(backbone: torch.nn.Module, dims: int) -> InceptionV3:
    if dims not in InceptionV3.BLOCK_INDEX_BY_DIM:
        raise ValueError(f"dims must be one of {INCEPTION_DIMS} (pytorch-fid's feature taps), got {dims}")
    # InceptionV3.__init__ calls fid_inception_v3(), which would download; hand it the backbone instead.
    with mock.patch.object(pfi, "fid_inception_v3", lambda: backbone):
        model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[dims]], resize_input=True, normalize_input=True)
    return model.eval()


def load_inception(weights_path: str | os.PathLike | None = None, dims: int = 2048) -> InceptionV3:
    """pytorch-fid's InceptionV3 (eval mode, CPU) with the FID weights from a local file; see resolve_inception_weights."""
    path = resolve_inception_weights(weights_path)
    backbone = _fid_backbone()
    backbone.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return _wrap(backbone, dims)


def random_inception(dims: int = 2048, seed: int = 0) -> InceptionV3:
    """The same network with random weights (for tests: runs the pipeline, measures nothing meaningful)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = _fid_backbone()
    return _wrap(backbone, dims)
