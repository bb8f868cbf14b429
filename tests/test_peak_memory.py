"""PeakMemory: the largest resident size sampled while a run is inside."""

from __future__ import annotations

import numpy as np

from ktrdr_lib.pipeline.memory import PeakMemory, resident_mb


def test_the_peak_includes_memory_held_only_inside() -> None:
    before = resident_mb()
    with PeakMemory(interval=0.01) as memory:
        block = np.ones(200 * 2**20 // 8)  # 200 MB, every page touched
        del block
    assert memory.peak_mb >= before + 150
    assert resident_mb() < memory.peak_mb  # released again: the peak is not the end state


def test_a_quiet_run_peaks_near_where_it_started() -> None:
    with PeakMemory() as memory:
        pass
    assert abs(memory.peak_mb - resident_mb()) < 50
