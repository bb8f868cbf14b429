"""Placebo data: random walks with the real series' bars, volatility, wicks and volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.data.placebo import placebo_bars, placebo_seed, write_placebo_data
from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.pipeline.context import build_training_context


def test_placebo_bars_keep_the_bars_volatility_wicks_and_volumes() -> None:
    real = generate_ohlcv(3000, timeframe="1h", seed=7)
    fake = placebo_bars(real, seed=1)
    assert fake.index.equals(real.index)
    real_vol = np.std(np.diff(np.log(real["close"])))
    fake_vol = np.std(np.diff(np.log(fake["close"])))
    assert fake_vol == pytest.approx(real_vol, rel=0.1)
    assert fake["close"].iloc[0] == real["close"].iloc[0]
    assert (fake["high"] >= fake[["open", "close"]].max(axis=1) - 1e-9).all()
    assert (fake["low"] <= fake[["open", "close"]].min(axis=1) + 1e-9).all()
    assert (fake["low"] > 0).all()
    assert set(fake["volume"]) <= set(real["volume"])
    assert np.allclose(fake["open"].iloc[1:].to_numpy(), fake["close"].iloc[:-1].to_numpy())
    # Seeded: the same seed repeats, another differs; no drift is planted.
    assert placebo_bars(real, seed=1).equals(fake)
    assert not placebo_bars(real, seed=2)["close"].equals(fake["close"])
    assert placebo_seed(42, 0, "AAPL", "1d") == placebo_seed(42, 0, "aapl", "1d")
    assert placebo_seed(42, 0, "AAPL", "1d") != placebo_seed(42, 1, "AAPL", "1d")


def test_placebo_files_replace_each_series_and_resample_like_the_real_ones(
    tmp_path: Path, small_strategy_file: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_ohlcv_csv(generate_ohlcv(3000, timeframe="1h", seed=7), data / "SYNTH_1h.csv")
    context = build_training_context(
        small_strategy_file, data_dir=data, timeframes=["1h", "4h"], epochs=1
    )
    out = write_placebo_data(context, index=0, directory=tmp_path / "placebo")
    assert sorted(p.name for p in out.iterdir()) == ["SYNTH_1h.csv"]  # 4h resamples from it
    fake_4h = load_ohlcv("SYNTH", "4h", data_dir=out)
    assert fake_4h.attrs["resampled_from"] == "1h"
    assert fake_4h.index.equals(load_ohlcv("SYNTH", "4h", data_dir=data).index)
    again = write_placebo_data(context, index=0, directory=tmp_path / "again")
    assert (again / "SYNTH_1h.csv").read_bytes() == (out / "SYNTH_1h.csv").read_bytes()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"placebo_runs": -1}, "placebo_runs: -1 is outside 0..50"),
        ({"placebo_runs": 51}, "placebo_runs: 51 is outside"),
        ({"placebo_runs": 2.5}, "placebo_runs"),
        ({"placebo_runs": 2, "mode": "host"}, "not on a training host"),
    ],
)
def test_placebo_runs_are_checked(
    small_strategy_file: Path, synthetic_data_dir: Path, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_training_context(small_strategy_file, data_dir=synthetic_data_dir, **fields)  # type: ignore[arg-type]
