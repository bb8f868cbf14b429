"""In-memory batch source: tensors held once, batches cut by slicing.

A ``DataLoader`` over a ``TensorDataset`` calls ``__getitem__`` per sample and collates every
batch, which costs more than the small MLP's forward and backward. :class:`TensorBatches`
instead permutes the whole split once per epoch (one gather) and yields contiguous slices, so a
batch costs two view operations. It has ``__len__`` so Lightning knows the batches per epoch,
and it can be iterated again for every epoch.

Under data-parallel training each rank takes every ``world_size``-th sample of the same
epoch order (the same seed on every rank gives the same permutation); the last
``n % world_size`` samples are dropped so every rank runs the same number of batches.

Example:
    >>> import torch
    >>> batches = TensorBatches(torch.zeros(10, 3), torch.zeros(10), batch_size=4)
    >>> len(batches), [len(y) for _, y in batches]
    (3, [4, 4, 2])
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ktrdr_lib.errors import ConfigError, DataError

__all__ = ["TensorBatches", "cut_windows"]


class TensorBatches:
    """Re-iterable batches of ``(x, y)`` sliced from tensors held in memory.

    Args:
        x: features, shape ``(n, n_features)``.
        y: labels, shape ``(n,)``.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: draw a new seeded permutation every epoch (training); otherwise keep order.
        seed: seed of the permutation generator; epoch ``k`` always gets the same order.
        rank: this process's rank under data-parallel training.
        world_size: number of ranks sharing the data.
        weights: per-sample sampling weights; with ``shuffle``, each epoch draws its ``n``
            samples with replacement in proportion to them (weighted random sampling) instead
            of a permutation.
        source: for a recurrent model, the feature rows ``(rows, n_features)`` its windows are
            cut from; ``x`` then holds each sample's window end (an int64 row position) and a
            batch is the ``window`` rows ending at each, ``(batch, window, n_features)``, cut
            from a strided view of ``source`` in one gather.
        window: rows per window (with ``source``).

    Raises:
        ConfigError: for a batch size < 1 or an invalid rank.
        DataError: when ``x`` and ``y`` disagree in length.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        weights: Tensor | None = None,
        source: Tensor | None = None,
        window: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(
                f"model.training.batch_size must be ≥ 1; got {batch_size}. Set a positive "
                "batch size in the strategy's model.training section."
            )
        _check_rank(rank, world_size)
        if x.shape[0] != y.shape[0]:
            raise DataError(
                f"features and labels differ in length ({x.shape[0]} vs {y.shape[0]}); build "
                "both from the same rows."
            )
        self.x = x
        self.y = y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        if weights is not None and (
            weights.shape != (x.shape[0],) or not bool((weights >= 0).all())
        ):
            raise DataError(
                f"sampling weights must be one non-negative number per sample ({x.shape[0]}); "
                f"got shape {tuple(weights.shape)}"
            )
        self.weights = weights
        if source is not None and window < 1:
            raise ConfigError(f"windows need a length of at least 1 row; got {window}")
        self.source = source
        self.window = window
        self._epoch = 0

    def place(self, device: torch.device, *, rank: int = 0, world_size: int = 1) -> None:
        """Move the tensors to ``device`` and take rank ``rank``'s share of ``world_size``.

        For a source built before the trainer knew its device and ranks.

        Raises:
            ConfigError: for an invalid rank.
        """
        _check_rank(rank, world_size)
        self.x = self.x.to(device)
        self.y = self.y.to(device)
        if self.source is not None:
            self.source = self.source.to(device)
        self.rank = rank
        self.world_size = world_size

    @property
    def samples(self) -> int:
        """Samples this rank sees per epoch."""
        return int(self.x.shape[0]) // self.world_size

    def begin_at_epoch(self, epoch: int) -> None:
        """Continue as if ``epoch`` epochs had been drawn already (a resumed run draws the
        permutation the uninterrupted run would have drawn next)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch (``ceil(samples / batch_size)``)."""
        return -(-self.samples // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        x, y = self._epoch_order()
        self._epoch += 1
        for start in range(0, x.shape[0], self.batch_size):
            stop = start + self.batch_size
            if self.source is None:
                yield x[start:stop], y[start:stop]
            else:
                yield cut_windows(self.source, x[start:stop], self.window), y[start:stop]

    def _epoch_order(self) -> tuple[Tensor, Tensor]:
        """This epoch's samples for this rank, gathered once so batches are plain slices."""
        n = int(self.x.shape[0])
        if not self.shuffle and self.world_size == 1:
            return self.x, self.y
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self._epoch)
            if self.weights is not None:
                drawn = torch.multinomial(self.weights, n, replacement=True, generator=generator)
                order = drawn.to(self.x.device)
            else:
                order = torch.randperm(n, generator=generator).to(self.x.device)
        else:
            order = torch.arange(n, device=self.x.device)
        order = order[self.rank : self.samples * self.world_size : self.world_size]
        return self.x[order], self.y[order]


def cut_windows(source: Tensor, ends: Tensor, window: int) -> Tensor:
    """The ``window`` rows of ``source`` ending at each of ``ends``:
    ``(len(ends), window, n_features)``, gathered from a strided view in one indexing op."""
    view = source.unfold(0, window, 1)  # (rows - window + 1, n_features, window), no copy
    return view[ends - (window - 1)].transpose(1, 2)


def _check_rank(rank: int, world_size: int) -> None:
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, world_size); got {rank} of {world_size}.")
