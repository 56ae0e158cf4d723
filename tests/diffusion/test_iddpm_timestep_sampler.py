"""Timestep samplers: uniform weights, the loss-second-moment warm-up and weights, rank synchronisation."""

import os
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ddx.diffusion import LossSecondMomentResampler, UniformSampler, create_gaussian_diffusion, create_named_schedule_sampler
from ddx.diffusion.timestep_sampler import gather_sizes_and_values, unpad


def test_uniform_sampler():
    diffusion = create_gaussian_diffusion(steps=50)
    sampler = create_named_schedule_sampler("uniform", diffusion)
    assert isinstance(sampler, UniformSampler)
    np.testing.assert_array_equal(sampler.weights(), np.ones(50))
    t, w = sampler.sample(7, "cpu", rng=np.random.default_rng(0))
    assert t.dtype == torch.int64 and t.shape == (7,) and 0 <= t.min() and t.max() < 50
    assert w.dtype == torch.float32 and torch.equal(w, torch.ones(7))


def test_sample_uses_numpys_global_rng_by_default():
    sampler = UniformSampler(30)
    np.random.seed(3)
    t, _ = sampler.sample(5, "cpu")
    np.random.seed(3)
    assert t.tolist() == np.random.choice(30, size=(5,), p=np.full(30, 1 / 30)).tolist()


def warmed_sampler(num_timesteps=4, history=3, uniform_prob=0.0):
    sampler = LossSecondMomentResampler(num_timesteps, history_per_term=history, uniform_prob=uniform_prob)
    for _ in range(history):
        sampler.update_with_all_losses(list(range(num_timesteps)), [float(t + 1) for t in range(num_timesteps)])
    return sampler


def test_loss_second_moment_is_uniform_until_every_history_is_full():
    sampler = LossSecondMomentResampler(4, history_per_term=3)
    for _ in range(3):
        sampler.update_with_all_losses([0, 1, 2], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(sampler.weights(), np.ones(4))
    sampler.update_with_all_losses([3, 3], [4.0, 4.0])
    np.testing.assert_array_equal(sampler.weights(), np.ones(4))
    sampler.update_with_all_losses([3], [4.0])
    np.testing.assert_allclose(sampler.weights(), np.arange(1, 5) / 10.0 * 0.999 + 0.001 / 4, rtol=1e-12)


def test_loss_second_moment_weights_and_history_shift():
    sampler = warmed_sampler(uniform_prob=0.0)
    np.testing.assert_allclose(sampler.weights(), np.arange(1, 5) / 10.0, rtol=1e-12)
    # A fourth loss at t=0 shifts out the oldest one: history [1, 1, 7].
    sampler.update_with_all_losses([0], [7.0])
    np.testing.assert_allclose(sampler._loss_history[0], [1.0, 1.0, 7.0])
    rms0 = np.sqrt((1 + 1 + 49) / 3)
    expected = np.array([rms0, 2, 3, 4]) / (rms0 + 9)
    np.testing.assert_allclose(sampler.weights(), expected, rtol=1e-12)


def test_importance_weights_are_one_over_T_p():
    sampler = warmed_sampler(uniform_prob=0.0)
    t, w = sampler.sample(200, "cpu", rng=np.random.default_rng(1))
    p = np.arange(1, 5) / 10.0
    torch.testing.assert_close(w, torch.from_numpy(1 / (4 * p[t.numpy()])).float())
    counts = np.bincount(t.numpy(), minlength=4)
    assert counts[3] > counts[0]


def test_update_with_local_losses_single_process():
    sampler = LossSecondMomentResampler(3, history_per_term=2)
    sampler.update_with_local_losses(torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1.0, 2.0, 2.0, 3.0, 4.0, 4.0]))
    np.testing.assert_allclose(sampler._loss_history, [[1, 3], [2, 4], [2, 4]])
    with pytest.raises(ValueError, match="1-D of one length"):
        sampler.update_with_local_losses(torch.tensor([0, 1]), torch.tensor([1.0]))


def test_unpad_drops_the_padding_of_each_rank():
    batches = [torch.tensor([1, 2, 0]), torch.tensor([3, 4, 5])]
    assert unpad(batches, [2, 3]) == [1, 2, 3, 4, 5]


def _rank_main(rank, init_file, result_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    sampler = LossSecondMomentResampler(4, history_per_term=2)
    # Different batch sizes per rank: rank 0 has 3 losses, rank 1 has 5.
    ts = [torch.tensor([0, 1, 2]), torch.tensor([3, 3, 2, 1, 0])][rank]
    losses = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0, 6.0, 7.0, 8.0])][rank]
    sampler.update_with_local_losses(ts, losses)
    np.save(os.path.join(result_dir, f"history{rank}.npy"), sampler._loss_history)
    dist.destroy_process_group()


def test_update_with_local_losses_syncs_two_gloo_ranks():
    with tempfile.TemporaryDirectory() as tmp:
        # fork: the ranks inherit the imported modules instead of importing torch again (seconds each).
        mp.start_processes(_rank_main, args=(os.path.join(tmp, "init"), tmp), nprocs=2, join=True, start_method="fork")
        histories = [np.load(os.path.join(tmp, f"history{rank}.npy")) for rank in range(2)]
    expected = [[1.0, 8.0], [2.0, 7.0], [3.0, 6.0], [4.0, 5.0]]
    for history in histories:
        np.testing.assert_array_equal(history, expected)


def test_gather_pads_unequal_batches(monkeypatch):
    """The gather logic with a simulated second rank: all_gather sees equal shapes, the result is unpadded."""
    size = torch.tensor([5], dtype=torch.int32)
    other_rank = iter([size, torch.tensor([3, 3, 2, 1, 0]), torch.tensor([4.0, 5.0, 6.0, 7.0, 8.0])])

    def all_gather(outputs, tensor):
        other = next(other_rank)
        assert len(tensor) >= len(other), "every rank must pad to the largest batch"
        outputs[0].copy_(tensor)
        outputs[1].zero_()[: len(other)] = other

    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_gather", all_gather)
    ts, losses = gather_sizes_and_values(torch.tensor([0, 1, 2]), torch.tensor([1.0, 2.0, 3.0]))
    assert ts == [0, 1, 2, 3, 3, 2, 1, 0]
    assert losses == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_bad_sampler_inputs_raise():
    with pytest.raises(ValueError, match="unknown schedule sampler"):
        create_named_schedule_sampler("importance", 10)
    with pytest.raises(ValueError, match="positive number of timesteps"):
        UniformSampler(0)
    assert isinstance(create_named_schedule_sampler("loss-second-moment", 10), LossSecondMomentResampler)
