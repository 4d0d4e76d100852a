"""A fast canned OpenAI-compatible endpoint for benchmarks: nginx answering from memory.

``/v1/chat/completions`` returns a fixed chat.completion; ``/stream/v1/chat/completions`` a fixed SSE stream
of ``CHUNKS`` content chunks, a usage chunk and ``[DONE]``. nginx is Debian's package (apt-get install nginx).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

CHUNKS = 32
COMPLETION = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": '{"answer": 42, "ok": true}'}}],
              "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32}}


def sse_body(chunks: int = CHUNKS) -> str:
    """The canned stream: a role chunk, ``chunks`` one-word content chunks, finish, usage, [DONE]."""
    def event(delta: dict[str, object], finish: str | None = None) -> str:
        chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return "data: " + json.dumps(chunk, separators=(",", ":")) + "\n\n"
    parts = [event({"role": "assistant"})]
    parts += [event({"content": f"word{i} "}) for i in range(chunks)]
    parts.append(event({}, "stop"))
    usage = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
             "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": chunks, "total_tokens": 20 + chunks}}
    parts.append("data: " + json.dumps(usage, separators=(",", ":")) + "\n\n")
    parts.append("data: [DONE]\n\n")
    return "".join(parts)


def _nginx_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /v1/chat/completions {{
      client_body_buffer_size 64k;
      default_type application/json;
      return 200 {json};
    }}
    # nginx answers POST to a static file with 405; the error_page redirect serves the file as GET, 200.
    location /stream/ {{
      root {tmp}/files;
      default_type text/event-stream;
      error_page 405 =200 $uri;
    }}
    location = /v1/models {{ default_type application/json; return 200 '{{"data": []}}'; }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def canned_server() -> Iterator[str]:
    """Start nginx on a free loopback port; yields ``http://127.0.0.1:PORT``."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed: apt-get install nginx")
    tmp = Path(tempfile.mkdtemp(prefix="evalharness-bench-"))
    port = free_port()
    conf = tmp / "nginx.conf"
    stream_file = tmp / "files/stream/v1/chat/completions"
    stream_file.parent.mkdir(parents=True)
    stream_file.write_text(sse_body(CHUNKS))
    tmp.chmod(0o755)
    conf.write_text(CONF.format(tmp=tmp, port=port, json=_nginx_quote(json.dumps(COMPLETION))))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
