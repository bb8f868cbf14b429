"""Lightning's INFO announcements go to our DEBUG logger during our fits, nowhere else."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pytest
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from ktrdr_lib.training.fit import fit_model
from ktrdr_lib.training.quiet import LIGHTNING_DEBUG_LOGGER, quiet_lightning
from tests.integration.test_fit import make_splits, model_spec


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.name, record.levelno, record.getMessage()))


@pytest.fixture
def collect() -> Iterator[_Collect]:
    """A handler on Lightning's rank-zero logger and on ours, both open to every level (other
    tests may have raised Lightning's levels or cut its propagation)."""
    handler = _Collect()
    watched = [
        logging.getLogger("lightning.pytorch.utilities.rank_zero"),
        logging.getLogger(LIGHTNING_DEBUG_LOGGER),
    ]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(watched, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_fit_announces_nothing_above_debug(collect: _Collect) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        fit_model(model_spec(epochs=1), make_splits(), seed=1)
    loud = [m for m in collect.messages if m[0].startswith("lightning") and m[1] >= logging.INFO]
    assert loud == []
    debug = [m[2] for m in collect.messages if m[0] == LIGHTNING_DEBUG_LOGGER]
    assert any(text.startswith("GPU available") for text in debug)
    assert any("TPU available" in text for text in debug)
    assert not [w for w in caught if "LeafSpec" in str(w.message)]


def test_outside_our_fits_lightning_speaks_as_usual(collect: _Collect) -> None:
    rank_zero_info("a user's own Lightning line")
    with quiet_lightning():
        rank_zero_info("a line during our fit")
    names = [(m[0], m[2]) for m in collect.messages]
    assert ("lightning.pytorch.utilities.rank_zero", "a user's own Lightning line") in names
    assert (LIGHTNING_DEBUG_LOGGER, "a line during our fit") in names
    assert ("lightning.pytorch.utilities.rank_zero", "a line during our fit") not in names
