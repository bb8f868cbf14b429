"""Progress views: what a run looks like in a notebook, in HTML, and as text.

A view follows an operation's snapshot stream and draws it. Bookkeeping is kept apart from
drawing, so every renderer draws the same picture from the same state, and the text pieces
are shared with the command line:

``display`` picks the display mode (an explicit choice, ``KTRDR_PROGRESS``, or what the
frontend signals); ``state`` is the :class:`~ktrdr_lib.views.state.ViewState` (latest
snapshot, epoch curve, what changed, final record); ``formatting`` holds the text every
renderer shares (durations, numbers, the progress lines, the one summary table) and imports
no toolkit; ``curves`` draws the per-epoch loss and accuracy as inline SVG; ``renderer`` is the
base every renderer extends; ``text``, ``html`` and ``widget`` are one renderer each
(``widget`` imports ipywidgets, and is imported only in widget mode);
``progress`` is :class:`~ktrdr_lib.views.progress.TrainingProgress`, the live view with its
Cancel and Stop buttons that ``OperationHandle.display()`` opens. ``sweep`` is the same split
for a sweep (:func:`~ktrdr_lib.views.sweep.sweep_view`: a row per trial, the ranking, Cancel for
every trial); its ``widget`` module is the other one that imports ipywidgets.

Example:
    >>> from ktrdr_lib import TrainingOrchestrator
    >>> orch = TrainingOrchestrator()
    >>> op = orch.train("rsi_mean_reversion", epochs=5)       # doctest: +SKIP
    >>> # the cell returns at once; the view updates live, Cancel stays clickable
    >>> op.wait().status                                      # doctest: +SKIP
    'completed'

The core library never imports this package; it finds the view through the
``ktrdr_lib.progress_views`` entry point.
"""

from __future__ import annotations

__all__: list[str] = []
