"""Detailed analytics from real short trainings: what each epoch records, the files saved with
the model (read back as JSON and CSV), the strategy option, and nothing at all when off."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ktrdr_lib import build_training_context, run_training_pipeline
from ktrdr_lib.models.layout import ANALYTICS_CSV, ANALYTICS_JSON
from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.schemas.results import TrainingAnalytics, TrainingResult
from tests.conftest import REGRESSION_STRATEGY

pytestmark = pytest.mark.slow  # real trainings

MLP_PARAMETERS = ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]
GRU_STRATEGY = REGRESSION_STRATEGY.replace(
    "  type: mlp\n  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}",
    "  type: gru\n  architecture: {sequence_length: 6, hidden_size: 8, num_layers: 1}",
).replace(
    "optimizer: adam}",
    "optimizer: adam, analytics: {enabled: true, export_csv: true}}",
)


def _train(strategy: Path, data: Path, **fields: Any) -> TrainingResult:
    return run_training_pipeline(build_training_context(strategy, data_dir=data, **fields))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_classifier_records_every_epoch_and_saves_json_and_csv(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    result = _train(small_strategy_file, synthetic_data_dir, epochs=3, detailed_analytics=True)
    analytics = result.analytics
    assert analytics is not None
    assert analytics.task == "classification" and analytics.classes == ["BUY", "HOLD", "SELL"]
    assert [record.epoch for record in analytics.epochs] == [1, 2, 3]
    assert analytics.epochs_completed == 3 and analytics.stop_reason == "max_epochs"
    assert analytics.best_epoch == result.training_metrics.best_epoch
    report = result.data_summary.feature_report
    assert report is not None and analytics.fuzzy_activity == report.active_share
    assert len(analytics.fuzzy_activity) == 6  # three rsi and three sma memberships
    validation_samples = result.data_summary.samples["validation"]
    for record in analytics.epochs:
        assert record.learning_rate == pytest.approx(0.005)
        assert list(record.parameters) == MLP_PARAMETERS
        norms = [figures.grad_norm for figures in record.parameters.values()]
        assert all(norm is not None and norm > 0 for norm in norms)
        assert record.gradient_norm == pytest.approx(math.sqrt(sum(n * n for n in norms if n)))
        assert all(f.abs_max >= abs(f.mean) and f.std >= 0 for f in record.parameters.values())
        assert record.per_class is not None and list(record.per_class) == analytics.classes
        assert sum(m.support for m in record.per_class.values()) == validation_samples
        f1 = [m.f1 for m in record.per_class.values()]
        assert record.macro_f1 == pytest.approx(sum(f1) / 3)
        confidence = record.confidence
        assert confidence is not None and record.regression is None
        assert 1 / 3 <= confidence.mean_max_probability <= 1
        assert 0 <= confidence.mean_entropy <= math.log(3) + 1e-6
        assert 0 <= confidence.confident_share <= 1
    # the parameters move between epochs: each epoch's statistics are its own
    first, last = analytics.epochs[0].parameters, analytics.epochs[-1].parameters
    assert first["0.weight"].mean != last["0.weight"].mean
    # the best epoch's per-class figures are the validation figures the result reports
    validation = result.validation_metrics
    assert validation is not None and analytics.best_epoch is not None
    best = analytics.epochs[analytics.best_epoch - 1].per_class
    assert best is not None
    for name, metrics in validation.per_class.items():
        assert best[name].support == metrics.support
        assert best[name].f1 == pytest.approx(metrics.f1, abs=1e-6)
        assert best[name].precision == pytest.approx(metrics.precision, abs=1e-6)

    # saved with the model, read back
    assert result.artifacts.model_path is not None
    version = Path(result.artifacts.model_path)
    assert msgspec.json.decode((version / ANALYTICS_JSON).read_bytes(), type=TrainingAnalytics) == (
        analytics
    )
    assert ModelStore().analytics("small_test") == analytics
    rows = _csv_rows(version / ANALYTICS_CSV)
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    for row, record in zip(rows, analytics.epochs, strict=True):
        assert float(row["gradient_norm"]) == pytest.approx(record.gradient_norm)
        assert float(row["grad_norm/0.weight"]) == pytest.approx(
            record.parameters["0.weight"].grad_norm
        )
        assert record.per_class is not None and record.confidence is not None
        assert float(row["f1/SELL"]) == pytest.approx(record.per_class["SELL"].f1)
        assert float(row["confident_share"]) == pytest.approx(record.confidence.confident_share)
        assert "val_mae" not in row
    # a copy of the version keeps them
    copy = ModelStore().copy_as(("small_test", 1), "small_copy")
    assert (copy.path / ANALYTICS_CSV).read_bytes() == (version / ANALYTICS_CSV).read_bytes()
    assert ModelStore().analytics("small_copy") == analytics


def test_a_gru_regression_turned_on_by_its_strategy_records_regression_figures(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    strategy = tmp_path / "gru_returns.yaml"
    strategy.write_text(GRU_STRATEGY, encoding="utf-8")
    context = build_training_context(strategy, data_dir=synthetic_data_dir, epochs=2)
    assert context.detailed_analytics  # the strategy's option, through the epochs override
    result = run_training_pipeline(context)
    notices = {notice.path for notice in result.session_info.strategy_notices}
    assert "model.training.analytics.export_csv" in notices  # kept, noticed
    analytics = result.analytics
    assert analytics is not None and analytics.task == "regression" and analytics.classes == []
    assert [record.epoch for record in analytics.epochs] == [1, 2]
    for record in analytics.epochs:
        assert record.per_class is None and record.confidence is None
        assert record.regression is not None
        assert record.regression.mae > 0 and record.regression.rmse >= record.regression.mae
        assert 0 <= record.regression.directional_accuracy <= 1
        assert "recurrent.weight_hh_l0" in record.parameters and "head.bias" in record.parameters
        assert all(f.grad_norm is not None for f in record.parameters.values())
    # the best epoch's validation MAE is the one the result reports (windows cut the same way)
    regression = result.validation_regression
    assert regression is not None and analytics.best_epoch is not None
    best = analytics.epochs[analytics.best_epoch - 1].regression
    assert best is not None and best.mae == pytest.approx(regression.mae, rel=1e-5)
    assert best.directional_accuracy == pytest.approx(regression.directional_accuracy)

    assert result.artifacts.model_path is not None
    rows = _csv_rows(Path(result.artifacts.model_path) / ANALYTICS_CSV)
    assert len(rows) == 2 and "f1/BUY" not in rows[0]
    assert float(rows[1]["val_mae"]) == pytest.approx(analytics.epochs[1].regression.mae)  # type: ignore[union-attr]
    assert float(rows[0]["grad_norm/recurrent.weight_ih_l0"]) > 0


def test_analytics_are_off_by_default_and_change_nothing_the_run_learns(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    off = _train(small_strategy_file, synthetic_data_dir, epochs=2)
    assert off.analytics is None
    assert b'"analytics"' not in msgspec.json.encode(off)
    assert off.artifacts.model_path is not None
    saved = {path.name for path in Path(off.artifacts.model_path).iterdir()}
    assert ANALYTICS_JSON not in saved and ANALYTICS_CSV not in saved
    assert ModelStore().analytics("small_test") is None

    on = _train(small_strategy_file, synthetic_data_dir, epochs=2, detailed_analytics=True)
    assert on.analytics is not None
    # recording reads the model in eval mode and draws no random numbers: same figures
    assert on.training_metrics.final_val_loss == off.training_metrics.final_val_loss
    assert on.training_metrics.final_train_loss == off.training_metrics.final_train_loss
    assert on.test_metrics == off.test_metrics
