"""Taking over remote runs whose process died.

A host run keeps training on the host when the process that followed it dies, and a Ray run
in its detached actor. A new orchestrator whose host (or Ray) runner can re-attach claims such
operations (running or cancelling,
with a session id, owner gone), rebuilds each from the context stored at submit, and follows its
session to the end as if nothing had happened. Operations it cannot take over are marked
``interrupted`` with the reason.
"""

from __future__ import annotations

import contextlib
import logging

import msgspec

from ktrdr_lib.errors import KtrdrError
from ktrdr_lib.operations.live import LiveOperation
from ktrdr_lib.operations.store import OperationStore
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.progress.sinks import OperationChannel, StoreWriter
from ktrdr_lib.runners.base import TrainingRunner

__all__ = ["claim_orphans", "orphan_reason"]

log = logging.getLogger(__name__)


def orphan_reason(runner: TrainingRunner | None, mode: str = "host") -> str:
    """Why a remote operation (``host`` or ``ray``) left by a dead process is marked
    ``interrupted`` here."""
    if mode == "ray":
        if runner is None:
            return (
                "the process following this Ray run stopped before it finished, and no Ray "
                "cluster is configured here to re-attach to it (set KTRDR_RAY_ADDRESS or pass "
                "ray_address); its actor may still run on the cluster"
            )
        return (
            "the process following this Ray run stopped before its actor was started (or, "
            "for a sweep, the process driving it stopped: its running trials are re-attached "
            "one by one, the others are not started); start it again"
        )
    if runner is None:
        return (
            "the process following this host session stopped before it finished, and no "
            "training host is configured here to re-attach to it (set KTRDR_HOST_URL or pass "
            "host_url); the session may still run on the host"
        )
    if not runner.can_reattach:
        return (
            "the process following this host session stopped before it finished, and the "
            "configured host runner cannot re-attach to sessions; the session may still run "
            "on the host"
        )
    return (
        "the process following this host operation stopped before the host accepted its "
        "session (or before this version stored what re-attaching needs); start the "
        "training again"
    )


def claim_orphans(
    store: OperationStore, writer: StoreWriter, mode: str = "host"
) -> list[LiveOperation]:
    """Claim remote operations of ``mode`` (``host`` or ``ray``) whose process died and
    rebuild them to be followed again."""
    claimed: list[LiveOperation] = []
    for op_id in store.claim_orphans(mode=mode):
        try:
            live = _rebuild(store, writer, op_id)
        except KtrdrError as exc:  # e.g. deleted meanwhile: never leave it claimed
            log.warning("operation %s: cannot re-attach: %s", op_id, exc.detail)
            with contextlib.suppress(KtrdrError):
                store.transition(
                    op_id, "interrupted", error_message=f"cannot re-attach: {exc.detail}"
                )
            continue
        if live is not None:
            claimed.append(live)
    return claimed


def _rebuild(store: OperationStore, writer: StoreWriter, op_id: str) -> LiveOperation | None:
    """The live entry of a claimed host operation, from its stored record and context.

    An unreadable context marks the operation ``interrupted`` (and returns ``None``).
    """
    record = store.get(op_id)
    session_id = record.host_session_id or ""
    raw = store.stored_context(op_id) or b""
    try:
        context = msgspec.json.decode(raw, type=TrainingOperationContext)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        with contextlib.suppress(KtrdrError):
            store.transition(
                op_id,
                "interrupted",
                error_message=f"the process following host session {session_id} stopped, "
                f"and its stored context cannot be read by this version ({exc}); the "
                "session may still run on the host; start the training again",
            )
        return None
    live = LiveOperation(context, OperationChannel(op_id, on_publish=writer.submit))
    live.record = record
    live.host_session_id = session_id
    live.resumed_from = record.progress
    live.started_at = record.started_at
    if record.status == "cancelling":  # the cancel was under way: carry it through, same kind
        live.token.cancel(
            graceful=record.cancel_kind == "graceful",
            reason=record.cancellation_reason or "cancelled by request",
        )
    return live
