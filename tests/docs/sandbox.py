"""Where the doc tests run a document's code blocks: a throwaway working directory, home,
strategy directory and servers, one set per document.

A newcomer runs the README and docs/ from the repository root with the venv active. The doc
tests do the same in a scratch directory that links the repository's top-level entries (so
``.venv/bin/ktrdr``, ``ktrdr_lib/strategy/examples/...`` and ``notebooks/`` resolve) while
whatever a block writes (``my_strategy.yaml``, ``out/``) lands in the scratch directory.

Two rewrites keep the set short, and they are the only differences from what the page says:

* epochs: ``--epochs N``, ``epochs=N`` and ``"epochs": N`` become 3, and the shipped example
  strategies are found (through ``KTRDR_STRATEGIES_DIR``) as copies that train 3 epochs;
* the port: ``8000`` in an address or ``--port 8000`` becomes a free port, and a
  ``ktrdr serve ...`` line starts that server in the background until the document ends;
* ``KTRDR_LOCAL_RUNNER=thread``: a server trains in its own process rather than a child
  process per run, which saves the child's imports (tests/integration covers the child).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

__all__ = ["DOC_EPOCHS", "REPO", "DocSandbox"]

REPO = Path(__file__).resolve().parents[2]
DOC_EPOCHS = 3
EXAMPLES = REPO / "ktrdr_lib" / "strategy" / "examples"

_EPOCH_PATTERNS = (
    (re.compile(r"--epochs\s+\d+"), f"--epochs {DOC_EPOCHS}"),
    (re.compile(r"\bepochs=\d+"), f"epochs={DOC_EPOCHS}"),
    (re.compile(r"([\"']epochs[\"']\s*:\s*)\d+"), rf"\g<1>{DOC_EPOCHS}"),
)
_SERVE_LINE = re.compile(r"^.*\bktrdr serve (api|host)\b.*$", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DocSandbox:
    """One document's scratch directory, environment and background servers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "work"
        self.home = root / "home"
        self.strategies = root / "strategies"
        self.port = _free_port()
        self.servers: list[subprocess.Popen[bytes]] = []
        self.namespace: dict[str, object] = {}
        for folder in (self.work, self.home, self.strategies):
            folder.mkdir(parents=True)
        for entry in REPO.iterdir():
            if entry.name not in {".git", ".venv"} and not entry.name.endswith("_cache"):
                (self.work / entry.name).symlink_to(entry)
        (self.work / ".venv").symlink_to(Path(sys.prefix))
        for example in sorted(EXAMPLES.glob("*.yaml")):
            self._write_short_copy(example)

    def _write_short_copy(self, example: Path) -> None:
        """The shipped example, training DOC_EPOCHS epochs (v2 keeps them under
        model.training, v3 under training)."""
        config = yaml.safe_load(example.read_text())
        for section in (config.get("model", {}).get("training"), config.get("training")):
            if isinstance(section, dict) and "epochs" in section:
                section["epochs"] = DOC_EPOCHS
        (self.strategies / example.name).write_text(yaml.safe_dump(config, sort_keys=False))

    @property
    def env(self) -> dict[str, str]:
        """The environment a block runs in: the caller's, less its KTRDR_* settings, plus the
        sandbox's home and strategies and the venv first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
        env.update(
            KTRDR_HOME=str(self.home),
            KTRDR_STRATEGIES_DIR=str(self.strategies),
            KTRDR_LOCAL_RUNNER="thread",
            PATH=f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        )
        return env

    def rewrite(self, source: str) -> str:
        """The block as the doc tests run it: short epochs, the sandbox's port."""
        for pattern, replacement in _EPOCH_PATTERNS:
            source = pattern.sub(replacement, source)
        source = re.sub(r"(?<=[:/ ])8000\b", str(self.port), source)
        return source

    def run_shell(self, source: str, *, timeout_s: float = 240) -> str | None:
        """Run a bash block; None on success, else what went wrong."""
        source = self.rewrite(source)
        for serve in _SERVE_LINE.finditer(source):
            self._start_server(serve.group(0).strip())
        script = _SERVE_LINE.sub("", source)
        if not script.strip():
            return None
        for tool in ("curl", "papermill"):
            if re.search(rf"(^|[\s|(]){tool} ", script) and not shutil.which(
                tool, path=self.env["PATH"]
            ):
                pytest.skip(f"the block runs {tool}, which is not installed here")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode == 0:
            return None
        return (
            f"exit status {done.returncode}\n--- stdout (tail)\n{done.stdout[-3000:]}"
            f"\n--- stderr (tail)\n{done.stderr[-3000:]}"
        )

    def _start_server(self, command: str) -> None:
        command = command.split(" #", 1)[0].rstrip()
        if "--port" not in command:
            command += f" --port {self.port}"
        log = (self.root / f"server{len(self.servers)}.log").open("wb")
        server = subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.work,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.servers.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"{command!r} exited: {self._server_log(server)}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{command!r} did not listen on {self.port} within 60 s")

    def _server_log(self, server: subprocess.Popen[bytes]) -> str:
        index = self.servers.index(server)
        return (self.root / f"server{index}.log").read_text()[-3000:]

    def close(self) -> None:
        """Stop the servers this document started (by their process group) and remove the
        scratch directory."""
        for server in self.servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
        self.servers.clear()
        shutil.rmtree(self.root, ignore_errors=True)
