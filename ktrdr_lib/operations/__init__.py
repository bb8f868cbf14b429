"""Training runs as operations: the SQLite store, the orchestrator and the user's handle.

``store`` keeps records, snapshots and epoch histories; ``orchestrator`` validates requests,
queues them and runs them through a runner in worker threads; ``handle`` is the user's grip on
one run; ``reattach`` takes over runs a dead process left on a training host; ``diagnostics``
reads histories and reports health.
"""
