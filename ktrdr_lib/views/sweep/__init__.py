"""The live view of a sweep: one row per trial, the ranking at the end, Cancel for all.

``state`` is the :class:`~ktrdr_lib.views.sweep.state.SweepViewState` every renderer draws
from; ``formatting`` holds the text they share with the command line (a trial's line, the live
and ranked tables, the headline); ``renderer`` is their base; ``text``, ``html`` and ``widget``
are one renderer each (``widget`` imports ipywidgets, only in widget mode); ``progress`` is
:class:`~ktrdr_lib.views.sweep.progress.SweepProgress` and :func:`sweep_view`, which opens it.

Example:
    >>> view = sweep_view(orch, orch.sweep(...).operation_id)   # doctest: +SKIP
"""

from __future__ import annotations

from ktrdr_lib.views.sweep.progress import SweepProgress, sweep_view

__all__ = ["SweepProgress", "sweep_view"]
