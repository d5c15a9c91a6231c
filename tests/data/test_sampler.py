"""EpochSampler against torch's DistributedSampler and an independent re-implementation of
DeiT's RASampler (facebookresearch/deit samplers.py), and its resume rule at every position."""
import math

import pytest
import torch
from torch.utils.data import DistributedSampler

from archdsl.data.sampler import EpochSampler
from archdsl.lang.errors import DataError


def deit_rasampler(n, num_replicas, rank, epoch):
    """DeiT's RASampler.__iter__, written from its definition: seed the generator with the
    epoch, repeat each index 3 times, pad to a multiple of the world, deal by rank, keep
    floor(n // 256 * 256 / world)."""
    g = torch.Generator()
    g.manual_seed(epoch)
    indices = torch.randperm(n, generator=g).tolist()
    num_samples = int(math.ceil(n * 3.0 / num_replicas))
    total_size = num_samples * num_replicas
    indices = [ele for ele in indices for _ in range(3)]
    indices += indices[:(total_size - len(indices))]
    indices = indices[rank:total_size:num_replicas]
    return indices[:int(math.floor(n // 256 * 256 / num_replicas))]


def take(sampler):
    return [i for i, _ in sampler]


def ranks(n, world, epoch=0, position=0, **kw):
    out = []
    for r in range(world):
        s = EpochSampler(n, world=world, rank=r, **kw)
        s.set_epoch(epoch)
        s.set_position(position)
        out.append(take(s))
    return out


@pytest.mark.parametrize("n", [1, 7, 10, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("drop_last", [True, False])
def test_equals_distributed_sampler(n, world, drop_last):
    for r in range(world):
        ours = EpochSampler(n, world=world, rank=r, seed=11, drop_last=drop_last)
        ref = DistributedSampler(range(n), num_replicas=world, rank=r, seed=11, drop_last=drop_last)
        for epoch in (0, 4):
            ours.set_epoch(epoch), ref.set_epoch(epoch)
            assert take(ours) == list(ref) and len(ours) == len(ref)


@pytest.mark.parametrize("n, world", [(256, 1), (300, 2), (777, 3), (1000, 4), (513, 8)])
def test_repeats_3_is_deits_rasampler(n, world):
    for epoch in (0, 1, 5):
        for r in range(world):
            s = EpochSampler(n, world=world, rank=r, seed=0, repeats=3)
            s.set_epoch(epoch)
            got = list(s)
            assert [i for i, _ in got] == deit_rasampler(n, world, r, epoch)
            assert {e for _, e in got} == {epoch} and len(s) == len(got)


@pytest.mark.parametrize("n, world", [(10, 1), (11, 3), (64, 4)])
def test_one_epoch_over_the_ranks_has_no_duplicate_and_loses_only_the_drop_last_tail(n, world):
    per = ranks(n, world, epoch=2, seed=3)
    assert len({len(p) for p in per}) == 1  # every rank the same count (DDP in lockstep)
    union = [i for p in per for i in p]
    assert len(union) == len(set(union)) == n - n % world
    order = EpochSampler(n, world=world, seed=3)
    order.set_epoch(2)
    assert set(union) == set(order.order()[: n - n % world].tolist())


@pytest.mark.parametrize("repeats, n", [(1, 23), (3, 300)])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_resume_at_every_position_continues_the_uninterrupted_order(repeats, n, world):
    full = ranks(n, world, epoch=1, seed=5, repeats=repeats)
    steps = len(full[0])
    for j in range(steps + 1):  # each rank has read j samples: j * world global
        resumed = ranks(n, world, epoch=1, position=j * world, seed=5, repeats=repeats)
        assert resumed == [f[j:] for f in full]


@pytest.mark.parametrize("repeats, n", [(1, 29), (3, 300)])
@pytest.mark.parametrize("before, after", [(2, 3), (3, 2), (4, 1), (1, 4)])
def test_a_new_world_size_reads_the_rest_of_the_same_order(repeats, n, before, after):
    s = EpochSampler(n, world=before, seed=9, repeats=repeats)
    s.set_epoch(3)
    order = s.order().tolist()
    full = ranks(n, before, epoch=3, seed=9, repeats=repeats)
    for j in (0, 1, len(full[0]) // 2, len(full[0])):
        p = j * before
        read = [i for k in range(j) for f in full for i in f[k:k + 1]]
        rest = ranks(n, after, epoch=3, position=p, seed=9, repeats=repeats)
        assert len({len(r) for r in rest}) == 1
        dealt = [rest[r][k] for k in range(len(rest[0])) for r in range(after)]
        assert read + dealt == order[: len(read) + len(dealt)]  # a prefix: no duplicate, no gap
        end = (n if repeats == 1 else n // 256 * 256 // after * after)
        assert len(read) + len(dealt) > end - after


def test_epochs_differ_and_seeds_differ():
    a = EpochSampler(50, seed=1)
    e0 = take(a)
    a.set_epoch(1)
    assert take(a) != e0 and sorted(take(a)) == sorted(e0) == list(range(50))
    assert take(EpochSampler(50, seed=2)) != e0


def test_refusals():
    with pytest.raises(DataError) as e:
        EpochSampler(255, repeats=3)
    assert e.value.code == "E703" and "RASampler" in e.value.message
    assert len(EpochSampler(300, world=2, repeats=3)) == 128  # 256 // 2 per rank
    with pytest.raises(ValueError):
        EpochSampler(10, world=2, rank=2)
