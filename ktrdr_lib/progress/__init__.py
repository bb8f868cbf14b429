"""Progress and cancellation inside a run.

``tracker`` does the bookkeeping (percentage, ETA, throttling) and emits snapshots; ``bridge``
is the Lightning callback that feeds it; ``sinks`` hand snapshots to live subscribers and to
the store off the training thread; ``cancellation`` is the run's cancel token and the callback
that honours it every batch.
"""
