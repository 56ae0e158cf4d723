"""Epochs of batches that can start at any (epoch, batch index) without reading the skipped batches.

The order of an epoch is torch's DistributedSampler's: a permutation seeded with ``seed + epoch``,
cut to a multiple of the world size, rank ``r`` taking every ``world_size``-th index from ``r``.
So a single process with batch ``B * W`` sees, batch by batch, the union of what ``W`` ranks with
batch ``B`` see. Only full batches are used (drop_last).

Exactness of resume: with ``num_workers=0`` any randomness in the dataset's ``__getitem__`` comes from
the main process's generators, which the loop checkpoints. With workers, a resumed epoch hands
batches to workers in a different rotation, so per-worker randomness is not reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ddx.train.distributed import DistContext
from ddx.utils.checks import check_positive_int
from ddx.utils.errors import DataError


class EpochBatches:
    """Per-rank batches of a map-style dataset, epoch by epoch.

    Args:
        dataset: a map-style Dataset (``__len__`` and ``__getitem__``).
        batch_size: samples per batch on this rank (the global batch is ``batch_size * world_size``).
        seed: seeds the per-epoch permutation (the same on every rank).
        ctx: rank and world size (default: a single process).
        shuffle: permute each epoch (else dataset order).
        num_workers, collate_fn, pin_memory: passed to the DataLoader that reads the batches.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, ctx: DistContext | None = None,
                 shuffle: bool = True, num_workers: int = 0, collate_fn: Callable[[list], Any] | None = None,
                 pin_memory: bool = False):
        ctx = ctx if ctx is not None else DistContext()
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset must be map-style (__len__ and __getitem__), got {type(dataset).__name__}")
        check_positive_int(batch_size, "batch_size")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
        if len(dataset) < batch_size * ctx.world_size:
            # Only full batches are used (drop_last, as the official DataLoaders): an epoch would be empty.
            raise DataError(
                f"dataset of {len(dataset)} samples holds no full batch of {batch_size} per rank on "
                f"{ctx.world_size} rank(s) ({batch_size * ctx.world_size} samples a step): every epoch would "
                f"have no batch, as only full batches are used; lower --batch_size to at most "
                f"{len(dataset) // ctx.world_size} or use more data"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                          shuffle=shuffle, seed=seed, drop_last=True)

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""
        return len(self.sampler) // self.batch_size

    def indices(self, epoch: int) -> list[int]:
        """This rank's sample indices of ``epoch``, in order (full batches only)."""
        self.sampler.set_epoch(epoch)
        return list(self.sampler)[: len(self) * self.batch_size]

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Any]:
        """Yield the batches of ``epoch`` from index ``start_batch`` (skipped ones are never read)."""
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"start_batch must be in [0, {len(self)}], got {start_batch}")
        order = self.indices(epoch)
        batches = [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(start_batch, len(self))]
        if not batches:
            return iter(())
        # A seeded generator keeps the DataLoader from drawing its worker base seed from the global
        # RNG, which would shift the training noise depending on where an epoch (re)started.
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                            collate_fn=self.collate_fn, pin_memory=self.pin_memory, generator=generator)
        return iter(loader)
