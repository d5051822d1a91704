"""A small HTTP server that records every request it receives and answers from a route table.

Runs in a thread of the test process on a loopback address and a free port; stopped by the test.
Used as a download host that must (or must never) be reached, and as a stand-in API host whose
answers a test chooses (Adobe's documented bodies, redirects, errors that echo identity values).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ZIP_BYTES = b"PK\x05\x06" + b"\x00" * 18  # an empty, valid ZIP archive


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes | dict | list = ZIP_BYTES
    headers: dict[str, str] = field(default_factory=dict)


Route = Answer | Callable[[Recorded], Answer]


class RecordingServer:
    """``with RecordingServer("127.0.0.2") as server:``; ``server.routes[path] = Answer(...)``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[Recorded] = []
        self.routes: dict[str, Route] = {}
        self.default = Answer()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                with server._lock:
                    server.requests.append(recorded)
                route = server.routes.get(self.path.split("?")[0], server.default)
                answer = route(recorded) if callable(route) else route
                body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up first: what a refused download or a size cap does

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
