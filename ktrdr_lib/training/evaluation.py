"""A trained model's figures on one split, with baselines.

Classification (:func:`evaluate`):

Figures come from ``torchmetrics`` (macro averages over BUY/HOLD/SELL, per-class figures and
the confusion matrix). ``majority_baseline_accuracy`` is the accuracy of always predicting the
TRAINING split's most frequent class on this split, so a model that learned nothing shows up
as ``accuracy ≈ majority_baseline_accuracy``.

Regression (:func:`evaluate_regression`): MAE, RMSE, directional accuracy and Pearson
correlation (``torchmetrics``), beside the MAE of always predicting 0 and of always predicting
the training mean, and that mean's directional accuracy.

Example:
    >>> majority = majority_class_of(y_train)  # doctest: +SKIP
    >>> metrics = evaluate(module, x_test, y_test, majority_class=majority)  # doctest: +SKIP
    >>> metrics.accuracy, metrics.per_class["BUY"].recall  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from ktrdr_lib.errors import DataError
from ktrdr_lib.schemas.results import ClassificationMetrics, ClassMetrics, RegressionMetrics
from ktrdr_lib.training.batches import cut_windows
from ktrdr_lib.training.module import N_CLASSES, FuzzyMLP

__all__ = ["evaluate", "evaluate_regression", "majority_class_of", "model_outputs"]

_CHUNK_ROWS = 65_536


def majority_class_of(labels: np.ndarray, n_classes: int = N_CLASSES) -> int:
    """The most frequent class id in ``labels`` (the lowest id on a tie).

    Raises:
        DataError: when ``labels`` is empty.
    """
    if labels.size == 0:
        raise DataError("cannot find the majority class of an empty label array.")
    return int(np.bincount(labels, minlength=n_classes).argmax())


def evaluate(
    module: FuzzyMLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    majority_class: int,
    windows: Windows | None = None,
) -> ClassificationMetrics:
    """Evaluate ``module`` on scaled features ``x`` and labels ``y``.

    Args:
        module: a trained model (its train/eval mode is restored afterwards).
        x: scaled features, shape ``(n, n_features)``.
        y: class ids 0 (BUY), 1 (HOLD), 2 (SELL), shape ``(n,)``.
        majority_class: the training split's majority class (see :func:`majority_class_of`).
        windows: for a recurrent model, where each row's window comes from (``x`` then only
            gives the sample count).

    Raises:
        DataError: for an empty split or features and labels of different lengths.
    """
    if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise DataError(
            f"cannot evaluate on features of shape {x.shape} and labels of shape {y.shape}; "
            "the split must be non-empty with one label per row. Widen the date range or the "
            "training.data_split fraction."
        )
    logits = _logits(module, x, windows)
    target = torch.as_tensor(y, dtype=torch.int64)
    names = module.class_names
    n_classes = len(names)
    preds = logits.argmax(dim=1)
    per_class = {
        "precision": multiclass_precision(preds, target, n_classes, average=None).tolist(),
        "recall": multiclass_recall(preds, target, n_classes, average=None).tolist(),
        "f1": multiclass_f1_score(preds, target, n_classes, average=None).tolist(),
    }
    support = np.bincount(y, minlength=n_classes).tolist()
    return ClassificationMetrics(
        loss=float(torch.nn.functional.cross_entropy(logits, target)),
        accuracy=float(multiclass_accuracy(preds, target, n_classes, average="micro")),
        precision=float(multiclass_precision(preds, target, n_classes, average="macro")),
        recall=float(multiclass_recall(preds, target, n_classes, average="macro")),
        f1=float(multiclass_f1_score(preds, target, n_classes, average="macro")),
        per_class={
            name: ClassMetrics(
                precision=per_class["precision"][i],
                recall=per_class["recall"][i],
                f1=per_class["f1"][i],
                support=int(support[i]),
            )
            for i, name in enumerate(names)
        },
        confusion_matrix=multiclass_confusion_matrix(preds, target, n_classes).tolist(),
        samples=int(y.shape[0]),
        majority_class=majority_class,
        majority_baseline_accuracy=float(np.mean(y == majority_class)),
    )


Windows = tuple[np.ndarray, np.ndarray, int]
"""A recurrent model's inputs: (feature rows, each sample's window end, rows per window)."""


def model_outputs(module: FuzzyMLP, x: np.ndarray, windows: Windows | None = None) -> np.ndarray:
    """The model's raw outputs for the rows of ``x`` (class logits, or one value per row for
    a regression), as float64."""
    return _logits(module, x, windows).to(torch.float64).numpy()


def _logits(module: FuzzyMLP, x: np.ndarray, windows: Windows | None = None) -> torch.Tensor:
    """Outputs on the CPU, computed in eval mode in chunks of rows (of windows, for a
    recurrent model: each chunk's windows are cut from the rows when it runs)."""
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            if windows is None:
                features = torch.as_tensor(x, dtype=torch.float32)
                chunks = [
                    module(chunk.to(module.device)).cpu()
                    for chunk in torch.split(features, _CHUNK_ROWS)
                ]
            else:
                source = torch.as_tensor(windows[0], dtype=torch.float32).to(module.device)
                ends = torch.as_tensor(windows[1], dtype=torch.int64).to(module.device)
                chunks = [
                    module(cut_windows(source, chunk, windows[2])).cpu()
                    for chunk in torch.split(ends, _CHUNK_ROWS // max(windows[2], 1))
                ]
        return torch.cat(chunks)
    finally:
        module.train(was_training)


def evaluate_regression(
    module: FuzzyMLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    train_mean: float,
    windows: Windows | None = None,
) -> RegressionMetrics:
    """Evaluate a regression ``module`` on scaled features ``x`` and targets ``y``.

    Args:
        module: a trained regression model.
        x: scaled features, shape ``(n, n_features)``.
        y: true values (returns), shape ``(n,)``.
        train_mean: the training split's mean target (the mean baseline).
        windows: for a recurrent model, where each row's window comes from.

    Raises:
        DataError: for an empty split or features and targets of different lengths.
    """
    from torchmetrics.functional import (
        mean_absolute_error,
        mean_squared_error,
        pearson_corrcoef,
    )

    if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise DataError(
            f"cannot evaluate on features of shape {x.shape} and targets of shape {y.shape}; "
            "the split must be non-empty with one target per row."
        )
    preds = _logits(module, x, windows).to(torch.float64)
    target = torch.as_tensor(y, dtype=torch.float64)
    correlation = None
    if x.shape[0] > 1 and float(preds.std()) > 0 and float(target.std()) > 0:
        correlation = float(pearson_corrcoef(preds, target))
    module_loss = module.compute_loss(preds.to(torch.float32), target.to(torch.float32))
    mean_side = float(np.sign(train_mean))
    return RegressionMetrics(
        loss=float(module_loss),
        mae=float(mean_absolute_error(preds, target)),
        rmse=float(mean_squared_error(preds, target, squared=False)),
        directional_accuracy=float((torch.sign(preds) == torch.sign(target)).double().mean()),
        correlation=correlation,
        samples=int(y.shape[0]),
        train_mean=float(train_mean),
        zero_baseline_mae=float(np.mean(np.abs(y))),
        mean_baseline_mae=float(np.mean(np.abs(y - train_mean))),
        mean_baseline_directional_accuracy=float(np.mean(np.sign(y) == mean_side)),
    )
