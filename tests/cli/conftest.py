"""One orchestrator on an in-memory store, seen by the commands twice: in this process
(LocalBackend) and through the real API app (ApiBackend over the app's test transport)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ktrdr_lib.cli.local import LocalBackend
from ktrdr_lib.cli.remote import ApiBackend
from ktrdr_lib.http.client import ApiClient
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.store import OperationStore
from tests.conftest import SMALL_STRATEGY


@pytest.fixture(scope="module")
def orchestrator(
    tmp_path_factory: pytest.TempPathFactory, synthetic_data_dir: Path
) -> Iterator[TrainingOrchestrator]:
    """Trains the small strategy on the synthetic data; models go to a temp directory."""
    orch = TrainingOrchestrator(
        home=tmp_path_factory.mktemp("cli_home"),
        store=OperationStore(":memory:"),
        data_dir=synthetic_data_dir,
        progress_interval=0.05,
    )
    yield orch
    orch.shutdown(cancel_running=True, timeout=60)


@pytest.fixture(scope="module")
def strategy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small test strategy as a file (name ``small_test``)."""
    path = tmp_path_factory.mktemp("cli_strategy") / "small_test.yaml"
    path.write_text(SMALL_STRATEGY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished(orchestrator: TrainingOrchestrator, strategy_path: Path) -> str:
    """A completed one-epoch run of the small strategy (its model saved); its id."""
    handle = orchestrator.start_training(strategy_path, epochs=1)
    assert handle.wait(timeout=120).status == "completed"
    return handle.operation_id


@pytest.fixture
def local(orchestrator: TrainingOrchestrator) -> LocalBackend:
    """The orchestrator as this process's backend (never closed here: the module owns it)."""
    return LocalBackend(orchestrator)


@pytest.fixture(scope="module")
def remote(orchestrator: TrainingOrchestrator) -> Iterator[ApiBackend]:
    """The same orchestrator behind the real API app, driven over HTTP."""
    from litestar.testing import TestClient
    from litestar.testing.transport import TestClientTransport

    from api import create_app

    with pytest.MonkeyPatch.context() as env:
        env.delenv("KTRDR_API_TOKEN", raising=False)  # an open app, whatever the shell says
        app = create_app(orchestrator)
    with TestClient(app, base_url="http://127.0.0.1:8000") as app_client:  # open: loopback only

        class AppTransport(httpx.BaseTransport):
            """The app's in-process test transport as an httpx transport."""

            def __init__(self) -> None:
                self.inner = TestClientTransport(app_client)

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                return self.inner.handle_request(request)

        with ApiClient(str(app_client.base_url), transport=AppTransport()) as client:
            yield ApiBackend(client)
