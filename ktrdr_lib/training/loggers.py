"""Experiment loggers: a run shows up where its user already looks (CSV, TensorBoard, MLflow).

Off by default. A run's loggers come from its request (``loggers=[...]``), else the
orchestrator's ``loggers=`` argument, else ``KTRDR_LOGGERS`` (comma-separated). Each logger
gets one run per operation, named by the operation id under the strategy's name, with the
hyper-parameters at the start, one row of epoch figures at every completed epoch's end, and the
final figures (test metrics, best epoch, how it stopped) once the run is evaluated.

They are Lightning's own loggers (``CSVLogger``, ``TensorBoardLogger``, ``MLFlowLogger``), but
driven by :class:`~ktrdr_lib.training.experiment_logging.ExperimentLogging` at epoch ends
rather than through the Trainer: the batch loop stays as fast as without them
(``bench/epoch_observers.py``). Importing this module loads no Lightning (the request check
uses it).

=============== ======================================================= ====================
name            where                                                   needs
=============== ======================================================= ====================
``csv``         ``runs_dir/csv/<strategy>/<operation id>/metrics.csv``  nothing
                and ``hparams.yaml``
``tensorboard`` ``runs_dir/tensorboard/<strategy>/<operation id>/``     ``tensorboard``
``mlflow``      experiment ``ktrdr/<strategy>``, run ``<operation id>``  ``mlflow`` (or
                in ``MLFLOW_TRACKING_URI``, default the SQLite database  ``mlflow-skinny``,
                ``runs_dir/mlflow.db``                                  ``sqlalchemy``,
                                                                        ``alembic``)
=============== ======================================================= ====================
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.settings import read_list, read_raw

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

__all__ = [
    "LOGGERS_ENV",
    "LOGGER_KINDS",
    "check_loggers",
    "experiment_loggers",
    "loggers_from_env",
]

LOGGERS_ENV = "KTRDR_LOGGERS"
# name → (module that must be importable, what to install)
LOGGER_KINDS: dict[str, tuple[str | None, str]] = {
    "csv": (None, ""),
    "tensorboard": ("tensorboard", "pip install tensorboard (or ktrdr_lib[tensorboard])"),
    "mlflow": ("mlflow", "pip install mlflow (or ktrdr_lib[mlflow])"),
}


def check_loggers(names: Iterable[str]) -> list[str]:
    """The logger names, lower-cased, each once, in order; ConfigError for an unknown one or
    one whose package is not installed (saying what to install)."""
    chosen: list[str] = []
    for raw in names:
        name = str(raw).strip().lower()
        if not name:
            continue
        if name not in LOGGER_KINDS:
            raise ConfigError(
                f"loggers: {raw!r} is not an experiment logger; use "
                f"{', '.join(LOGGER_KINDS)} (or none)"
            )
        module, install = LOGGER_KINDS[name]
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(f"loggers: {name} needs the {module} package: {install}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def loggers_from_env() -> list[str]:
    """``KTRDR_LOGGERS`` as a checked list (empty when unset)."""
    names = read_list(LOGGERS_ENV)
    try:
        return check_loggers(names)
    except ConfigError as exc:  # a logger whose package is not installed here
        raise ConfigError(f"{LOGGERS_ENV}={read_raw(LOGGERS_ENV)!r}: {exc.detail}") from None


def experiment_loggers(
    names: Sequence[str], *, runs_dir: Path, strategy: str, operation_id: str
) -> list[Logger]:
    """Lightning loggers for one run (one run per operation, named by its id)."""
    loggers: list[Logger] = []
    for name in names:
        if name == "csv":
            from lightning.pytorch.loggers import CSVLogger

            loggers.append(CSVLogger(runs_dir / "csv", name=strategy, version=operation_id))
        elif name == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(
                TensorBoardLogger(
                    runs_dir / "tensorboard",
                    name=strategy,
                    version=operation_id,
                    default_hp_metric=False,
                )
            )
        elif name == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger

            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if not uri:  # MLflow's own recommendation: a database, not its old file store
                runs_dir.mkdir(parents=True, exist_ok=True)
                uri = f"sqlite:///{runs_dir / 'mlflow.db'}"
            loggers.append(
                MLFlowLogger(
                    experiment_name=f"ktrdr/{strategy}",
                    run_name=operation_id,
                    tracking_uri=uri,
                    tags={"operation_id": operation_id, "strategy": strategy},
                )
            )
    return loggers
