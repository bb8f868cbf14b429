"""Epoch-history diagnostics and library versions."""

from __future__ import annotations

from ktrdr_lib.environment import library_versions
from ktrdr_lib.operations.diagnostics import diagnose_history
from ktrdr_lib.schemas.progress import EpochHistoryRow


def _rows(train: list[float], val: list[float]) -> list[EpochHistoryRow]:
    return [
        EpochHistoryRow(epoch=i + 1, train_loss=t, val_loss=v, duration_s=0.1)
        for i, (t, v) in enumerate(zip(train, val, strict=True))
    ]


def test_improving_run_has_no_flags() -> None:
    d = diagnose_history(_rows([1.0, 0.9, 0.8, 0.7, 0.6], [1.1, 1.0, 0.9, 0.8, 0.7]))
    assert not d.overfitting and not d.plateau
    assert d.best_epoch == 5
    assert d.generalization_gap == 0.1
    assert d.notes == []


def test_overfitting_when_val_rises_while_train_falls() -> None:
    d = diagnose_history(_rows([1.0, 0.8, 0.6, 0.4, 0.2], [0.9, 0.7, 0.75, 0.8, 0.9]))
    assert d.overfitting
    assert d.best_epoch == 2
    assert "overfitting" in d.notes[0]


def test_plateau_when_val_stops_improving() -> None:
    d = diagnose_history(_rows([1.0, 0.9, 0.9, 0.9, 0.9], [0.8, 0.7, 0.7, 0.7001, 0.7]))
    assert d.plateau and not d.overfitting
    assert "plateau" in d.notes[0]


def test_short_or_empty_histories_are_fine() -> None:
    assert diagnose_history([]).best_epoch is None
    d = diagnose_history(_rows([1.0, 0.9], [1.0, 1.2]))
    assert not d.overfitting and not d.plateau and d.best_epoch == 1


def test_rows_without_validation_are_ignored() -> None:
    rows = [*_rows([1.0, 0.9], [1.0, 0.8]), EpochHistoryRow(epoch=3, train_loss=0.5)]
    assert diagnose_history(rows).best_epoch == 2


def test_library_versions_name_the_stack() -> None:
    versions = library_versions()
    for name in ("python", "torch", "lightning", "numpy", "msgspec", "ktrdr_lib"):
        assert versions[name] and versions[name] != "not installed"
