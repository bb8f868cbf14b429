"""Membership functions against hand-computed values, shoulders and degenerate shapes."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.fuzzy import fuzzify, membership
from ktrdr_lib.strategy.spec import MembershipSpec


def triangular(*params: float) -> MembershipSpec:
    return MembershipSpec(type="triangular", parameters=list(params))


def trapezoidal(*params: float) -> MembershipSpec:
    return MembershipSpec(type="trapezoidal", parameters=list(params))


def gaussian(mean: float, sigma: float) -> MembershipSpec:
    return MembershipSpec(type="gaussian", parameters=[mean, sigma])


def degrees(fuzzy_set: MembershipSpec, *x: float) -> list[float]:
    return [float(value) for value in membership(fuzzy_set, np.array(x))]


def test_triangle_peaks_at_b_and_falls_linearly_to_a_and_c() -> None:
    oversold = triangular(0, 20, 35)
    # 10 is half-way up 0→20; 30 is 5 of 15 before 35; 27.5 is half-way down.
    assert degrees(oversold, -5, 0, 10, 20, 27.5, 30, 35, 50) == pytest.approx(
        [0, 0, 0.5, 1, 0.5, 1 / 3, 0, 0]
    )


def test_triangle_with_a_equal_b_has_a_flat_left_shoulder() -> None:
    low = triangular(10, 10, 30)
    assert degrees(low, -100, 5, 10, 20, 25, 30, 40) == pytest.approx([1, 1, 1, 0.5, 0.25, 0, 0])


def test_triangle_with_b_equal_c_has_a_flat_right_shoulder() -> None:
    high = triangular(60, 80, 80)
    assert degrees(high, 50, 60, 70, 75, 80, 95, 1e6) == pytest.approx([0, 0, 0.5, 0.75, 1, 1, 1])


def test_degenerate_triangle_a_b_c_equal_is_shoulder_on_both_sides() -> None:
    everywhere = triangular(5, 5, 5)
    assert degrees(everywhere, -1e9, 4.99, 5, 5.01, 1e9) == [1.0, 1.0, 1.0, 1.0, 1.0]


def test_trapezoid_is_one_on_the_plateau_and_linear_on_the_sides() -> None:
    neutral = trapezoidal(30, 45, 55, 70)
    assert degrees(neutral, 20, 30, 33, 45, 50, 55, 66, 70, 90) == pytest.approx(
        [0, 0, 0.2, 1, 1, 1, 0.2666666667, 0, 0]
    )


def test_trapezoid_shoulders() -> None:
    left = trapezoidal(0, 0, 1, 3)
    assert degrees(left, -7, 0, 1, 2, 3) == pytest.approx([1, 1, 1, 0.5, 0])
    right = trapezoidal(0.9, 1.0, 1.2, 1.2)
    assert degrees(right, 0.8, 0.95, 1.1, 1.2, 9.0) == pytest.approx([0, 0.5, 1, 1, 1])


def test_gaussian_values() -> None:
    overbought = gaussian(80, 8)
    assert degrees(overbought, 80, 88, 64) == pytest.approx(
        [1.0, np.exp(-0.5), np.exp(-2.0)], rel=1e-12
    )


@pytest.mark.parametrize(
    "fuzzy_set",
    [triangular(0, 20, 35), triangular(0, 0, 1), trapezoidal(1, 2, 3, 4), gaussian(0, 1)],
)
def test_output_stays_in_unit_interval_and_nan_passes_through(fuzzy_set: MembershipSpec) -> None:
    x = np.array([np.nan, -np.inf, -1e300, -3.0, 0.0, 0.5, 2.5, 17.0, 1e300, np.inf, np.nan])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = membership(fuzzy_set, x)
    assert out.shape == x.shape
    assert np.isnan(out[[0, -1]]).all()
    finite = out[1:-1]
    assert ((finite >= 0) & (finite <= 1)).all()


def test_nan_passes_through_even_on_a_set_that_is_one_everywhere() -> None:
    assert np.isnan(degrees(triangular(5, 5, 5), np.nan)[0])


def test_membership_keeps_the_input_shape() -> None:
    x = np.array([[0.0, 10.0], [20.0, 40.0]])
    expected = np.array([[0.0, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(membership(triangular(0, 20, 35), x), expected)


@pytest.mark.parametrize(
    ("fuzzy_set", "message"),
    [
        (triangular(0, 20), "takes 3 parameters, got 2"),
        (trapezoidal(0, 1, 2), "takes 4 parameters, got 3"),
        (triangular(10, 5, 20), "ascending order"),
        (trapezoidal(0, 3, 2, 4), "ascending order"),
        (gaussian(0, 0), "sigma > 0"),
    ],
)
def test_invalid_parameters_are_config_errors(fuzzy_set: MembershipSpec, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        membership(fuzzy_set, np.zeros(3))


def test_fuzzify_names_columns_in_set_order() -> None:
    sets = {
        "oversold": triangular(0, 20, 35),
        "neutral": trapezoidal(30, 45, 55, 70),
        "overbought": gaussian(80, 8),
    }
    columns = fuzzify(sets, np.array([10.0, 50.0, 80.0]), "1h_rsi")
    assert list(columns) == ["1h_rsi_oversold", "1h_rsi_neutral", "1h_rsi_overbought"]
    assert columns["1h_rsi_oversold"].tolist() == pytest.approx([0.5, 0, 0])
    assert columns["1h_rsi_neutral"].tolist() == pytest.approx([0, 1, 0])
    assert columns["1h_rsi_overbought"][2] == pytest.approx(1.0)


def test_fuzzify_error_names_the_set_and_column() -> None:
    with pytest.raises(ConfigError, match=r"fuzzy set 'bad' \(column '1d_macd_bad'\).*sigma"):
        fuzzify({"bad": gaussian(0, -1)}, np.zeros(2), "1d_macd")


def sigmoid(center: float, slope: float) -> MembershipSpec:
    return MembershipSpec(type="sigmoid", parameters=[center, slope])


def test_sigmoid_is_one_half_at_the_center_and_rises_with_a_positive_slope() -> None:
    """``[c, s]`` is 1 / (1 + exp(-s (x - c))), written out plainly."""
    x = np.array([-1e6, -2.0, 0.5, 1.0, 3.0, 1e6, np.nan])
    rising = membership(sigmoid(1.0, 2.0), x)
    expected = 1.0 / (1.0 + np.exp(np.clip(-2.0 * (x - 1.0), -700, 700)))
    np.testing.assert_allclose(rising[:-1], expected[:-1], rtol=1e-12)
    assert rising[3] == 0.5 and np.isnan(rising[-1])
    falling = membership(sigmoid(1.0, -2.0), x)
    np.testing.assert_allclose(falling[:-1], 1.0 - rising[:-1], atol=1e-12)


def test_a_flat_sigmoid_is_refused() -> None:
    with pytest.raises(ConfigError, match="slope that is not 0"):
        membership(sigmoid(0.0, 0.0), np.array([1.0]))
