"""Where a run trains: one protocol, one run helper, and the runners that implement it.

``base`` holds the :class:`~ktrdr_lib.runners.base.TrainingRunner` protocol and
:func:`~ktrdr_lib.runners.base.run_with_progress` (the one copy of "tracker + progress bridge +
pipeline"); ``local`` trains in this process, ``process`` in a spawned child (``worker`` is the
child's side), ``host`` on a remote training host.
"""
