"""The base of every sweep renderer: what a renderer of a sweep is asked to do.

A renderer draws a :class:`~ktrdr_lib.views.sweep.state.SweepViewState`; it keeps no copy of
the sweep. The view calls :meth:`SweepRenderer.render` when a snapshot brought a change,
:meth:`SweepRenderer.finish` once with the ended sweep, :meth:`SweepRenderer.note` for a
one-off message and :meth:`SweepRenderer.close` when the user closes the view. The base draws
nothing, which is display mode ``off``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ktrdr_lib.views.sweep.state import SweepChanges, SweepViewState

__all__ = ["SweepRenderer"]


class SweepRenderer:
    """Draws a SweepViewState; the base draws nothing (mode ``off``)."""

    def render(self, state: SweepViewState, changes: SweepChanges) -> None:
        """Show the latest snapshot.

        Args:
            state: what the view knows.
            changes: what the latest snapshot brought.
        """

    def finish(self, state: SweepViewState) -> None:
        """Show the ended sweep (``state.latest`` has its ranking)."""

    def note(self, text: str) -> None:
        """Show a one-off message (e.g. why a cancel was refused)."""

    def close(self) -> None:
        """Stop showing (widgets are closed)."""
