"""LiteLLM's proxy on a loopback port, in front of the bundled model's server, for the gateway tests.

Started offline: the cost map bundled with the package (no download), telemetry off, no database (so keys
are checked against the master key only). Three model groups:

    smollm2   the backend given at start
    limited   two deployments of it with rpm 1 each: the third request in a minute gets LiteLLM's 429
              (``llm_provider-retry-after: 60``); a single deployment is never rate limited by the router
    fragile   a backend on ``fragile_port``, which a test starts, kills and starts again
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx
import yaml

from evalharness.local import free_port

MASTER_KEY = "sk-gateway-master-0123456789"
STARTUP_S = 90.0


def litellm_command() -> str | None:
    """LiteLLM's proxy command beside this Python (the ``gateway`` extra installs it), or None."""
    beside = Path(sys.executable).parent / "litellm"
    return str(beside) if beside.exists() else shutil.which("litellm")


def gateway_config(backend: str, fragile: str) -> dict[str, object]:
    def deployment(name: str, base: str, **extra: object) -> dict[str, object]:
        return {"model_name": name, "litellm_params": {"model": "openai/smollm2-135m-instruct", "api_base": base,
                                                       "api_key": "none", **extra}}

    return {
        "model_list": [deployment("smollm2", backend),
                       # The same backend twice (a trailing slash makes LiteLLM see two deployments).
                       deployment("limited", backend, rpm=1), deployment("limited", backend + "/", rpm=1),
                       deployment("fragile", fragile)],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"telemetry": False, "num_retries": 0},
        "router_settings": {"routing_strategy": "usage-based-routing-v2", "num_retries": 0},
    }


class Gateway:
    """A LiteLLM proxy process; ``base_url`` is its ``/v1``."""

    def __init__(self, folder: Path, backend: str) -> None:
        command = litellm_command()
        assert command, "LiteLLM is not installed: pip install -e '.[gateway]'"
        self.folder = folder
        self.port = free_port()
        self.fragile_port = free_port()
        (folder / "litellm.yaml").write_text(yaml.safe_dump(gateway_config(
            backend, f"http://127.0.0.1:{self.fragile_port}/v1")), encoding="utf-8")
        self.command = [command, "--config", "litellm.yaml", "--host", "127.0.0.1", "--port", str(self.port),
                        "--num_workers", "1"]
        self.log = folder / "litellm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("DATABASE_URL", "LITELLM_"))}
        env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_PROXY="127.0.0.1,localhost")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, cwd=self.folder, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"LiteLLM exited: {self.log.read_text(errors='replace')[-2000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health/liveliness", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.stop()
        raise AssertionError(f"LiteLLM did not start within {STARTUP_S} s: {self.log.read_text()[-2000:]}")

    def exited(self) -> int | None:
        """LiteLLM's exit code (negative: the signal) if it has exited, else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
