"""The base of every progress renderer: what a renderer is asked to do.

A renderer draws a :class:`~ktrdr_lib.views.state.ViewState`; it keeps no copy of the run.
The view calls :meth:`Renderer.render` when a snapshot arrives (throttled, or at once when
something changed), :meth:`Renderer.finish` once with the final record, :meth:`Renderer.note`
for a one-off message and :meth:`Renderer.close` when the user closes the view. The base draws
nothing, which is display mode ``off``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ktrdr_lib.views.state import ViewState

__all__ = ["Renderer"]


class Renderer:
    """Draws a ViewState; the base draws nothing (mode ``off``)."""

    def render(self, state: ViewState, events: set[str]) -> None:
        """Show the latest snapshot.

        Args:
            state: what the view knows.
            events: what the latest snapshot brought (``phase``, ``epoch``, ``final``).
        """

    def finish(self, state: ViewState) -> None:
        """Show the end of the run (``state.record`` holds the final record when known)."""

    def note(self, text: str) -> None:
        """Show a one-off message (e.g. why a cancel was refused)."""

    def close(self) -> None:
        """Stop showing (widgets are closed)."""
