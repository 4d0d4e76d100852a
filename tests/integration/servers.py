"""Model servers the cross-target tests run against besides the one a config's ``kind: local`` starts.

Each entry starts one server for the test session and gives the target that reaches it (a ``targets:``
entry without its name). Another server — a vLLM, an Ollama — is one more entry here, and every test that
takes ``second_server`` then runs against it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from evalharness.local import MODEL_ALIAS, local_server

#: Starts a server with its log in the given folder and yields the target entry that reaches it.
ServerStart = Callable[[Path], contextlib.AbstractContextManager[dict[str, Any]]]


@contextlib.contextmanager
def llama_small_context(folder: Path) -> Iterator[dict[str, Any]]:
    """The bundled model on llama.cpp again, with other settings than the config's own server: a smaller
    context, one thread. Reached as any OpenAI-compatible endpoint (the harness did not start it)."""
    with local_server(folder / "llama-small-context.log", n_ctx=1024, n_threads=1) as server:
        yield {"base_url": server.base_url, "model": MODEL_ALIAS}


SECOND_SERVERS: dict[str, ServerStart] = {
    "llama-small-context": llama_small_context,
}
