"""Which samples each rank trains on, in which order, and the loaders that deliver them.

The order is a pure function of ``(seed, epoch)``, and the loaders leave the global RNG
alone, so a resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from facemark.train.stop import ignore_sigint


class EpochSampler(Sampler[int]):
    """Shuffled sample order that depends only on ``(seed, epoch)``.

    Each rank takes every ``world_size``-th sample of the permutation and only full batches,
    so all ranks run the same number of steps.  ``skip_batches`` resumes mid-epoch on
    exactly the batches that were not yet trained on.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        weights: np.ndarray | None = None,
    ) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        #: per-sample draw weights: an epoch is ``size`` draws with replacement instead of a
        #: permutation, so rare samples come up more often
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.steps = (size // world_size) // batch_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip_batches)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is None:
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.multinomial(self.weights, self.size, replacement=True, generator=g)
        mine = order[self.rank :: self.world_size]
        return iter(mine[self.skip * self.batch_size : self.steps * self.batch_size].tolist())

    def __len__(self) -> int:
        return max(self.steps - self.skip, 0) * self.batch_size


def make_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    seed: int,
    sampler: Sampler | None = None,
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        drop_last=sampler is not None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=ignore_sigint if workers > 0 else None,
        collate_fn=getattr(dataset, "collate_fn", None),
        # An explicit generator keeps DataLoader from drawing on the global RNG, which a
        # resumed run must find exactly as it was saved.
        generator=torch.Generator().manual_seed(seed),
    )
