"""A first-order recursive filter in vectorised numpy: exponential smoothing from a seed.

:func:`smooth_from_seed` computes ``y[s] = seed``, ``y[t] = (1 - alpha) y[t-1] + alpha x[t]``
without a per-bar Python loop. The bars after the seed are cut into blocks of ``L``. Within a
block, with ``r = 1 - alpha`` and the block's state ``c`` before its first bar,

    y[k] = r^(k+1) c + alpha r^k sum_{j <= k} x[j] r^-j,

so one cumulative sum of ``x[j] alpha r^-j`` per block gives every bar's value once ``c`` is
known; the block-end states are then carried from block to block in a short scalar loop
(``n / L`` steps). ``L`` is chosen so that ``r^-L`` stays below :data:`_MAX_GROWTH`, far inside
float64 range, and the blocks are processed a few at a time so their buffers stay in cache.

Accuracy: the terms of each cumulative sum grow geometrically, so each sum is dominated by its
latest terms and its rounding error is a few ulps of ``y`` times ``1 / alpha`` (the recursion's
own memory), the same order as the plain loop's. A NaN input makes that bar and every later
bar NaN, as in the plain loop and in TA-Lib.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["smooth_from_seed"]

FloatArray = npt.NDArray[np.float64]

# Largest factor r^-k a block may reach: inputs up to 1e200 stay finite (float64 ends at 1.8e308).
_MAX_GROWTH = 1e100
# Longest block; beyond this the scalar loop over blocks is already negligible.
_MAX_BLOCK = 1024
# Elements per cache-resident chunk of blocks (256 KiB of float64).
_CHUNK_ELEMENTS = 32_768


def _block_length(decay: float) -> int:
    """Longest block whose growth ``decay^-(L-1)`` stays within :data:`_MAX_GROWTH`."""
    return max(1, min(_MAX_BLOCK, 1 + int(math.log(_MAX_GROWTH) / -math.log(decay))))


def smooth_from_seed(
    values: FloatArray,
    alpha: float,
    seed_index: int,
    seed: float,
    out: FloatArray | None = None,
) -> FloatArray:
    """Exponential smoothing of ``values`` that starts at ``seed`` on bar ``seed_index``.

    ``out[:seed_index]`` is NaN, ``out[seed_index] = seed`` and, after it,
    ``out[t] = (1 - alpha) out[t - 1] + alpha values[t]``.

    Args:
        values: contiguous float64 inputs; those up to ``seed_index`` are not read.
        alpha: smoothing factor in (0, 1].
        seed_index: bar of the seed (>= 0); at or past the end gives all NaN.
        seed: the value on ``seed_index``.
        out: where to write, of ``len(values)``; may be ``values`` itself (smoothing in place,
            with no new array). By default a new array.

    Returns:
        ``out``, or the new array.

    Example:
        >>> smooth_from_seed(np.array([0.0, 0.0, 4.0, 8.0]), 0.5, 1, 2.0).tolist()
        [nan, 2.0, 3.0, 5.5]
    """
    n = values.shape[0]
    if out is None:
        out = np.empty(n)
    out[: min(seed_index, n)] = np.nan
    if seed_index >= n:
        return out
    out[seed_index] = seed
    inputs, outputs = values[seed_index + 1 :], out[seed_index + 1 :]
    length = inputs.shape[0]
    if length == 0:
        return out
    decay = 1.0 - alpha
    if decay <= 0.0:  # no memory: the output is the input
        outputs[:] = inputs
        return out

    block = min(_block_length(decay), length)
    steps = np.arange(block, dtype=np.float64)
    growth = alpha * np.power(decay, -steps)  # alpha r^-j
    fade = np.power(decay, steps)  # r^k
    end_fade = float(fade[-1])  # r^(L-1): a block-end sum to the block-end value
    block_decay = end_fade * decay  # r^L: a state carried across one whole block

    blocks = length // block
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // block)
    state = seed
    for first in range(0, blocks, rows_per_chunk):
        last = min(first + rows_per_chunk, blocks)
        x = inputs[first * block : last * block].reshape(last - first, block)
        y = outputs[first * block : last * block].reshape(last - first, block)
        np.multiply(x, growth, out=y)
        np.cumsum(y, axis=1, out=y)
        # State before each block, r times (the r^(k+1) c term, with r^k applied below).
        carried = np.empty(last - first)
        for row, block_sum in enumerate(y[:, -1].tolist()):
            carried[row] = state * decay
            state = block_decay * state + end_fade * block_sum
        y += carried[:, np.newaxis]
        y *= fade
    tail = length - blocks * block
    if tail:
        x, y = inputs[blocks * block :], outputs[blocks * block :]
        np.multiply(x, growth[:tail], out=y)
        np.cumsum(y, out=y)
        y += state * decay
        y *= fade[:tail]
    return out
