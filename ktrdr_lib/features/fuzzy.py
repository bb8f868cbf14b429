"""Fuzzy membership functions: indicator values → degrees of membership in [0, 1].

Four shapes, as a strategy's fuzzy sets name them:

- ``triangular [a, b, c]``: 1 at ``b``, linear down to 0 at ``a`` and at ``c``;
- ``trapezoidal [a, b, c, d]``: 1 on ``[b, c]``, linear down to 0 at ``a`` and at ``d``;
- ``gaussian [mean, sigma]``: ``exp(-(x - mean)² / (2 sigma²))``;
- ``sigmoid [center, slope]``: ``1 / (1 + exp(-slope (x - center)))`` (0.5 at the center,
  rising for a positive slope, falling for a negative one).

A side with no width (``a == b``, or ``c == d`` / ``b == c`` for a triangle) is a *shoulder*:
membership stays at 1 from the peak outwards on that side. So ``[0, 0, 30]`` is 1 for every
``x <= 0`` and ``[a, a, a]`` is 1 everywhere. NaN in gives NaN out.

Example:
    >>> import numpy as np
    >>> from ktrdr_lib.strategy.spec import MembershipSpec
    >>> oversold = MembershipSpec(type="triangular", parameters=[0, 20, 35])
    >>> membership(oversold, np.array([10.0, 20.0, 30.0])).round(3).tolist()
    [0.5, 1.0, 0.333]
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import numpy.typing as npt

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.strategy.spec import MEMBERSHIP_PARAMETER_COUNTS, MembershipSpec

__all__ = ["fuzzify", "membership"]

FloatArray = npt.NDArray[np.float64]

_GAUSSIAN_Z_LIMIT = 37.0
_SIGMOID_Z_LIMIT = 700.0


def _check_parameters(fuzzy_set: MembershipSpec) -> list[float]:
    params = [float(p) for p in fuzzy_set.parameters]
    expected = MEMBERSHIP_PARAMETER_COUNTS[fuzzy_set.type]
    if len(params) != expected:
        raise ConfigError(
            f"a {fuzzy_set.type} fuzzy set takes {expected} parameters, got {len(params)} "
            f"({params}); fix `parameters` in the strategy's fuzzy_sets."
        )
    if fuzzy_set.type == "gaussian":
        if not params[1] > 0:
            raise ConfigError(
                f"a gaussian fuzzy set needs sigma > 0 (parameters {params}); "
                "make the second parameter positive."
            )
    elif fuzzy_set.type == "sigmoid":
        if params[1] == 0:
            raise ConfigError(
                f"a sigmoid fuzzy set needs a slope that is not 0 (parameters {params}); "
                "give [center, slope] with a positive slope for 'above', negative for 'below'."
            )
    elif any(low > high for low, high in pairwise(params)):
        raise ConfigError(
            f"{fuzzy_set.type} fuzzy set parameters must be in ascending order (got {params}); "
            "sort them."
        )
    return params


def _edge(x: FloatArray, zero_at: float, one_at: float) -> FloatArray:
    """Linear ramp from 0 at ``zero_at`` to 1 at ``one_at``, clipped; a shoulder when equal."""
    if zero_at == one_at:
        return np.ones_like(x)
    return np.clip((x - zero_at) / (one_at - zero_at), 0.0, 1.0)


def _trapezoid(x: FloatArray, a: float, b: float, c: float, d: float) -> FloatArray:
    return np.minimum(_edge(x, a, b), _edge(x, d, c))


def _gaussian(x: FloatArray, mean: float, sigma: float) -> FloatArray:
    # Beyond 37 sigma the degree is below 1e-297; clipping keeps z² from overflowing.
    z = np.clip((x - mean) / sigma, -_GAUSSIAN_Z_LIMIT, _GAUSSIAN_Z_LIMIT)
    return np.exp(-0.5 * z * z)


def _sigmoid(x: FloatArray, center: float, slope: float) -> FloatArray:
    # exp overflows past 709; the degree there is 0 or 1 to double precision anyway.
    z = np.clip(-slope * (x - center), -_SIGMOID_Z_LIMIT, _SIGMOID_Z_LIMIT)
    return 1.0 / (1.0 + np.exp(z))


def membership(fuzzy_set: MembershipSpec, x: npt.ArrayLike) -> FloatArray:
    """Degree of membership of each value in one fuzzy set.

    Args:
        fuzzy_set: the set's shape and parameters.
        x: indicator values (any shape).

    Returns:
        float64 array shaped like ``x`` with values in [0, 1]; NaN where ``x`` is NaN.

    Raises:
        ConfigError: wrong number of parameters, unsorted corners, ``sigma <= 0`` or a zero
            sigmoid slope.
    """
    values = np.asarray(x, dtype=np.float64)
    params = _check_parameters(fuzzy_set)
    if fuzzy_set.type == "gaussian":
        degrees = _gaussian(values, params[0], params[1])
    elif fuzzy_set.type == "sigmoid":
        degrees = _sigmoid(values, params[0], params[1])
    elif fuzzy_set.type == "triangular":
        degrees = _trapezoid(values, params[0], params[1], params[1], params[2])
    else:
        degrees = _trapezoid(values, params[0], params[1], params[2], params[3])
    return np.where(np.isnan(values), np.nan, degrees)


def fuzzify(
    sets: dict[str, MembershipSpec], x: npt.ArrayLike, prefix: str
) -> dict[str, FloatArray]:
    """Membership columns for every membership function of one fuzzy set.

    Args:
        sets: membership name → function, in the strategy file's order.
        x: the indicator's values.
        prefix: column prefix, e.g. ``"1h_rsi"``.

    Returns:
        ``{f"{prefix}_{set_name}": degrees}`` in the order of ``sets``.

    Raises:
        ConfigError: a set's parameters are invalid (see :func:`membership`).

    Example:
        >>> from ktrdr_lib.strategy.spec import MembershipSpec
        >>> sets = {"low": MembershipSpec(type="triangular", parameters=[0, 0, 50])}
        >>> {k: v.tolist() for k, v in fuzzify(sets, [25.0], "1h_rsi").items()}
        {'1h_rsi_low': [0.5]}
    """
    values = np.asarray(x, dtype=np.float64)
    columns: dict[str, FloatArray] = {}
    for name, fuzzy_set in sets.items():
        column = f"{prefix}_{name}"
        try:
            columns[column] = membership(fuzzy_set, values)
        except ConfigError as error:
            raise ConfigError(f"fuzzy set {name!r} (column {column!r}): {error.detail}") from None
    return columns
