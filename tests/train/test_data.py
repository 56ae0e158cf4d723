"""Resumable per-epoch batches split across ranks like DistributedSampler."""

import pytest
import torch
from torch.utils.data import Dataset

from ddx.train import DistContext, EpochBatches


class CountingDataset(Dataset):
    """Returns its index; counts reads, so skipped batches can be shown unread."""

    def __init__(self, n: int):
        self.n, self.reads = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return torch.tensor(i)


def _epoch(batches: EpochBatches, epoch: int, start: int = 0) -> list[list[int]]:
    return [b.tolist() for b in batches.epoch(epoch, start)]


@pytest.mark.parametrize("n", [37, 40], ids=["ragged", "even"])
def test_ranks_see_the_single_process_global_batches(n):
    single = _epoch(EpochBatches(CountingDataset(n), 8, seed=5), epoch=2)
    ranks = [_epoch(EpochBatches(CountingDataset(n), 4, seed=5, ctx=DistContext(rank=r, world_size=2)), epoch=2)
             for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == n // 8
    for i, batch in enumerate(single):
        assert sorted(batch) == sorted(ranks[0][i] + ranks[1][i])


def test_start_mid_epoch_reads_only_the_rest():
    data = CountingDataset(23)
    batches = EpochBatches(data, 3, seed=1)
    full = _epoch(batches, 4)
    data.reads = 0
    assert _epoch(batches, 4, start=5) == full[5:]
    assert data.reads == 3 * (len(full) - 5)
    assert _epoch(batches, 4, start=len(batches)) == []


def test_order_depends_on_seed_and_epoch_only():
    batches = EpochBatches(CountingDataset(50), 5, seed=9)
    assert _epoch(batches, 0) == _epoch(EpochBatches(CountingDataset(50), 5, seed=9), 0)
    assert _epoch(batches, 0) != _epoch(batches, 1)
    assert _epoch(batches, 0) != _epoch(EpochBatches(CountingDataset(50), 5, seed=10), 0)
    assert sorted(sum(_epoch(batches, 3), [])) == list(range(50))


def test_iterating_does_not_touch_the_global_rng():
    state = torch.get_rng_state()
    list(EpochBatches(CountingDataset(12), 4, seed=0).epoch(0, 1))
    assert torch.equal(torch.get_rng_state(), state)


def test_workers_give_the_same_batches():
    batches = EpochBatches(CountingDataset(12), 4, seed=0, num_workers=1)
    assert _epoch(batches, 1, 1) == _epoch(EpochBatches(CountingDataset(12), 4, seed=0), 1, 1)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="dataset of 7 samples holds no full batch of 4 per rank on 2 rank"):
        EpochBatches(CountingDataset(7), 4, ctx=DistContext(rank=0, world_size=2))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        EpochBatches(CountingDataset(7), 0)
    with pytest.raises(ValueError, match=r"start_batch must be in \[0, 2\], got 3"):
        EpochBatches(CountingDataset(8), 4).epoch(0, 3)
    with pytest.raises(TypeError, match="map-style"):
        EpochBatches(iter(range(8)), 4)
