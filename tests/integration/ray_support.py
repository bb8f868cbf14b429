"""A local Ray for the tests that need one (2 CPUs, no dashboard), one per test module, and an
orchestrator whose ray-mode runs train there."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr_lib import TrainingOrchestrator


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """Start a local Ray for the module's tests; yields its GCS address (another process
    connects to the same cluster with it)."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        namespace="ktrdr",
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        # Ray leaves Popen objects of its node processes to the garbage collector, which
        # warns that they "still run" (they are being reaped): collect them here, quietly,
        # rather than in whichever test runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@pytest.fixture
def ray_orch(
    local_ray: str, synthetic_data_dir: Path, isolated_home: Path
) -> Iterator[TrainingOrchestrator]:
    """An orchestrator on the module's local Ray, progress and polls every 50 ms."""
    from ktrdr_lib.runners.ray import RayTrainingRunner

    orch = TrainingOrchestrator(
        home=isolated_home,
        data_dir=synthetic_data_dir,
        progress_interval=0.05,
        ray_runner=RayTrainingRunner(poll_interval=0.05),
    )
    yield orch
    orch.shutdown(cancel_running=True, timeout=60)
