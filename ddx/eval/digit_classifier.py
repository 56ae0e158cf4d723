"""ddx's own digit classifier: a small CNN on one channel of the digits preset, used to count stacked-digit modes.

Trained on the 1,437 training digits (inputs exactly as the dataset gives them, one channel, [-1, 1]) with
random shifts of up to one pixel; its accuracy on the 360 held-out digits is measured and stored with it.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddx.data.common import Split
from ddx.data.digits import DEFAULT_DIGITS_SIZE, digits_tensor
from ddx.checkpoints.io import CheckpointError, atomic_save, load_checkpoint
from ddx.utils.progress import Progress

CLASSIFIER_FORMAT = "ddx-digit-classifier-v1"


class DigitClassifier(nn.Module):
    """x float (N, 1, S, S) in [-1, 1] -> logits (N, 10); S divisible by 4."""

    def __init__(self, image_size: int = DEFAULT_DIGITS_SIZE):
        super().__init__()
        if image_size % 4 != 0:
            raise ValueError(f"DigitClassifier needs an image_size divisible by 4 (two 2x poolings), got {image_size}")
        self.image_size = image_size
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * (image_size // 4) ** 2, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """x float (N, 1, S, S) -> predicted digit int64 (N,), in eval mode; values clamped to [-1, 1]."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        preds = [self(chunk.to(device, torch.float32).clamp(-1, 1)).argmax(1).cpu() for chunk in x.split(batch_size)]
        self.train(was_training)
        return torch.cat(preds)


def _shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Each image moved by a random offset in [-max_shift, max_shift]^2, background (-1) filling in."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    rows = (offsets[:, :1] + torch.arange(h))[:, None, :, None].expand(n, 1, h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (offsets[:, 1:] + torch.arange(w))[:, None, None, :].expand(n, 1, h, w)
    return out.gather(3, cols)


@contextlib.contextmanager
def _one_thread():
    """Intra-op threads off for the duration: on these tiny convolutions, thread hand-offs cost more than they
    give (5-10x slower with 2 threads on a loaded 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def heldout_accuracy(model: DigitClassifier) -> float:
    """Fraction of the 360 held-out digits classified correctly."""
    images, labels = digits_tensor(Split.HELDOUT, model.image_size)
    return (model.predict(images[:, :1]) == labels).float().mean().item()


def train_digit_classifier(
    path: str | os.PathLike | None = None,
    image_size: int = DEFAULT_DIGITS_SIZE,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    verbose: bool = True,
) -> tuple[DigitClassifier, float]:
    """Train on the digits training split; returns (model in eval mode, held-out accuracy); saves to path if given."""
    generator = torch.Generator().manual_seed(seed)
    images, labels = digits_tensor(Split.TRAIN, image_size)
    images = images[:, :1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitClassifier(image_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    progress = Progress(epochs, "digit classifier training, epoch", unit="epoch", enabled=verbose)
    model.train()
    with _one_thread():
        for _ in range(epochs):
            order = torch.randperm(images.shape[0], generator=generator)
            for idx in order.split(batch_size):
                loss = F.cross_entropy(model(_shift(images[idx], generator)), labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            scheduler.step()
            progress.update(1, extra=f"loss {loss.item():.4f}")
        model.eval()
        accuracy = heldout_accuracy(model)
    progress.close(extra=f"held-out accuracy {accuracy:.4f}")
    if path is not None:
        save_digit_classifier(model, accuracy, path)
    return model, accuracy


def save_digit_classifier(model: DigitClassifier, accuracy: float, path: str | os.PathLike) -> None:
    """Write the classifier atomically (folders created): processes racing to create the cache never
    leave or read a partial file."""
    payload = {"format": CLASSIFIER_FORMAT, "image_size": model.image_size, "heldout_accuracy": accuracy,
               "state_dict": model.state_dict()}
    atomic_save(payload, path, make_parents=True)


def load_digit_classifier(path: str | os.PathLike) -> tuple[DigitClassifier, float]:
    """(model in eval mode, its stored held-out accuracy) from a file written by train_digit_classifier.

    FileNotFoundError when there is no file, CheckpointError when it is corrupt or holds objects
    other than tensors and plain values, ValueError when it is another kind of file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no digit classifier at {path!r}: create it with train_digit_classifier(path)")
    try:
        payload = load_checkpoint(path)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; delete it and get_digit_classifier() trains a new one") from err
    if not isinstance(payload, dict) or payload.get("format") != CLASSIFIER_FORMAT:
        raise ValueError(f"{path!r} is not a ddx digit classifier file ({CLASSIFIER_FORMAT})")
    model = DigitClassifier(int(payload["image_size"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), float(payload["heldout_accuracy"])


def default_classifier_path(image_size: int = DEFAULT_DIGITS_SIZE) -> str:
    """$XDG_CACHE_HOME/ddx (default ~/.cache/ddx)/digit_classifier_<S>px.pt."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "ddx", f"digit_classifier_{image_size}px.pt")


def get_digit_classifier(
    path: str | os.PathLike | None = None, image_size: int = DEFAULT_DIGITS_SIZE, verbose: bool = True
) -> DigitClassifier:
    """The cached classifier at path (default: default_classifier_path), trained and saved on first use."""
    path = default_classifier_path(image_size) if path is None else os.fspath(path)
    if os.path.isfile(path):
        model, accuracy = load_digit_classifier(path)
        if model.image_size != image_size:
            raise ValueError(f"the classifier at {path!r} is for {model.image_size}px images, not {image_size}px")
    else:
        model, accuracy = train_digit_classifier(path, image_size, verbose=verbose)
    if verbose:
        print(f"digit classifier {path}: held-out accuracy {accuracy:.4f}")
    return model
