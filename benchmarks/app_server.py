"""`python app.py` in a subprocess on 127.0.0.1 for the app benchmarks, with a gradio_client on it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    server: subprocess.Popen
    url: str
    client: object  # gradio_client.Client on `url`
    started: float  # time.perf_counter() just before the process was started


@contextlib.contextmanager
def served_app(env: dict[str, str], start_timeout_s: float = 120.0, **client_kwargs) -> Iterator[Served]:
    """Start the app with `env` added to this process's environment, wait until gradio_client
    connects (failing if the app exits or takes longer than `start_timeout_s`), yield it, and
    stop the server at the end. Nothing listens beyond 127.0.0.1."""
    from gradio_client import Client

    port = free_port()
    env = dict(
        os.environ,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        **env,
    )
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    try:
        while True:
            try:
                client = Client(url, verbose=False, **client_kwargs)
                break
            except Exception:  # not listening yet
                if server.poll() is not None:
                    raise SystemExit("app.py exited during start-up") from None
                if time.perf_counter() - started > start_timeout_s:
                    raise SystemExit(f"app.py did not start within {start_timeout_s:.0f} s") from None
                time.sleep(0.2)
        yield Served(server, url, client, started)
    finally:
        server.terminate()
        server.wait(timeout=60)
