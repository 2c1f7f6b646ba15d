"""A sampler whose order is a pure function of (seed, epoch), so a run killed mid-epoch resumes on the next sample.

Lightning 2 does not restore a plain DataLoader's position: a run resumed from a mid-epoch checkpoint would
start the epoch's data again from a fresh shuffle. ``ResumableSampler`` draws each epoch's permutation from
its own generator seeded with ``(seed, epoch)``; Lightning calls ``set_epoch`` before every epoch, and the
sampler's ``state_dict()`` (the seed, the epoch and how many samples the loop has consumed) goes into the
checkpoint through ``ZooDataModule.state_dict``. The global RNG is never touched, so shuffling neither
depends on nor disturbs what the model draws (dropout, augmentation).

    >>> sampler = ResumableSampler(10, seed=0)
    >>> first = list(sampler)
    >>> sampler.load_state_dict({"seed": 0, "epoch": 0, "position": 4})
    >>> list(sampler) == first[4:]
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

__all__ = ["ResumableDataLoader", "ResumableSampler", "default_seed"]


def default_seed() -> int:
    """The seed Lightning's ``seed_everything`` recorded (``PL_GLOBAL_SEED``), else one drawn from the global RNG."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    if seed is not None:
        return int(seed)
    return int(torch.randint(0, 2**31 - 1, ()).item())


class ResumableSampler(Sampler[int]):
    """Indices ``0 .. num_samples - 1``, shuffled per epoch from ``(seed, epoch)``, resumable mid-epoch.

    Args:
        num_samples: size of the dataset.
        shuffle: a new permutation every epoch; False keeps the natural order.
        seed: seed of the permutations; None takes ``default_seed()`` (Lightning's ``seed_everything``).
    """

    def __init__(self, num_samples: int, *, shuffle: bool = True, seed: int | None = None) -> None:
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = default_seed() if seed is None else int(seed)
        self.epoch = 0
        self._resume_at: tuple[int, int] | None = None  # (epoch, position) of a restored state, applied once

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch (``_set_sampler_epoch``)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> torch.Tensor:
        """The (num_samples,) order of ``epoch``: the same for the same (seed, epoch), whatever ran before."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        return torch.randperm(self.num_samples, generator=generator)

    def __iter__(self) -> Iterator[int]:
        start = 0
        if self._resume_at is not None:
            epoch, position = self._resume_at
            self._resume_at = None
            if epoch == self.epoch:
                start = position
        yield from self.order(self.epoch)[start:].tolist()

    # -- resume ---------------------------------------------------------------------------------------
    def state_dict(self, position: int = 0) -> dict[str, Any]:
        """``{"seed", "epoch", "position"}``: ``position`` samples of ``epoch`` were consumed.

        The sampler cannot count them itself: a loader's iterator runs ahead of the training loop (Lightning
        prefetches a batch), so the caller says how many the loop has used.
        """
        return {"seed": self.seed, "epoch": self.epoch, "position": int(position)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: the next iteration of epoch ``state["epoch"]`` starts at ``state["position"]``.

        A position at the end of the data means that epoch is over: the next one starts from its beginning.
        """
        self.seed = int(state["seed"])
        epoch, position = int(state["epoch"]), int(state["position"])
        if position >= self.num_samples:
            epoch, position = epoch + 1, 0
        self.epoch = epoch
        self._resume_at = (epoch, position)


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``ResumableSampler`` that Lightning treats as resumable: it saves ``state_dict()`` in
    each checkpoint (``loops.fit_loop.state_dict.combined_loader``) and calls ``load_state_dict`` on resume.

    Args:
        *args: ``DataLoader``'s; its ``sampler`` is a ``ResumableSampler`` (another one makes it stateless).
        consumed: returns how many samples of the current epoch the training loop has used (None: 0).
        **kwargs: ``DataLoader``'s.
    """

    def __init__(self, *args: Any, consumed: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consumed = consumed

    def state_dict(self) -> dict[str, Any]:
        if not isinstance(self.sampler, ResumableSampler):  # Lightning swapped it (overfit_batches): nothing to resume
            return {}
        return self.sampler.state_dict(position=self.consumed() if self.consumed is not None else 0)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict and isinstance(self.sampler, ResumableSampler):
            self.sampler.load_state_dict(state_dict)
