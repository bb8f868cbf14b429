"""Keep Lightning's chatter out of notebooks, terminals and server logs.

Lightning announces itself on every ``Trainer``: "GPU available: …", "TPU available: …",
"💡 Tip: …" and "`Trainer.fit` stopped: …" lines at INFO, and, with this torch, a deprecation
warning from its own pytree helper. None of it says anything about the run that the
progress view or the result does not say better, and a user can do nothing about it. While
:func:`quiet_lightning` is active on a thread, Lightning's INFO records from that thread go to
the ``ktrdr_lib.training.lightning`` logger at DEBUG instead (``logging.getLogger(
"ktrdr_lib.training.lightning").setLevel(logging.DEBUG)`` shows them again); its warnings and
errors pass unchanged, and Lightning used outside our runs is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator

__all__ = ["LIGHTNING_DEBUG_LOGGER", "quiet_lightning"]

LIGHTNING_DEBUG_LOGGER = "ktrdr_lib.training.lightning"
# The loggers Lightning's rank_zero_info / rank_zero_debug write to.
_CHATTY = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")

_debug = logging.getLogger(LIGHTNING_DEBUG_LOGGER)
_state = threading.local()
_install_lock = threading.Lock()
_installed = False


class _InfoToDebug(logging.Filter):
    """Re-files INFO (and lower) records made on a quiet thread as DEBUG records of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not getattr(_state, "depth", 0):
            return True
        if _debug.isEnabledFor(logging.DEBUG):
            _debug.debug("%s", record.getMessage())
        return False


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in _CHATTY:
            logging.getLogger(name).addFilter(_InfoToDebug())
        _installed = True


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """While inside, Lightning's INFO lines from this thread go to DEBUG (see the module)."""
    _install()
    # torch deprecated the LeafSpec class Lightning's pytree helper still builds; the warning
    # names Lightning's file and nothing a user can change. Added on every entry (an identical
    # filter replaces itself): a caller's catch_warnings() may have dropped it since.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
