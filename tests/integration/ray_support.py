"""A local Ray for the tests that need one (2 CPUs, no dashboard), one per test module."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator

import pytest


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
